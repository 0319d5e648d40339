//! The time bar in headless Chromium against a real server with history:
//! a connection between two real processes opens and closes (~4 s), then a
//! second one lives ~100 ms. The UI steps back to the first, compare mode
//! lists it vanished and marks it on the graph's overlay (pixels read back),
//! a drag on the activity strip selects a range whose link reopens it, and
//! the Closed connections tab shows the short one with its pids and bytes
//! (web/test/history.mjs; screenshots in target/ui-screenshots/timebar-*.png
//! and closed-*.png).
//!
//! Needs root: the ~100 ms connection is seen through the kernel's destroy
//! reports (tier T0); without them this test fails, it does not pass.
#![cfg(target_os = "linux")]

mod common;

use common::{assert_screenshots, python, run_ui_tests, Server};
use std::time::Duration;

/// Accepts connections, reads each to EOF and closes it.
const SERVER: &str = r#"
import socket, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
def serve(c):
    while c.recv(65536):
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Connects, sends, holds for `argv[2]` seconds, closes, then idles.
const CLIENT: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"x" * 20000)
print("open", flush=True)
time.sleep(float(sys.argv[2]))
c.close()
print("closed", flush=True)
time.sleep(3600)
"#;

/// Connects, sends `argv[2]` bytes, closes ~100 ms later (between two
/// samples), prints its local port, then idles.
const SHORT_CLIENT: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
port = c.getsockname()[1]
c.sendall(b"x" * int(sys.argv[2]))
time.sleep(0.1)
c.close()
print(port, flush=True)
time.sleep(3600)
"#;

/// Bytes the short connection sends.
const SHORT_BYTES: usize = 50_000;

#[test]
fn the_time_bar_marks_a_vanished_connection_selects_ranges_and_lists_closed_ones() {
    let mut server_proc = python(SERVER, &[]);
    let server_port: u16 = server_proc.line().parse().unwrap();
    let server = Server::start_with_interval(&["--no-containers"], "0.5");
    let health = server.get("/healthz").json();
    assert_eq!(
        health["collector"]["tier"], "T0",
        "the ~100 ms connection needs the kernel's destroy reports (tier T0: root and kernel BTF): {health}"
    );
    let mut client = python(CLIENT, &[&server_port.to_string(), "4"]);
    assert_eq!(client.line(), "open");
    assert_eq!(client.line(), "closed");
    std::thread::sleep(Duration::from_millis(1200));
    let mut short = python(
        SHORT_CLIENT,
        &[&server_port.to_string(), &SHORT_BYTES.to_string()],
    );
    let short_port: u16 = short.line().parse().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    run_ui_tests(
        "history.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("PROCNET_CLIENT_PID", client.pid().to_string()),
            ("PROCNET_SERVER_PID", server_proc.pid().to_string()),
            ("PROCNET_SERVER_PORT", server_port.to_string()),
            ("PROCNET_SHORT_PID", short.pid().to_string()),
            ("PROCNET_SHORT_PORT", short_port.to_string()),
            ("PROCNET_SHORT_BYTES", SHORT_BYTES.to_string()),
        ],
        3,
    );
    assert_screenshots(&[
        "timebar-live",
        "timebar-compare",
        "timebar-link",
        "timebar-range",
        "timebar-range-link",
        "closed-live",
        "closed-range",
    ]);
}
