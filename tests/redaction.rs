//! Secrets on real command lines never leave procnet unless asked: real
//! processes (python3 behind a symlink named after the tool, so argv[0] is
//! `redis-cli`, `sshpass`, `mysql`, `curl`…) hold loopback sockets with 40
//! common secret shapes in their arguments, and every output is searched:
//! `procnet snapshot --format graph|connections|table|snapshot`, and a
//! running `procnet serve`'s `/api/graph`, `/api/connections`, `/api/events`
//! (first graph and a diff), `/api/traffic`, `/metrics`, `/healthz` and `/`.
//! With `--show-secrets` the secrets are there, so the search can fail.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::io::BufReader;
use std::process::{Command, Stdio};
use std::time::Duration;

/// (program name, arguments): `{S}` is where the secret goes, `~` a space
/// inside one argument.
const SHAPES: &[(&str, &str)] = &[
    ("app", "--password={S}"),
    ("app", "--password {S}"),
    ("mysql", "-uroot -p{S} db"),
    ("redis-cli", "-h 127.0.0.1 -a {S} ping"),
    ("curl", "-H Authorization:~Bearer~{S} http://x"),
    ("app", "--db-password {S}"),
    ("app", "--passphrase={S}"),
    ("sshpass", "-p {S} ssh -p 22 host"),
    ("app", "--auth {S}"),
    ("app", "--access-token {S}"),
    ("java", "-Djavax.net.ssl.keyStorePassword={S} -jar a.jar"),
    ("git", "clone https://{S}@github.com/x/y"),
    ("app", "--dsn user:{S}@tcp(127.0.0.1:3306)/db"),
    ("app", "--config {\"password\":\"{S}\"}"),
    ("curl", "-u bob:{S} http://x"),
    ("app", "--api-key={S}"),
    ("app", "--private-key {S}"),
    ("app", "--secret_key={S}"),
    ("env", "PGPASSWORD={S} psql -h db"),
    ("app", "postgres://u:{S}@db:5432/x"),
    ("redis-cli", "-u redis://:{S}@127.0.0.1:6379"),
    ("curl", "-H X-Api-Key:~{S} http://x"),
    ("app", "--client-secret {S}"),
    ("app", "http://h/?a=1&access_token={S}&b=2"),
    ("app", "--token:{S}"),
    ("app", "--credentials {S}"),
    ("app", "AWS_SECRET_ACCESS_KEY={S}"),
    ("mongo", "-u admin -p {S}"),
    ("sqlcmd", "-S host -U sa -P {S}"),
    ("docker", "login -u bob -p {S} registry.example"),
    ("docker", "run -e GITHUB_TOKEN={S} img"),
    ("sh", "-c mysql~-p{S}~-e~'select~1'"),
    ("app", "--auth-token={S}"),
    ("keytool", "-storepass {S} -keystore ks.jks"),
    ("redis-server", "--requirepass {S}"),
    ("smbclient", "//h/share -U bob%{S}"),
    ("mount", "-o username=bob,password={S} //h/s /mnt"),
    ("curl", "--oauth2-bearer {S} http://x"),
    ("app", "{'token':~'{S}'}"),
    ("app", "jdbc:mysql://h/db?user=a&password={S}"),
];

/// Ordinary arguments that must reach the output unchanged.
const ORDINARY: (&str, &str) = (
    "psql",
    "-h db -p 5432 --port 8080 --keep-alive --monkey keyboard --no-auth --verbose",
);

/// Listens on loopback (so it is a listener with a command line) and
/// connects to the server (so it is a graph node), then waits.
const HOLDER: &str = r#"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
l = socket.socket()
l.bind((host, 0))
l.listen(1)
c = socket.create_connection((host, port))
print("ok", flush=True)
time.sleep(3600)
"#;

fn secret(i: usize) -> String {
    format!("Qz{i:02}Sekr3tHk")
}

fn args_of(shape: &str, secret: &str) -> Vec<String> {
    shape
        .split(' ')
        .map(|a| a.replace('~', " ").replace("{S}", secret))
        .collect()
}

