//! The fleet series on `/metrics` of a real `procnet serve`, with real
//! processes on loopback: 1,000 connections from one process to one server
//! are one series per metric (not 1,000), no series carries a pid or a
//! client's ephemeral port, byte counters only grow (closed connections and
//! an exited process keep their bytes), and the info series are there.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Accepts every connection and reads (discards) what it sends; closes a
/// connection on EOF. One thread, `selectors`; the fd limit is raised so
/// 1,000 connections fit. Prints its port.
const SINK: &str = r#"
import resource, selectors, socket
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(1024); s.setblocking(False)
sel = selectors.DefaultSelector(); sel.register(s, selectors.EVENT_READ)
print(s.getsockname()[1], flush=True)
while True:
    for key, _ in sel.select():
        if key.fileobj is s:
            c, _ = s.accept(); c.setblocking(False); sel.register(c, selectors.EVENT_READ)
        else:
            try:
                d = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if not d:
                sel.unregister(key.fileobj); key.fileobj.close()
"#;

/// Opens argv[2] connections to port argv[1], sends argv[3] bytes on each,
/// prints its local ports; on a line on stdin closes them all and prints
/// "closed", then waits for stdin to close and exits.
const CLIENTS: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
port, n, size = (int(a) for a in sys.argv[1:4])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
for c in held:
    c.sendall(b"x" * size)
print(" ".join(str(c.getsockname()[1]) for c in held), flush=True)
sys.stdin.readline()
for c in held:
    c.close()
print("closed", flush=True)
sys.stdin.readline()
"#;

const CONNECTIONS: usize = 1000;
const BYTES_EACH: u64 = 1000;
const FLOW_FAMILIES: [&str; 3] = [
    "procnet_flow_sent_bytes_total",
    "procnet_flow_received_bytes_total",
    "procnet_flow_open_connections",
];

/// The fleet samples of one scrape.
struct Fleet {
    samples: Vec<prometheus_parse::Sample>,
}

impl Fleet {
    fn scrape(server: &Server) -> Fleet {
        let r = server.get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body);
        let scrape = prometheus_parse::Scrape::parse(r.body.lines().map(|l| Ok(l.to_string())))
            .expect("valid exposition format");
        let samples = scrape
            .samples
            .into_iter()
            .filter(|s| {
                s.metric.starts_with("procnet_flow_")
                    || s.metric == "procnet_listen_info"
                    || s.metric == "procnet_host_address_info"
            })
            .collect();
        Fleet { samples }
    }

    /// The samples of `metric` whose labels include all of `labels`.
    fn find(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<&prometheus_parse::Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .collect()
    }

    /// The one value of `metric` with `labels`, `None` when there is none.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(metric, labels);
        assert!(found.len() <= 1, "several {metric} {labels:?}: {found:?}");
        found.first().map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{metric}: unexpected {other:?}"),
        })
    }
}

/// The host's addresses as Python sees them: IPv4 per interface
/// (SIOCGIFADDR) and IPv6 from /proc/net/if_inet6.
fn python_addresses() -> HashSet<String> {
    let script = r#"
import fcntl, ipaddress, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _, name in socket.if_nameindex():
    try:
        r = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
        print(socket.inet_ntoa(r[20:24]))
    except OSError:
        pass
for line in open("/proc/net/if_inet6"):
    print(ipaddress.IPv6Address(bytes.fromhex(line.split()[0])))
"#;
    let mut p = python(script, &[]);
    let mut out = HashSet::new();
    loop {
        let l = p.line();
        if l.is_empty() {
            return out;
        }
        out.insert(l);
    }
}

