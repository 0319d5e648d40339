//! The table at 100k sockets in headless Chromium against the real server
//! (issue 16, item 1): `bench/holdconns.py` holds 50,000 loopback
//! connections (100k sockets, 100k connection rows) and `web/test/table.mjs`
//! checks that the connections table shows rows, draws only the visible
//! ones, loads where it is scrolled to, sorts on the server and that a
//! search narrows the rows. Screenshots: `target/ui-screenshots/table-100k*.png`.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `bench/holdconns.py`: holds N connections until its stdin closes
/// (dropped) or its deadline passes; its children die with it.
struct HeldConnections {
    child: Child,
}

impl HeldConnections {
    fn hold(conns: usize) -> HeldConnections {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/holdconns.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--conns", &conns.to_string(), "--max-seconds", "900"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs bench/holdconns.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "holdconns.py could not hold {conns} connections (RLIMIT_NOFILE?): {line:?}"
        );
        HeldConnections { child }
    }
}

impl Drop for HeldConnections {
    fn drop(&mut self) {
        // Closing stdin ends it; it kills its children and resets their
        // connections (SO_LINGER 0), so no TIME_WAIT is left behind.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn table_at_100k_sockets_in_chromium() {
    let _held = HeldConnections::hold(50_000);
    let server = Server::start_with_interval(&[], "1.0");
    // The API first: the server pages it (a few rows, the whole count).
    let page = server.get("/api/connections?limit=5");
    assert_eq!(page.status, 200, "{}", page.body);
    let total = page.json()["total"].as_u64().unwrap();
    assert!(total >= 100_000, "100k sockets are 100k rows: {total}");
    run_ui_tests(
        "table.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("PROCNET_MIN_CONNS", "100000".to_string()),
        ],
        1,
    );
    assert_screenshots(&["table-100k", "table-100k-search"]);
}