/// A directory with the holder script and python3 symlinks named after
/// each program.
struct Tools {
    dir: tempfile::TempDir,
}

impl Tools {
    fn new() -> Tools {
        let dir = tempfile::Builder::new()
            .prefix("pn")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("h.py"), HOLDER).expect("write holder");
        let python = python_interpreter();
        let mut names: Vec<&str> = SHAPES.iter().map(|(p, _)| *p).collect();
        names.push(ORDINARY.0);
        names.sort_unstable();
        names.dedup();
        for name in names {
            std::os::unix::fs::symlink(&python, dir.path().join(name)).expect("symlink");
        }
        Tools { dir }
    }

    /// Starts `program` (python3 under that name) holding a socket to
    /// `port`, with `args` after the script's own two.
    fn spawn(&self, program: &str, port: u16, args: &[String]) -> Proc {
        let dir = self.dir.path();
        let mut child = Command::new(dir.join(program))
            .arg(dir.join("h.py"))
            .args(["127.0.0.1", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs under a tool's name");
        let out = BufReader::new(child.stdout.take().unwrap());
        Proc { child, out }
    }
}

/// Every shape's process plus the ordinary one, all connected.
struct Helpers {
    tools: Tools,
    _server: Proc,
    procs: Vec<Proc>,
    ordinary: Proc,
    secrets: Vec<String>,
}

impl Helpers {
    fn start() -> Helpers {
        let tools = Tools::new();
        let (server, port) = tcp_server("127.0.0.1");
        let secrets: Vec<String> = (0..SHAPES.len()).map(secret).collect();
        let mut procs: Vec<Proc> = SHAPES
            .iter()
            .zip(&secrets)
            .map(|((program, shape), s)| tools.spawn(program, port, &args_of(shape, s)))
            .collect();
        let mut ordinary = tools.spawn(ORDINARY.0, port, &args_of(ORDINARY.1, ""));
        for p in procs.iter_mut().chain(std::iter::once(&mut ordinary)) {
            assert_eq!(p.line(), "ok", "helper connected");
        }
        Helpers {
            tools,
            _server: server,
            procs,
            ordinary,
            secrets,
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }

    /// Secrets found in `text`, with the shape each came from.
    fn leaked(&self, text: &str) -> Vec<String> {
        self.secrets
            .iter()
            .zip(SHAPES)
            .filter(|(s, _)| text.contains(s.as_str()))
            .map(|(s, (program, shape))| format!("{program} {shape} ({s})"))
            .collect()
    }
}

fn has_all_pids(graph: &serde_json::Value, pids: &[u32]) -> bool {
    let nodes = graph["nodes"].as_array().cloned().unwrap_or_default();
    pids.iter().all(|pid| {
        nodes
            .iter()
            .any(|n| n["pid"].as_u64() == Some(u64::from(*pid)))
    })
}

fn cmdline_of(graph: &serde_json::Value, pid: u32) -> String {
    graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["pid"].as_u64() == Some(u64::from(pid)))
        .and_then(|n| n["cmdline"].as_str())
        .unwrap_or_else(|| panic!("no node with a cmdline for pid {pid}"))
        .to_string()
}

fn snapshot(format: &str, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["snapshot", "--format", format, "--no-containers"])
        .args(extra)
        .output()
        .expect("procnet runs");
    assert!(
        out.status.success(),
        "snapshot --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn snapshot_outputs_hide_every_secret_shape() {
    let h = Helpers::start();
    let graph: serde_json::Value = serde_json::from_str(&snapshot("graph", &[])).unwrap();
    assert!(has_all_pids(&graph, &h.pids()), "every helper is a node");
    let ordinary = cmdline_of(&graph, h.ordinary.pid());
    assert!(
        ordinary.ends_with(ORDINARY.1),
        "ordinary arguments stay: {ordinary}"
    );
    for format in ["graph", "connections", "table", "snapshot"] {
        let text = snapshot(format, &[]);
        let leaked = h.leaked(&text);
        assert!(leaked.is_empty(), "--format {format} leaks {leaked:#?}");
    }
    // A recorded snapshot replays as redacted as it was recorded.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), snapshot("snapshot", &[])).unwrap();
    let replayed = snapshot("graph", &["--from", &file.path().display().to_string()]);
    assert!(h.leaked(&replayed).is_empty());
}

#[test]
fn snapshot_outputs_show_secrets_when_asked() {
    let h = Helpers::start();
    for format in ["graph", "snapshot"] {
        let text = snapshot(format, &["--show-secrets"]);
        assert_eq!(
            h.leaked(&text).len(),
            SHAPES.len(),
            "--show-secrets --format {format} shows every secret"
        );
    }
}

/// Every route's body, and the event stream's first graph plus a diff that
/// adds a process with a secret on its command line.
fn served_texts(
    h: &Helpers,
    s: &Server,
    tools_port: u16,
    late_secret: &str,
) -> Vec<(String, String)> {
    let g = s.wait_graph(Duration::from_secs(20), |g| has_all_pids(g, &h.pids()));
    assert!(has_all_pids(&g, &h.pids()), "every helper is a node");
    let mut texts = vec![("/api/graph (polled)".to_string(), g.to_string())];
    for path in [
        "/api/graph",
        "/api/connections",
        "/api/traffic",
        "/metrics",
        "/healthz",
        "/",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        texts.push((path.to_string(), r.body));
    }
    let mut events = EventStream::open(s.port);
    let first = events.next(Duration::from_secs(10)).expect("first event");
    assert_eq!(first.name, "graph");
    texts.push(("/api/events graph".into(), first.data.to_string()));
    let mut late = h
        .tools
        .spawn("app", tools_port, &args_of("--password {S}", late_secret));
    assert_eq!(late.line(), "ok");
    let mut saw_late = false;
    for _ in 0..200 {
        let Some(ev) = events.next(Duration::from_secs(10)) else {
            break;
        };
        let text = ev.data.to_string();
        let late_id = format!("pid:{}", late.pid());
        let adds_late = ev.data["addedNodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().any(|n| n["id"] == late_id.as_str()));
        texts.push((format!("/api/events {}", ev.name), text));
        if ev.name == "diff" && adds_late {
            saw_late = true;
            break;
        }
    }
    assert!(saw_late, "a diff adds the late process");
    texts
}

fn serve_check(show: bool) {
    let h = Helpers::start();
    let (_late_server, late_port) = tcp_server("127.0.0.1");
    let late_secret = "QzLateSekr3tHk";
    let args: &[&str] = if show { &["--show-secrets"] } else { &[] };
    let s = Server::start(args);
    let texts = served_texts(&h, &s, late_port, late_secret);
    if show {
        let graph: serde_json::Value = serde_json::from_str(&texts[0].1).unwrap();
        let hidden: Vec<String> = h
            .procs
            .iter()
            .zip(&h.secrets)
            .map(|(p, s)| (cmdline_of(&graph, p.pid()), s))
            .filter(|(cmd, s)| !cmd.contains(s.as_str()))
            .map(|(cmd, _)| cmd)
            .collect();
        assert!(hidden.is_empty(), "--show-secrets shows all: {hidden:#?}");
        assert!(texts.iter().any(|(_, t)| t.contains(late_secret)));
    } else {
        for (what, text) in &texts {
            let leaked = h.leaked(text);
            assert!(leaked.is_empty(), "{what} leaks {leaked:#?}");
            assert!(!text.contains(late_secret), "{what} leaks the late secret");
        }
        let ordinary = cmdline_of(
            &serde_json::from_str(&texts[0].1).unwrap(),
            h.ordinary.pid(),
        );
        assert!(ordinary.ends_with(ORDINARY.1), "{ordinary}");
    }
}

#[test]
fn served_outputs_hide_every_secret_shape() {
    serve_check(false);
}

#[test]
fn served_outputs_show_secrets_when_asked() {
    serve_check(true);
}
