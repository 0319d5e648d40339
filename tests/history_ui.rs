//! The time bar in headless Chromium against a real server with history:
//! a connection between two real processes opens and closes, then the UI
//! steps back to it, compare mode marks it vanished and the link with the
//! time in it reopens the same view (web/test/history.mjs; screenshots in
//! target/ui-screenshots/timebar-*.png).
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

#[test]
fn the_time_bar_shows_a_closed_connection_and_marks_it_vanished() {
    let mut server_proc = python(SERVER, &[]);
    let server_port: u16 = server_proc.line().parse().unwrap();
    let server = Server::start_with_interval(&["--no-containers"], "0.5");
    let mut client = python(CLIENT, &[&server_port.to_string(), "4"]);
    assert_eq!(client.line(), "open");
    assert_eq!(client.line(), "closed");
    std::thread::sleep(Duration::from_millis(1500));
    run_ui_tests(
        "history.mjs",
        &[
            ("PROCNET_URL", format!("http://127.0.0.1:{}", server.port)),
            ("PROCNET_CLIENT_PID", client.pid().to_string()),
            ("PROCNET_SERVER_PID", server_proc.pid().to_string()),
            ("PROCNET_SERVER_PORT", server_port.to_string()),
        ],
        1,
    );
    assert_screenshots(&["timebar-live", "timebar-compare", "timebar-link"]);
}