#[test]
fn thousand_connections_are_one_series_without_pids_or_client_ports() {
    let mut sink = python(SINK, &[]);
    let port: u16 = sink.line().parse().unwrap();
    let port_s = port.to_string();
    let server = Server::start(&[
        "--host-name",
        "fleet-test",
        "--fleet-networks",
        "127.0.0.0/8",
    ]);
    let mut clients = Command::new("python3")
        .args(["-u", "-c", CLIENTS, &port_s])
        .arg(CONNECTIONS.to_string())
        .arg(BYTES_EACH.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = clients.stdin.take().unwrap();
    let mut out = BufReader::new(clients.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let client_ports: HashSet<String> = line.split_whitespace().map(str::to_string).collect();
    assert_eq!(client_ports.len(), CONNECTIONS);

    let client = [
        ("host", "fleet-test"),
        ("role", "client"),
        ("peer_port", port_s.as_str()),
    ];
    let server_half = [
        ("host", "fleet-test"),
        ("role", "server"),
        ("local_port", port_s.as_str()),
    ];
    let total = (CONNECTIONS as u64 * BYTES_EACH) as f64;
    let mut last_sent = (0.0f64, 0.0f64);
    // Every scrape: counters never go down.
    let mut check = |f: &Fleet| {
        let sent = f.value(FLOW_FAMILIES[0], &client).unwrap_or(0.0);
        let recv = f.value(FLOW_FAMILIES[1], &server_half).unwrap_or(0.0);
        assert!(
            sent >= last_sent.0 && recv >= last_sent.1,
            "a counter went down: {last_sent:?} -> {:?}",
            (sent, recv)
        );
        last_sent = (sent, recv);
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let fleet = loop {
        let f = Fleet::scrape(&server);
        check(&f);
        let open = f.value(FLOW_FAMILIES[2], &client);
        let sent = f.value(FLOW_FAMILIES[0], &client);
        let recv = f.value(FLOW_FAMILIES[1], &server_half);
        if open == Some(CONNECTIONS as f64) && sent == Some(total) && recv == Some(total) {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no client series with {CONNECTIONS} connections and {total} bytes: open {open:?}, sent {sent:?}, received {recv:?}; {:?}",
            f.find(FLOW_FAMILIES[2], &[("peer_port", &port_s)])
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // One series per metric and half, not one per connection.
    for metric in FLOW_FAMILIES {
        let c = fleet.find(metric, &client);
        assert_eq!(c.len(), 1, "{metric} client half: {c:?}");
        let s = fleet.find(metric, &server_half);
        assert_eq!(s.len(), 1, "{metric} server half: {s:?}");
        let (c, s) = (&c[0].labels, &s[0].labels);
        assert_eq!(
            (c.get("proto"), c.get("peer_ip"), c.get("local_port")),
            (Some("tcp"), Some("127.0.0.1"), Some(""))
        );
        assert_eq!(
            (s.get("proto"), s.get("peer_ip"), s.get("peer_port")),
            (Some("tcp"), Some("127.0.0.1"), Some(""))
        );
        for l in [c, s] {
            let process = l.get("process").unwrap_or("");
            assert!(process.starts_with("python"), "process label: {l:?}");
            assert!(l.get("container").is_some(), "container label: {l:?}");
        }
    }
    assert_eq!(
        fleet.value(FLOW_FAMILIES[2], &server_half),
        Some(CONNECTIONS as f64)
    );

    // No pid label and no client ephemeral port anywhere in the fleet series.
    let pids = [sink.pid().to_string(), clients.id().to_string()];
    for s in &fleet.samples {
        assert!(s.labels.get("pid").is_none(), "pid label: {s:?}");
        for (name, value) in s.labels.iter() {
            assert!(
                !client_ports.contains(value.as_str()),
                "label {name}={value} is a client's ephemeral port: {s:?}"
            );
            assert!(
                !pids.contains(value),
                "label {name}={value} is a pid: {s:?}"
            );
        }
    }

    // The listener (on an ephemeral port, but serving) and the host's addresses.
    assert_eq!(
        fleet.value(
            "procnet_listen_info",
            &[
                ("host", "fleet-test"),
                ("proto", "tcp"),
                ("ip", "127.0.0.1"),
                ("port", &port_s)
            ]
        ),
        Some(1.0)
    );
    let exported: HashSet<String> = fleet
        .find("procnet_host_address_info", &[("host", "fleet-test")])
        .iter()
        .filter_map(|s| s.labels.get("ip").map(str::to_string))
        .collect();
    for ip in python_addresses() {
        let loopback_outside = ip == "::1";
        assert_eq!(
            exported.contains(&ip),
            !loopback_outside,
            "address {ip}: exported {exported:?}"
        );
    }

    // Close every connection, then let the client process exit: the
    // bytes stay in the series and nothing goes down.
    writeln!(stdin).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "closed");
    drop(stdin);
    let _ = clients.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let f = Fleet::scrape(&server);
        check(&f);
        let open = f.value(FLOW_FAMILIES[2], &client);
        if open == Some(0.0) {
            assert_eq!(f.value(FLOW_FAMILIES[0], &client), Some(total));
            assert_eq!(f.value(FLOW_FAMILIES[1], &server_half), Some(total));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client series did not drop to 0 open connections: {open:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A few more samples: still there, still the same.
    std::thread::sleep(Duration::from_secs(1));
    let f = Fleet::scrape(&server);
    check(&f);
    assert_eq!(f.value(FLOW_FAMILIES[0], &client), Some(total));
}

#[test]
fn loopback_flows_stay_out_unless_the_fleet_networks_cover_them() {
    let (_srv, port) = tcp_server("127.0.0.1");
    let (_cli, _) = tcp_client("127.0.0.1", port, 3, &[]);
    let server = Server::start(&["--host-name", "fleet-test"]);
    let g = server.wait_graph(Duration::from_secs(20), |g| {
        g["edges"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["serverPort"] == port))
    });
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["serverPort"] == port),
        "the local graph has the edge"
    );
    let f = Fleet::scrape(&server);
    let port_s = port.to_string();
    for s in &f.samples {
        let labels = [
            s.labels.get("peer_port"),
            s.labels.get("local_port"),
            s.labels.get("port"),
        ];
        assert!(
            !labels.contains(&Some(port_s.as_str())),
            "a loopback flow or listener is exported by default: {s:?}"
        );
        assert_ne!(s.labels.get("peer_ip"), Some("127.0.0.1"), "{s:?}");
        assert_ne!(s.labels.get("ip"), Some("127.0.0.1"), "{s:?}");
    }
    // The families are there even so.
    let body = server.get("/metrics").body;
    for family in FLOW_FAMILIES
        .iter()
        .chain(&["procnet_listen_info", "procnet_host_address_info"])
    {
        assert!(
            body.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
}

#[test]
fn bad_fleet_flags_exit_2_naming_the_value() {
    for (args, needle) in [
        (
            vec!["--fleet-networks", "10.0.0.0/8,300.1.0.0/16"],
            "300.1.0.0/16",
        ),
        (vec!["--fleet-networks", "10.0.0.0/33"], "10.0.0.0/33"),
        (vec!["--host-name", " "], "--host-name is empty"),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .args(["--port", "0"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("procnet runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
