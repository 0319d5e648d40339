//! The Engine API client against a local stand-in: a unix-socket HTTP
//! server started by the test that replays `GET /containers/json` answers
//! in the Engine API's documented format (the body is
//! `tests/fixtures/engine_containers.json`), framed as Docker frames them
//! (chunked) and as Podman does (Content-Length), plus the failure cases.
#![cfg(unix)]

use procnet::collect::containers::engine::{list_containers, EngineError};
use procnet::collect::containers::http::GetError;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BODY: &str = include_str!("fixtures/engine_containers.json");

/// Serves one connection: reads the request head, checks it, then writes
/// `response` in pieces of `piece` bytes (so the client must reassemble).
fn serve_once(response: Vec<u8>, piece: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut b).unwrap_or(0) == 1 {
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        assert!(
            head.starts_with("GET /containers/json HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.to_ascii_lowercase().contains("\r\nhost: "), "{head}");
        for part in response.chunks(piece.max(1)) {
            if conn.write_all(part).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    (dir, path)
}

fn chunked(body: &str, size: usize) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/27.3.1 (linux)\r\nDate: Mon, 25 Nov 2024 10:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.as_bytes().chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn docker_style_chunked_answer() {
    let (_dir, path) = serve_once(chunked(BODY, 700), 333);
    let list = list_containers(&path, TIMEOUT).unwrap();
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["web", "db", "pntest"]);
    assert_eq!(list[0].ports.len(), 3);
}

#[test]
fn podman_style_content_length_answer() {
    let mut raw = format!(
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nLibpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    raw.extend_from_slice(BODY.as_bytes());
    let (_dir, path) = serve_once(raw, 4096);
    let list = list_containers(&path, TIMEOUT).unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[2].ports[0].host_port, 18080);
}

#[test]
fn engine_error_status_is_reported_with_its_message() {
    let body = r#"{"message":"client version 1.99 is too new"}"#;
    let raw = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (_dir, path) = serve_once(raw.into_bytes(), 4096);
    let err = list_containers(&path, TIMEOUT).unwrap_err();
    assert!(
        matches!(&err, EngineError::Status { status: 400, message, .. } if message.contains("too new")),
        "{err}"
    );
}

#[test]
fn truncated_answer_is_an_error() {
    let mut raw = chunked(BODY, 500);
    raw.truncate(raw.len() / 2);
    let (_dir, path) = serve_once(raw, 4096);
    let err = list_containers(&path, TIMEOUT).unwrap_err();
    assert!(err.to_string().contains("closed before"), "{err}");
}

#[test]
fn silent_engine_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let holder = std::thread::spawn(move || {
        // Accept and say nothing until the client gives up.
        let (conn, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        drop(conn);
    });
    let started = Instant::now();
    let err = list_containers(&path, Duration::from_millis(200)).unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Get {
                source: GetError::Timeout(200),
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_millis(700));
    holder.join().unwrap();
}

#[test]
fn missing_socket_is_absent_not_a_fault() {
    let err = list_containers(
        std::path::Path::new("/nonexistent/procnet/engine.sock"),
        TIMEOUT,
    )
    .unwrap_err();
    assert!(err.is_absent(), "{err}");
}
