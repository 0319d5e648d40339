//! The `Monitor` library API (netprocmon's abilities) on real processes.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use procnet::monitor::{Monitor, MonitorError};
use procnet::snapshot::Proto;

const SENDER: &str = r#"
import socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sys.stdin = open("/dev/null")
print(c.getsockname()[1], flush=True)
time.sleep(float(sys.argv[2]))
c.sendall(b"z" * 1_000_000)
print("sent", flush=True)
time.sleep(3600)
"#;

#[test]
fn counts_ports_and_interfaces() {
    let (server, port) = tcp_server("127.0.0.1");
    // Connect now, send only after the monitor's baseline.
    let mut client = python(SENDER, &[&port.to_string(), "1.0"]);
    let client_port: u16 = client.line().parse().unwrap();
    let mut monitor = Monitor::new().expect("monitor");
    monitor.add_pid(client.pid());
    monitor.add_address("127.0.0.1".parse().unwrap()).unwrap();
    assert!(matches!(
        monitor.add_address("203.0.113.1".parse().unwrap()),
        Err(MonitorError::NotAnInterfaceAddress(_))
    ));
    assert_eq!(
        monitor
            .listen_interfaces()
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        vec!["lo"]
    );
    assert_eq!(
        monitor
            .interface_by_address("127.0.0.1".parse().unwrap())
            .as_deref(),
        Some("lo")
    );
    assert_eq!(client.line(), "sent");
    std::thread::sleep(std::time::Duration::from_millis(200));
    monitor.refresh().unwrap();
    let counts = monitor.count_by_pid(client.pid());
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0].interface, "lo");
    assert!(
        (counts[0].send as f64 - 1e6).abs() / 1e6 < 0.01,
        "{counts:?}"
    );
    assert_eq!(monitor.counts(), counts);
    let server_counts = monitor.count_by_pid(server.pid());
    assert!(
        (server_counts[0].recv as f64 - 1e6).abs() / 1e6 < 0.01,
        "{server_counts:?}"
    );
    assert_eq!(monitor.pid_by_port(Proto::Tcp, port), Some(server.pid()));
    assert!(monitor.ports_by_pid(server.pid()).contains(&port));
    assert_eq!(monitor.ports_by_proto(Proto::Tcp), vec![client_port]);
    assert_eq!(monitor.ports(), vec![client_port]);
    assert_eq!(monitor.ports_by_proto(Proto::Udp), Vec::<u16>::new());
    monitor.remove_pid(client.pid());
    assert!(monitor.counts().is_empty());
    monitor.clear_addresses();
    assert!(!monitor.listen_interfaces().is_empty());
}
