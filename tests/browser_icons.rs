//! The page asks only for icons that exist: with no `--icons-dir` it makes
//! no `/icons/` request (it used to make one per type, each a 404), and with
//! one it asks for exactly the files there. Real servers, headless
//! Chromium (`web/test/icons.mjs`).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::process::Command;

#[test]
fn page_requests_only_icons_that_exist() {
    let bare = Server::start(&["--no-containers"]);
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let with_icons = Server::start(&["--no-containers", "--icons-dir", dir_arg]);
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/icons.mjs"])
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web"))
        .env(
            "PROCNET_URL_NO_ICONS",
            format!("http://127.0.0.1:{}", bare.port),
        )
        .env(
            "PROCNET_URL_ICONS",
            format!("http://127.0.0.1:{}", with_icons.port),
        )
        .env("PROCNET_ICONS_DIR", dir_arg)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "browser checks failed:\n{report}");
    assert!(report.contains("pass 2"), "both checks ran:\n{report}");
}
