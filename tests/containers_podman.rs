//! End to end against a real container engine: Podman (rootful), its
//! Docker-compatible API on a unix socket in a temporary directory, and a
//! busybox image imported from the local `busybox-static` binary (no
//! registry, no network beyond loopback).
//!
//! Skips with a printed reason when Podman, root or a static busybox is
//! missing, or when this machine cannot run a container at all; set
//! `PROCNET_REQUIRE_PODMAN=1` to make those a failure instead (CI).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/procnet-busybox";

fn skip(reason: &str) {
    if std::env::var_os("PROCNET_REQUIRE_PODMAN").is_some() {
        panic!("podman end-to-end test cannot run: {reason}");
    }
    eprintln!("SKIPPED containers_podman: {reason}");
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("podman runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
    .trim()
    .to_string()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// A statically linked busybox (Debian's `busybox-static`), usable as a
/// whole root file system.
fn static_busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            std::fs::read(p)
                .map(|b| !b.windows(11).take(4096).any(|w| w == b"/lib64/ld-l"))
                .unwrap_or(false)
        })
}

/// Imports the busybox image unless it is already there.
fn ensure_image(busybox: &Path) -> Result<(), String> {
    if podman(&["image", "exists", IMAGE]).status.success() {
        return Ok(());
    }
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| e.to_string())?;
    for applet in ["sh", "httpd", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| e.to_string())?;
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let out = Command::new("podman")
        .args(["import", "-", IMAGE])
        .stdin(tar.stdout.unwrap())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("podman import failed: {}", text(&out)))
    }
}

/// `podman run` flags that work on restricted machines too: rlimits no
/// higher than ours (no CAP_SYS_RESOURCE needed) and runc when it is
/// installed (crun refuses hybrid cgroup v1/v2 hosts).
fn run_flags() -> Vec<&'static str> {
    let mut flags = vec![
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
    ];
    if on_path("runc") {
        flags.splice(0..0, ["--runtime", "runc"]);
    }
    flags
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the containers and stops the API service, whatever happens.
struct Cleanup {
    containers: Vec<String>,
    service: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "0", name]);
        }
        if let Some(mut s) = self.service.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn connect_within(port: u16, within: Duration) -> TcpStream {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => return s,
            Err(e) if Instant::now() > deadline => panic!("127.0.0.1:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn snapshot(format: &str, docker_host: &str, extra: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["snapshot", "--format", format])
        .args(extra)
        .env("DOCKER_HOST", docker_host)
        .output()
        .expect("procnet runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn listener(doc: &Value, port: u16) -> Value {
    doc["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["port"] == port && l["address"] == "127.0.0.1")
        .cloned()
        .unwrap_or_else(|| panic!("no listener on 127.0.0.1:{port} in {doc:#}"))
}

#[test]
fn podman_containers_are_named() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !on_path("podman") {
        return skip("podman is not installed (apt-get install podman runc busybox-static)");
    }
    if !root {
        return skip("needs root (rootful podman)");
    }
    let Some(busybox) = static_busybox() else {
        return skip("no static busybox (apt-get install busybox-static)");
    };
    if let Err(e) = ensure_image(&busybox) {
        return skip(&e);
    }

    let tag = std::process::id();
    let published = format!("procnet-e2e-pub-{tag}");
    let hostnet = format!("procnet-e2e-host-{tag}");
    let mut cleanup = Cleanup {
        containers: vec![published.clone(), hostnet.clone()],
        service: None,
    };
    let (p1, p2) = (free_port(), free_port());

    // A container publishing a port: the host end is podman's (conmon's)
    // socket, the server is in the container's network namespace.
    let mut args = vec!["run", "-d", "--name", &published];
    args.extend(run_flags());
    let publish = format!("127.0.0.1:{p1}:{p1}");
    let listen1 = p1.to_string();
    args.extend(["-p", &publish, IMAGE, "/bin/httpd", "-f", "-p", &listen1]);
    let out = podman(&args);
    if !out.status.success() {
        return skip(&format!(
            "this machine cannot run a container: podman {}: {}",
            args.join(" "),
            text(&out)
        ));
    }
    // A container on the host network: its own process owns the listener,
    // and its cgroup names the container.
    let mut args = vec!["run", "-d", "--name", &hostnet, "--network", "host"];
    args.extend(run_flags());
    let listen2 = format!("127.0.0.1:{p2}");
    args.extend([IMAGE, "/bin/httpd", "-f", "-p", &listen2]);
    let out = podman(&args);
    assert!(out.status.success(), "podman run: {}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("podman.sock");
    let docker_host = format!("unix://{}", sock.display());
    cleanup.service = Some(
        Command::new("podman")
            .args(["system", "service", "--time=0", &docker_host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman system service starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "no API socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Connections to both, held open while procnet looks.
    let _c1 = connect_within(p1, Duration::from_secs(10));
    let _c2 = connect_within(p2, Duration::from_secs(10));

    // The API answers (the socket may exist a moment before it does).
    let mut doc = snapshot("connections", &docker_host, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while listener(&doc, p1)["containerName"] != published.as_str() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        doc = snapshot("connections", &docker_host, &[]);
    }
    let l1 = listener(&doc, p1);
    assert_eq!(l1["containerName"], published.as_str(), "{l1:#}");
    assert_eq!(l1["serviceLabel"], published.as_str(), "{l1:#}");
    let to_p1: Vec<&Value> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["toPort"] == p1 && c["fromPid"] == std::process::id())
        .collect();
    assert!(!to_p1.is_empty(), "no connection to {p1} in {doc:#}");
    for c in to_p1 {
        assert_eq!(c["toLabel"], published.as_str(), "{c:#}");
    }
    let l2 = listener(&doc, p2);
    assert_eq!(l2["containerName"], hostnet.as_str(), "{l2:#}");
    assert_eq!(l2["processName"], "httpd", "{l2:#}");

    // The process node of the host-network container carries its name.
    let graph = snapshot("graph", &docker_host, &[]);
    let node = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["pid"] == l2["pid"])
        .cloned()
        .expect("httpd node");
    assert_eq!(node["container"], hostnet.as_str(), "{node:#}");

    // Without the API: podman's conmon still names the published port and
    // the cgroup still gives the container (by short id).
    let doc = snapshot("connections", "unix:///nonexistent/engine.sock", &[]);
    let l1 = listener(&doc, p1);
    if l1["processName"] == "conmon" {
        assert_eq!(l1["containerName"], published.as_str(), "{l1:#}");
    }
    let id = podman(&["inspect", "--format", "{{.Id}}", &hostnet]);
    let short: String = String::from_utf8_lossy(&id.stdout)
        .trim()
        .chars()
        .take(12)
        .collect();
    assert_eq!(listener(&doc, p2)["containerName"], short.as_str());

    // --no-containers: no labels at all.
    let doc = snapshot("connections", &docker_host, &["--no-containers"]);
    assert!(listener(&doc, p1).get("containerName").is_none());
    assert!(listener(&doc, p2).get("containerName").is_none());

    // The live server: the watcher thread feeds the sampler, /healthz says so.
    std::env::set_var("DOCKER_HOST", &docker_host);
    let server = Server::start(&[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = server.get("/healthz").json();
        let conns = server.get("/api/connections").json();
        let named = conns["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["port"] == p1 && l["containerName"] == published.as_str());
        if health["containers"]["state"] == "ok" && named {
            assert!(health["containers"]["containers"].as_u64().unwrap() >= 2);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never named the container: {health:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    drop(cleanup);
}
