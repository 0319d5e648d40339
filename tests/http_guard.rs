//! The request guard against hostile bytes, over real TCP against the real
//! `procnet serve`: raw requests are written with `TcpStream` so that the
//! test controls every byte (duplicate headers, non-ASCII in the query,
//! absolute-form targets), which no HTTP client library would send.

mod common;

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Writes `request` as is and returns the response's status and head, or
/// `None` when the server closed the connection without answering (what a
/// panicking handler looks like from outside).
fn raw(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    // A reset after a panic is an error here; it means "no answer" too.
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    Some((status, head))
}

/// A GET with the given header lines (each `Name: value`), `Connection: close`.
fn get(port: u16, target: &[u8], header_lines: &[&[u8]]) -> Option<(u16, String)> {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nConnection: close\r\n");
    for line in header_lines {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    raw(port, &req)
}

fn status(port: u16, target: &str, header_lines: &[&str]) -> u16 {
    let lines: Vec<&[u8]> = header_lines.iter().map(|l| l.as_bytes()).collect();
    get(port, target.as_bytes(), &lines)
        .unwrap_or_else(|| panic!("no answer to {target} {header_lines:?}"))
        .0
}

/// Item 5: a `%` followed by a non-ASCII character in the query used to
/// slice a `str` inside a UTF-8 sequence and panic the guard. Every one of
/// 1,000 such requests must get an answer, and the server must keep
/// serving.
#[test]
fn percent_then_non_ascii_in_the_query_is_answered_every_time() {
    let s = Server::start(&["--token", "s3cret"]);
    let host = format!("Host: 127.0.0.1:{}", s.port);
    let payloads: [(&[u8], u16); 6] = [
        // `%a` then `é` (0xC3 0xA9): the slice `[i+1..i+3]` ends inside `é`.
        (b"/?token=%a\xc3\xa9", 401),
        (b"/?token=%\xc3\xa9", 401),
        (b"/api/graph?x=1&token=%\xe2\x82\xac%", 401),
        (b"/?token=%f\xf0\x9f\x92\xa9&a=%", 401),
        // Not UTF-8 at all: hyper refuses the request line itself.
        (b"/?token=%a\xff", 400),
        (b"/?token=%a\xc3", 400),
    ];
    for i in 0..1000 {
        let (target, want) = payloads[i % payloads.len()];
        let answer = get(s.port, target, &[host.as_bytes()]);
        let got = answer.map(|(code, _)| code);
        assert_eq!(
            got,
            Some(want),
            "request {i}: GET {}",
            String::from_utf8_lossy(target)
        );
    }
    assert_eq!(status(s.port, "/healthz", &[&host]), 200);
    // The login still works, with the token percent-encoded.
    let (code, head) = get(s.port, b"/?a=1&token=s3cr%65t&b=%C3%A9", &[host.as_bytes()]).unwrap();
    assert_eq!(code, 303, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("\r\nlocation: /?a=1&b=%c3%a9\r\n"), "{head}");
    assert!(head.contains("set-cookie: procnet_token=s3cret;"), "{head}");
}

/// Item 7: two `Host` headers are refused whichever comes first, as are
/// two `Origin` or two `Authorization` headers.
#[test]
fn repeated_host_origin_or_authorization_is_400() {
    let s = Server::start(&["--token", "s3cret"]);
    let good = format!("Host: 127.0.0.1:{}", s.port);
    let auth = "Authorization: Bearer s3cret";
    assert_eq!(status(s.port, "/api/graph", &[&good, auth]), 200);
    for hosts in [
        [good.as_str(), "Host: evil.example"],
        ["Host: evil.example", good.as_str()],
        [good.as_str(), good.as_str()],
    ] {
        assert_eq!(
            status(s.port, "/api/graph", &[hosts[0], hosts[1], auth]),
            400,
            "{hosts:?}"
        );
    }
    let origin = format!("Origin: http://127.0.0.1:{}", s.port);
    assert_eq!(status(s.port, "/api/graph", &[&good, auth, &origin]), 200);
    assert_eq!(
        status(s.port, "/api/graph", &[&good, auth, &origin, &origin]),
        400
    );
    assert_eq!(
        status(
            s.port,
            "/api/graph",
            &[&good, "Authorization: Bearer wrong", auth]
        ),
        400
    );
}

/// Item 7: Host forms no browser sends are not this server's (421).
#[test]
fn hostile_host_forms_are_421() {
    let s = Server::start(&[]);
    let p = s.port;
    let hostile = [
        format!("localhost:{p}@evil.example"),
        format!("evil.example@localhost:{p}"),
        format!("user@127.0.0.1:{p}"),
        format!("[::1]evil.example:{p}"),
        format!("[::1]:{p}evil.example"),
        format!("[::1]:{p}]"),
        "[::1".to_string(),
        format!("[::1:{p}"),
        "::1".to_string(),
        format!("127.0.0.1:{p}:{p}"),
        "127.0.0.1:65536".to_string(),
        "127.0.0.1:99999999999999999999".to_string(),
        "127.0.0.1:-1".to_string(),
        "127.0.0.1:".to_string(),
        format!("127.0.0.1 :{p}"),
        format!("127.0.0.1:{p} evil.example"),
        format!("localhost%2f:{p}"),
        format!("[fe80::1%25lo]:{p}"),
        format!("[v1.fe]:{p}"),
        format!("[::127.0.0.1]:{p}"),
        format!("évil.localhost:{p}"),
        format!("localhost\\evil.example:{p}"),
    ];
    for host in &hostile {
        for path in ["/", "/api/graph"] {
            let line = format!("Host: {host}");
            let answer = get(p, path.as_bytes(), &[line.as_bytes()]);
            assert_eq!(answer.map(|a| a.0), Some(421), "Host: {host} on {path}");
        }
    }
    // An absolute-form target names the host the request is for; it must
    // be this server, whatever the Host header says.
    let host = format!("Host: 127.0.0.1:{p}");
    assert_eq!(status(p, "http://evil.example/api/graph", &[&host]), 421);
    assert_eq!(
        status(p, &format!("http://127.0.0.1:{p}/api/graph"), &[&host]),
        200
    );
}

/// Item 7: the IPv4-mapped loopback address is loopback, written either
/// way (browsers write it `[::ffff:7f00:1]`), and same-origin requests
/// from it pass.
#[test]
fn ipv4_mapped_loopback_is_allowed() {
    let s = Server::start(&[]);
    let p = s.port;
    for host in [
        format!("[::ffff:127.0.0.1]:{p}"),
        format!("[::FFFF:7f00:1]:{p}"),
        format!("[0:0:0:0:0:ffff:127.0.0.2]:{p}"),
    ] {
        let h = format!("Host: {host}");
        assert_eq!(status(p, "/api/graph", &[&h]), 200, "{host}");
        let o = format!("Origin: http://{host}");
        assert_eq!(status(p, "/api/graph", &[&h, &o]), 200, "{host}");
    }
}

/// Item 7: the server speaks http only, so an Origin must be `http://`
/// with exactly the Host's host and port (default 80).
#[test]
fn origin_must_match_scheme_host_and_port() {
    let s = Server::start(&[]);
    let p = s.port;
    let host = format!("Host: 127.0.0.1:{p}");
    assert_eq!(
        status(
            p,
            "/api/graph",
            &[&host, &format!("Origin: http://127.0.0.1:{p}")]
        ),
        200
    );
    for origin in [
        format!("https://127.0.0.1:{p}"),
        format!("ws://127.0.0.1:{p}"),
        format!("http://127.0.0.1:{}", p.wrapping_add(1)),
        "http://127.0.0.1".to_string(),
        format!("http://127.0.0.1:{p}/"),
        format!("http://127.0.0.1:{p}/api"),
        format!("http://user@127.0.0.1:{p}"),
        format!("http://127.0.0.1:{p}@evil.example"),
        format!("http://[::ffff:127.0.0.1]:{p}"),
        format!("http://localhost:{p}"),
        format!("//127.0.0.1:{p}"),
        "null".to_string(),
    ] {
        for path in ["/api/graph", "/api/events", "/metrics"] {
            let o = format!("Origin: {origin}");
            assert_eq!(status(p, path, &[&host, &o]), 403, "{origin} on {path}");
        }
    }
    assert_eq!(
        status(
            p,
            "/api/graph",
            &[&host, &format!("Origin: HTTP://127.0.0.1:{p}")]
        ),
        200,
        "the scheme is case-insensitive"
    );
    // Without a port the Host means port 80, and so does the Origin.
    assert_eq!(
        status(
            p,
            "/api/graph",
            &["Host: localhost", "Origin: http://localhost:80"]
        ),
        200
    );
    assert_eq!(
        status(
            p,
            "/api/graph",
            &["Host: localhost", "Origin: https://localhost:80"]
        ),
        403
    );
}

/// Cookies are port-blind: another app on localhost may add its own
/// cookies (even non-ASCII ones, or a stale `procnet_token`). The right
/// token cookie still logs in.
#[test]
fn token_cookie_is_found_among_foreign_cookies() {
    let s = Server::start(&["--token", "s3cret"]);
    let host = format!("Host: 127.0.0.1:{}", s.port);
    let cookie: &[u8] =
        b"Cookie: other=\xc3\xa9t\xc3\xa9; procnet_token=stale; procnet_token=s3cret";
    let answer = get(s.port, b"/api/graph", &[host.as_bytes(), cookie]);
    assert_eq!(answer.map(|a| a.0), Some(200));
    let wrong: &[u8] = b"Cookie: other=\xc3\xa9t\xc3\xa9; procnet_token=stale";
    let answer = get(s.port, b"/api/graph", &[host.as_bytes(), wrong]);
    assert_eq!(answer.map(|a| a.0), Some(401));
    // `Bearer` is case-insensitive, as every HTTP auth scheme.
    assert_eq!(
        status(
            s.port,
            "/api/graph",
            &[&host, "Authorization: BEARER s3cret"]
        ),
        200
    );
}
