//! Prints a process's traffic per interface every interval, netprocmon
//! style, its children's included, refreshed on a background thread.
//!
//! Usage: cargo run --example monitor -- [<pid>] [seconds] [--interval SECS] [--no-descendants] [--no-socket-hooks]
//!
//! Without a pid it watches itself. Run as root to count UDP: from the
//! kernel's socket hooks (with BTF), else from packet capture
//! (`--no-socket-hooks` asks for capture); otherwise the output says UDP is
//! not counted, and why. The first line and the total say which source.

use procnet::monitor::{Monitor, MonitorOptions};
use procnet::snapshot::Proto;
use std::time::Duration;

struct Args {
    pid: u32,
    seconds: u64,
    interval: Duration,
    descendants: bool,
    socket_hooks: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        pid: std::process::id(),
        seconds: 5,
        interval: Duration::from_secs(1),
        descendants: true,
        socket_hooks: true,
    };
    let mut positional = 0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-descendants" => args.descendants = false,
            "--no-socket-hooks" => args.socket_hooks = false,
            "--interval" => {
                let v = it.next().ok_or("--interval needs a value in seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or(format!("--interval `{v}`: want seconds > 0, e.g. 0.5"))?;
                args.interval = Duration::from_secs_f64(secs);
            }
            _ if positional == 0 => {
                args.pid = a.parse().map_err(|_| format!("`{a}` is not a pid"))?;
                positional += 1;
            }
            _ if positional == 1 => {
                args.seconds = a
                    .parse()
                    .map_err(|_| format!("`{a}` is not a number of seconds"))?;
                positional += 1;
            }
            _ => return Err(format!("unexpected argument `{a}`")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse()?;
    let pid = args.pid;
    let mut monitor = Monitor::with_options(MonitorOptions {
        descendants: args.descendants,
        socket_hooks: args.socket_hooks,
        ..MonitorOptions::default()
    })?;
    monitor.add_pid(pid);
    println!(
        "watching pid {pid} ({}) on {:?}; UDP: {}",
        if args.descendants {
            "with its descendants"
        } else {
            "alone"
        },
        monitor
            .listen_interfaces()
            .iter()
            .map(|i| &i.name)
            .collect::<Vec<_>>(),
        monitor.udp_source()
    );
    let background = monitor.start(args.interval)?;
    let ticks = (args.seconds as f64 / args.interval.as_secs_f64()).ceil() as u64;
    for _ in 0..ticks {
        std::thread::sleep(args.interval);
        let state = background.lock();
        if let Some(e) = state.last_error() {
            eprintln!("refresh failed: {e}");
        }
        for t in state.count_by_pid(pid) {
            println!(
                "NetworkTraffic(interface={}, recv={}, pid={}, send={})",
                t.interface, t.recv, t.pid, t.send
            );
        }
    }
    let state = background.lock();
    let ports: Vec<String> = state
        .ports_by_pid(pid)
        .iter()
        .map(|(proto, port)| format!("{}/{port}", proto.as_str()))
        .collect();
    println!("ports: {}", ports.join(" "));
    println!(
        "TCP ports of the watched: {:?}",
        state.ports_by_proto(Proto::Tcp)
    );
    let counts = state.count_by_pid(pid);
    println!(
        "total: recv={} send={} (TCP: kernel counters; UDP: {})",
        counts.iter().map(|t| t.recv).sum::<u64>(),
        counts.iter().map(|t| t.send).sum::<u64>(),
        state.udp_source()
    );
    Ok(())
}
