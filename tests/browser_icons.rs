//! The page asks only for icons that exist: with no `--icons-dir` it makes
//! no `/icons/` request (it used to make one per type, each a 404), and with
//! one it asks for exactly the files there. Real servers, headless
//! Chromium (`web/test/icons.mjs`).
#![cfg(target_os = "linux")]

mod common;

use common::*;

#[test]
fn page_requests_only_icons_that_exist() {
    let bare = Server::start(&["--no-containers"]);
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let with_icons = Server::start(&["--no-containers", "--icons-dir", dir_arg]);
    run_ui_tests(
        "icons.mjs",
        &[
            (
                "PROCNET_URL_NO_ICONS",
                format!("http://127.0.0.1:{}", bare.port),
            ),
            (
                "PROCNET_URL_ICONS",
                format!("http://127.0.0.1:{}", with_icons.port),
            ),
            ("PROCNET_ICONS_DIR", dir_arg.to_string()),
        ],
        2,
    );
}
