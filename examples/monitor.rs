//! Prints a process's traffic per interface every second, netprocmon style.
//! Usage: cargo run --example monitor -- <pid> [seconds]

use procnet::monitor::Monitor;
use procnet::snapshot::Proto;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pid: u32 = match args.next() {
        Some(p) => p.parse().map_err(|_| format!("`{p}` is not a pid"))?,
        None => std::process::id(),
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut monitor = Monitor::new()?;
    monitor.add_pid(pid);
    println!(
        "watching pid {pid} on {:?}",
        monitor
            .listen_interfaces()
            .iter()
            .map(|i| &i.name)
            .collect::<Vec<_>>()
    );
    println!("its TCP ports: {:?}", monitor.ports_by_proto(Proto::Tcp));
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        monitor.refresh()?;
        for t in monitor.count_by_pid(pid) {
            println!(
                "NetworkTraffic(interface={}, recv={}, pid={}, send={})",
                t.interface, t.recv, t.pid, t.send
            );
        }
    }
    Ok(())
}
