//! `procnet` command line: parses flags, calls the library, maps errors to
//! exit codes (2 for anything the user can fix, with one clear message).

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use procnet::collect::containers::{query_once, SNAPSHOT_TIMEOUT};
use procnet::collect::Collector;
use procnet::graph::containers::container_labels;
use procnet::graph::ports::{parse_port_list, ServicePorts};
use procnet::graph::{build_connections, build_graph, ContainerLabels, GraphOptions, Inputs};
use procnet::rules::{resolve_rules_path, RuleSet};
use procnet::snapshot::Snapshot;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "procnet",
    version,
    about = "Which processes on this machine talk to which, over TCP and UDP — live in the browser.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve` flags, accepted without the subcommand (serve is the default).
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the live server (the default).
    Serve(ServeArgs),
    /// Collect once and print to stdout (no server, no network).
    Snapshot(SnapshotArgs),
}

/// Flags that shape the graph, shared by `serve` and `snapshot`.
#[derive(Args, Debug, Clone)]
struct GraphArgs {
    /// Include UDP sockets that have a remote address.
    #[arg(long)]
    udp: bool,
    /// Only process-to-process edges (no external endpoints).
    #[arg(long)]
    p2p_only: bool,
    /// YAML or JSON typing rules.
    #[arg(long, value_name = "PATH")]
    rules: Option<PathBuf>,
    /// Extra service ports for the direction heuristics, e.g. 3000,5000.
    #[arg(long, value_name = "CSV", default_value = "")]
    svc_ports: String,
    /// Show command lines as they are (secrets are redacted by default).
    #[arg(long)]
    show_secrets: bool,
    /// Do not label containers (no container engine questions, no cgroup reads).
    #[arg(long)]
    no_containers: bool,
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// HTTP port.
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Listen address; anything not loopback needs --token or --token-file.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Sampling interval in seconds.
    #[arg(long, default_value_t = 1.0, value_parser = parse_interval)]
    interval: f64,
    /// Directory of `<type>.png` icons.
    #[arg(long, value_name = "PATH")]
    icons_dir: Option<PathBuf>,
    /// Bearer token required by the API and page.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// File whose first line is the token.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Count bytes per flow from packets too (Linux, root or CAP_NET_RAW):
    /// UDP traffic, which the kernel does not count per socket.
    #[arg(long)]
    capture: bool,
    #[command(flatten)]
    graph: GraphArgs,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The `/api/graph` document.
    Graph,
    /// The `/api/connections` document.
    Connections,
    /// Human-readable table.
    Table,
    /// The raw collected snapshot (for recording test fixtures).
    Snapshot,
}

#[derive(Args, Debug)]
struct SnapshotArgs {
    #[command(flatten)]
    graph: GraphArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Graph)]
    format: Format,
    /// Read a recorded snapshot (JSON from `--format snapshot`) instead of
    /// collecting.
    #[arg(long, value_name = "PATH")]
    from: Option<PathBuf>,
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a positive number of seconds (e.g. 1 or 0.5)"
        )),
    }
}

/// The parts of the graph flags that need checking (rules file, ports).
struct GraphSetup {
    options: GraphOptions,
    rules: RuleSet,
    rules_path: Option<PathBuf>,
    containers: bool,
}

fn graph_setup(args: &GraphArgs) -> anyhow::Result<GraphSetup> {
    let extra =
        parse_port_list(&args.svc_ports).map_err(|e| anyhow::anyhow!("--svc-ports: {e}"))?;
    let rules_path = args.rules.as_deref().map(resolve_rules_path);
    let rules = match &rules_path {
        Some(path) => RuleSet::load(path)?,
        None => RuleSet::default(),
    };
    Ok(GraphSetup {
        options: GraphOptions {
            udp: args.udp,
            p2p_only: args.p2p_only,
            service_ports: ServicePorts::new(extra),
            show_secrets: args.show_secrets,
        },
        rules,
        rules_path,
        containers: !args.no_containers,
    })
}

fn run_snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let setup = graph_setup(&args.graph)?;
    let snapshot: Snapshot = match &args.from {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read snapshot file {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "snapshot file {}: not a procnet snapshot (record one with `procnet snapshot --format snapshot`)",
                    path.display()
                )
            })?
        }
        None => {
            let t = std::time::Instant::now();
            let mut collector = Collector::new()?;
            collector.set_containers(setup.containers);
            let snap = collector.sample()?;
            log::debug!("collected in {:?}", t.elapsed());
            snap
        }
    };
    let containers = if !setup.containers {
        ContainerLabels::default()
    } else if args.from.is_some() {
        // A recorded snapshot: the live engine knows nothing of it; only
        // its own forwarding processes (docker-proxy, conmon) name containers.
        container_labels(&[], &snapshot)
    } else {
        let engine = query_once(SNAPSHOT_TIMEOUT);
        container_labels(&engine.containers, &snapshot)
    };
    let inputs = Inputs {
        snapshot: &snapshot,
        rules: &setup.rules,
        options: &setup.options,
        containers: &containers,
        traffic: None,
    };
    let t = std::time::Instant::now();
    let text = match args.format {
        Format::Graph => serde_json::to_string_pretty(&build_graph(&inputs, 1))?,
        Format::Connections => serde_json::to_string_pretty(&build_connections(&inputs))?,
        Format::Snapshot if setup.options.show_secrets => serde_json::to_string_pretty(&snapshot)?,
        Format::Snapshot => {
            let mut shown = snapshot.clone();
            procnet::graph::redact::redact_snapshot(&mut shown);
            serde_json::to_string_pretty(&shown)?
        }
        Format::Table => {
            procnet::table::render(&build_graph(&inputs, 1), &build_connections(&inputs))
        }
    };
    log::debug!("built and serialised in {:?}", t.elapsed());
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    match writeln!(out, "{}", text.trim_end()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let setup = graph_setup(&args.graph)?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--token-file {}: cannot read it", path.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    if token.as_deref() == Some("") {
        anyhow::bail!("the token is empty; give a non-empty --token or --token-file");
    }
    let bind: std::net::IpAddr = args.bind.parse().map_err(|_| {
        anyhow::anyhow!(
            "--bind {}: not an IP address (e.g. 127.0.0.1, ::1 or 0.0.0.0)",
            args.bind
        )
    })?;
    let config = procnet::serve::ServeConfig {
        bind,
        port: args.port,
        interval: std::time::Duration::from_secs_f64(args.interval),
        options: setup.options,
        rules: setup.rules,
        rules_path: setup.rules_path,
        icons_dir: args.icons_dir,
        token,
        capture: args.capture,
        containers: setup.containers,
    };
    procnet::serve::run(config)?;
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Snapshot(args)) => run_snapshot(args),
        Some(Command::Serve(args)) => run_serve(args),
        None => run_serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("procnet: {msg}");
            ExitCode::from(2)
        }
    }
}
