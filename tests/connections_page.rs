//! `/api/connections?rows=&q=&sort=&limit=&offset=` against a real server
//! with real loopback connections: the page, its `total`, the order, the
//! filter, the listeners' pages, the `400`s, the whole document when no
//! parameter is given, and one build of the rows per sample however many
//! pages are asked for.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};

const CLIENTS: usize = 30;

fn rows(page: &Value) -> &Vec<Value> {
    page["connections"].as_array().expect("a connections page")
}

fn endpoint(row: &Value, side: &str) -> String {
    format!(
        "{}:{}",
        row[format!("{side}Address")].as_str().unwrap(),
        row[format!("{side}Port")]
    )
}

/// The server samples once (interval 60 s) after the connections are up,
/// so every request of a test reads the same sample.
fn setup() -> (Proc, u16, Proc, Vec<u16>, Server) {
    let (server_proc, port) = tcp_server("127.0.0.1");
    let (client, ports) = tcp_client("127.0.0.1", port, CLIENTS, &[]);
    let server = Server::start_with_interval(&[], "60");
    (server_proc, port, client, ports, server)
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[test]
fn pages_filter_sort_and_total() {
    let (server_proc, port, client, ports, s) = setup();
    let needle = format!("127.0.0.1:{port}");
    let q = format!("q={needle}");

    // The filter: both ends of each of the 30 connections, nothing else.
    let all = s.get(&format!("/api/connections?{q}&limit=1000&sort=fromPort"));
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.header("content-type"), Some("application/json"));
    let all = all.json();
    let list = rows(&all);
    assert_eq!(all["total"].as_u64().unwrap() as usize, list.len());
    assert!(all["unfiltered"].as_u64().unwrap() >= list.len() as u64);
    assert!(
        all.get("listeners").is_none(),
        "a connections page has no listeners"
    );
    for r in list {
        assert!(
            endpoint(r, "from").contains(&needle) || endpoint(r, "to").contains(&needle),
            "{r}"
        );
    }
    let client_side: Vec<u64> = list
        .iter()
        .filter(|r| r["fromPid"] == client.pid() && r["toPort"] == port)
        .map(|r| r["fromPort"].as_u64().unwrap())
        .collect();
    let mut want: Vec<u64> = ports.iter().map(|&p| p as u64).collect();
    want.sort();
    assert_eq!(client_side, want, "every client end, in fromPort order");
    let server_side = list
        .iter()
        .filter(|r| r["fromPid"] == server_proc.pid() && r["fromPort"] == port)
        .count();
    assert_eq!(server_side, CLIENTS, "every accepted end");
    let ordered: Vec<u64> = list
        .iter()
        .map(|r| r["fromPort"].as_u64().unwrap())
        .collect();
    assert!(
        ordered.windows(2).all(|w| w[0] <= w[1]),
        "ascending: {ordered:?}"
    );

    // Paging: pages of 7 are the same rows, in the same order, as one page.
    let mut paged = Vec::new();
    for offset in (0..list.len() + 7).step_by(7) {
        let p = s
            .get(&format!(
                "/api/connections?{q}&sort=fromPort&limit=7&offset={offset}"
            ))
            .json();
        assert_eq!(p["total"], all["total"]);
        assert_eq!(
            (p["offset"].as_u64(), p["limit"].as_u64()),
            (Some(offset as u64), Some(7))
        );
        assert!(rows(&p).len() <= 7);
        paged.extend(rows(&p).iter().cloned());
    }
    assert_eq!(&paged, list);

    // Descending, and several terms (all must match): the client's end of
    // one connection, by its port and its process's pid.
    let desc = s
        .get(&format!("/api/connections?{q}&sort=-fromPort&limit=1000"))
        .json();
    let d: Vec<u64> = rows(&desc)
        .iter()
        .map(|r| r["fromPort"].as_u64().unwrap())
        .collect();
    assert!(d.windows(2).all(|w| w[0] >= w[1]), "descending: {d:?}");
    let one = s
        .get(&format!(
            "/api/connections?q=127.0.0.1:{}+{}+{needle}",
            ports[0],
            client.pid()
        ))
        .json();
    assert!(rows(&one)
        .iter()
        .any(|r| r["fromPort"] == ports[0] && r["fromPid"] == client.pid()));
    assert!(rows(&one).len() <= 2, "{one}");
    let none = s.get("/api/connections?q=no-such-process-anywhere").json();
    assert_eq!((none["total"].as_u64(), rows(&none).len()), (Some(0), 0));

    // Listeners: their own pages, with the same parameters.
    let l = s
        .get(&format!("/api/connections?rows=listeners&{q}&sort=-port"))
        .json();
    let ls = l["listeners"].as_array().expect("a listeners page");
    assert!(l.get("connections").is_none());
    assert!(
        ls.iter()
            .any(|x| x["port"] == port && x["pid"] == server_proc.pid()),
        "{l}"
    );
    assert_eq!(l["total"].as_u64().unwrap() as usize, ls.len());

    // Without parameters: the whole document, exactly as before.
    let full = s.get("/api/connections").json();
    let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["connections", "listeners"]);
    assert!(full["connections"].as_array().unwrap().len() as u64 >= all["total"].as_u64().unwrap());

    // All of that was one sample: the rows were built once, the pages and
    // the whole document cut from them.
    assert_eq!(
        metric(&s, "procnet_view_builds_total{view=\"connections\"}"),
        1.0
    );
}

/// A GET with `Accept-Encoding: gzip`: the status, headers and body bytes as sent.
fn get_gzip(port: u16, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let (status, headers, body) = split_response(&raw);
    (status, headers, body.to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn large_pages_are_gzip_when_accepted() {
    let (_server_proc, port, _client, _ports, s) = setup();
    let path = format!("/api/connections?q=127.0.0.1:{port}&limit=1000");
    let plain = s.get(&path).json();
    let (status, headers, body) = get_gzip(s.port, &path);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut json)
        .expect("valid gzip");
    assert_eq!(serde_json::from_slice::<Value>(&json).unwrap(), plain);
    // A small page is sent as it is.
    let (_, headers, body) = get_gzip(s.port, "/api/connections?limit=0");
    assert_eq!(header(&headers, "content-encoding"), None);
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["total"].is_u64());
}

#[test]
fn bad_parameters_are_400_with_a_clear_message() {
    let s = Server::start_with_interval(&[], "60");
    for (query, says) in [
        ("limit=abc", "limit=\"abc\" is not a whole number"),
        ("offset=-1", "offset=\"-1\" is not a whole number"),
        ("limit=10001", "at most 10000"),
        ("sort=bogus", "connections have no field `bogus`"),
        (
            "rows=listeners&sort=fromPort",
            "listeners have no field `fromPort`",
        ),
        ("rows=everything", "give rows=connections or rows=listeners"),
        ("limit=1&limit=2", "`limit` is given more than once"),
        ("page=2", "unknown parameter `page`"),
    ] {
        let r = s.get(&format!("/api/connections?{query}"));
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(says), "{query}: {}", r.body);
        assert!(
            r.body.starts_with("procnet: /api/connections: "),
            "{}",
            r.body
        );
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    // Still serving after all of them.
    assert_eq!(s.get("/api/connections?limit=1").status, 200);
}
