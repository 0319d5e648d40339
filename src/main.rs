//! `procnet` command line: parses flags, calls the library, maps errors to
//! exit codes: 2 for anything the user can fix (a flag, a file, a port in
//! use), 1 for run-time failures they cannot (a kernel interface missing,
//! the OS refusing a socket, an I/O error), each with one clear message.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use procnet::collect::containers::{query_once, SNAPSHOT_TIMEOUT};
use procnet::collect::CollectError;
use procnet::collect::Collector;
use procnet::graph::containers::container_labels;
use procnet::graph::ports::{parse_port_list, ServicePorts};
use procnet::graph::{build_connections, build_graph, ContainerLabels, GraphOptions, Inputs};
use procnet::rules::{resolve_rules_path, RuleSet};
use procnet::serve::ServeError;
use procnet::snapshot::Snapshot;
use procnet::user_file::read_text;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The exit statuses, shown at the end of `--help`.
const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  a run-time failure that no flag can fix: the collector cannot start
     (a kernel interface is missing), the OS refuses the listening socket
     for a reason other than the port being in use, a server or output
     I/O error
  2  a usage or input error: a bad flag or value, an unreadable, oversized
     or invalid --rules, --token-file or --from file, an invalid regex,
     --icons-dir not a directory, a port in use, an address not on this
     machine, --bind off loopback without a token";

/// Smallest and largest `--interval`: below 50 ms sampling costs most of a
/// core; above an hour the view is not live any more (and an interval has
/// to fit a `Duration`).
const INTERVAL_RANGE: (f64, f64) = (0.05, 3600.0);

/// Largest `--token-file`: a token is one line.
const MAX_TOKEN_FILE_BYTES: u64 = 64 << 10;

/// Largest `snapshot --from` file: a recording of 100,000 sockets is about
/// 60 MB of JSON.
const MAX_SNAPSHOT_FILE_BYTES: u64 = 256 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "procnet",
    version,
    about = "Which processes on this machine talk to which, over TCP and UDP — live in the browser.",
    args_conflicts_with_subcommands = true,
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve` flags, accepted without the subcommand (serve is the default).
    #[command(flatten)]
    serve: ServeArgs,
}

// Parsed once at start-up: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the live server (the default).
    #[command(after_help = EXIT_CODES)]
    Serve(Box<ServeArgs>),
    /// Collect once and print to stdout (no server, no network).
    #[command(after_help = EXIT_CODES)]
    Snapshot(SnapshotArgs),
    /// Closed connections (Zeek conn.log shape) from a recording.
    #[command(after_help = EXIT_CODES)]
    Flows(FlowsArgs),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum FlowsFormat {
    /// One line per connection, aligned columns.
    Table,
    /// One JSON object per line (the `/api/flows` records).
    Ndjson,
}

#[derive(Args, Debug)]
struct FlowsArgs {
    /// Connections that ended at or after this: a time (RFC 3339, Unix
    /// seconds) or a duration back from now (`1h`, `30m`).
    #[arg(long, default_value = "1h", value_name = "T")]
    since: String,
    /// ... and at or before this (default: now).
    #[arg(long, value_name = "T")]
    until: Option<String>,
    #[arg(long, value_enum, default_value_t = FlowsFormat::Table)]
    format: FlowsFormat,
    /// The recording directory (from `procnet serve --record DIR`). A
    /// running server answers the same on GET /api/flows.
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// Extra service ports for the direction heuristics, e.g. 3000,5000.
    #[arg(long, value_name = "CSV", default_value = "")]
    svc_ports: String,
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
    /// Do not look up names of remote addresses (reverse DNS).
    #[arg(long, conflicts_with = "dns_server")]
    no_dns: bool,
    /// The DNS server for reverse lookups, IP[:PORT] (port 53 by default),
    /// e.g. 127.0.0.1:5353; default: the system's resolver configuration.
    #[arg(long, value_name = "IP[:PORT]", value_parser = procnet::names::parse_dns_server)]
    dns_server: Option<std::net::SocketAddr>,
}

impl GraphArgs {
    /// Which resolver names remote addresses.
    fn dns(&self) -> procnet::names::DnsSetting {
        use procnet::names::DnsSetting;
        match (self.no_dns, self.dns_server) {
            (true, _) => DnsSetting::Off,
            (false, Some(addr)) => DnsSetting::Server(addr),
            (false, None) => DnsSetting::System,
        }
    }
}

#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// HTTP port.
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Listen address; anything not loopback needs --token or --token-file.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Sampling interval in seconds, 0.05 to 3600.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 1.0,
        value_parser = parse_interval,
        allow_negative_numbers = true
    )]
    interval: f64,
    /// Directory of `<type>.png` icons (must exist).
    #[arg(long, value_name = "PATH")]
    icons_dir: Option<PathBuf>,
    /// Bearer token required by the API and page.
    #[arg(long, conflicts_with = "token_file")]
    token: Option<String>,
    /// File whose first line is the token (a regular file, at most 64 KiB).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Count bytes per flow from packets too (Linux, root or CAP_NET_RAW):
    /// UDP traffic, which the kernel does not count per socket.
    #[arg(long)]
    capture: bool,
    /// This host's name in the fleet series (the `host` label of
    /// procnet_flow_*, procnet_listen_info, procnet_host_address_info);
    /// default: the machine's hostname.
    #[arg(long, value_name = "NAME")]
    host_name: Option<String>,
    /// Networks where fleet peers live, comma-separated CIDRs; a peer
    /// outside is peer_ip="external", loopback is exported only when
    /// covered. Default: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,198.18.0.0/15,fc00::/7
    #[arg(long, value_name = "CIDR,…")]
    fleet_networks: Option<String>,
    /// Memory for in-memory history (samples and closed connections);
    /// the oldest goes first. At least 1MiB; 0 keeps no history.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    history_size: String,
    /// Also record history to hourly segment files in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "from")]
    record: Option<PathBuf>,
    /// Remove recorded segments older than this.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    record_retention: String,
    /// Replay a recording (from --record DIR) instead of sampling this
    /// machine: the same UI and APIs, over the recorded time.
    #[arg(long, value_name = "DIR")]
    from: Option<PathBuf>,
    /// Seconds between history keyframes (one block each); a test hook.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, hide = true)]
    keyframe_interval: f64,
    /// Fleet mode: draw the map of every host from this Prometheus (or
    /// VictoriaMetrics, Thanos, Mimir), e.g. http://prometheus:9090,
    /// instead of this machine's sockets.
    #[arg(long, value_name = "URL")]
    fleet: Option<String>,
    /// Fleet mode: a file whose first line is the bearer token for Prometheus.
    #[arg(
        long,
        value_name = "PATH",
        requires = "fleet",
        conflicts_with = "fleet_basic_auth_file"
    )]
    fleet_token_file: Option<PathBuf>,
    /// Fleet mode: a file whose first line is `user:password` for
    /// Prometheus's basic auth.
    #[arg(long, value_name = "PATH", requires = "fleet")]
    fleet_basic_auth_file: Option<PathBuf>,
    /// Fleet mode: how long one query to Prometheus may take, in seconds
    /// (0.1 to 600).
    #[arg(long, value_name = "SECS", requires = "fleet", value_parser = parse_fleet_timeout)]
    fleet_timeout: Option<f64>,
    /// Fleet mode: the window of the byte rates, a PromQL duration
    /// (e.g. 30s, 1m); at least 4 scrape intervals. Default 1m.
    #[arg(long, value_name = "DURATION", requires = "fleet", value_parser = procnet::fleet::query::parse_rate_window)]
    fleet_rate_window: Option<String>,
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
    /// Read a recorded snapshot (JSON from `--format snapshot`, a regular
    /// file of at most 256 MiB) instead of collecting; with --at, a
    /// recording directory (from `procnet serve --record DIR`).
    #[arg(long, value_name = "PATH")]
    from: Option<PathBuf>,
    /// The moment to show from the --from recording: RFC 3339 or Unix seconds.
    #[arg(long, value_name = "T", requires = "from")]
    at: Option<String>,
}

/// `--interval`: a number of seconds within [`INTERVAL_RANGE`]. NaN,
/// infinities and values beyond the range are refused here, so the
/// `Duration` made from it can neither panic nor stall the sampler.
fn parse_interval(s: &str) -> Result<f64, String> {
    let (min, max) = INTERVAL_RANGE;
    match s.trim().parse::<f64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) if v.is_finite() => Err(format!(
            "{s} seconds is out of range; the interval must be from {min} to {max} seconds (e.g. 1 or 0.5)"
        )),
        _ => Err(format!(
            "`{s}` is not a number of seconds; the interval must be from {min} to {max} seconds (e.g. 1 or 0.5)"
        )),
    }
}

/// `--fleet-timeout`: 0.1 to 600 seconds.
fn parse_fleet_timeout(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.1..=600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not a timeout from 0.1 to 600 seconds (e.g. 5)"
        )),
    }
}

/// The `--fleet*` flags: the engine's URL, checked, and its credentials.
fn fleet_setup(args: &ServeArgs) -> anyhow::Result<Option<procnet::fleet::FleetConfig>> {
    use procnet::fleet::client::Auth;
    let Some(url) = &args.fleet else {
        return Ok(None);
    };
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        anyhow::bail!(
            "--fleet {url}: not an http:// URL of Prometheus; give its address, e.g. --fleet http://prometheus:9090"
        );
    }
    if url.starts_with("https://") {
        anyhow::bail!(
            "--fleet {url}: https is not supported by this build; reach Prometheus over http:// (e.g. through a local proxy)"
        );
    }
    let first_line = |path: &Path, what: &'static str| -> anyhow::Result<String> {
        let text = read_text(path, MAX_TOKEN_FILE_BYTES, what)
            .with_context(|| format!("{}: cannot read it", path.display()))?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        if line.is_empty() {
            anyhow::bail!(
                "{}: the first line is empty; write the {what} on it",
                path.display()
            );
        }
        Ok(line)
    };
    let auth = match (&args.fleet_token_file, &args.fleet_basic_auth_file) {
        (Some(path), _) => Auth::Bearer(
            first_line(path, "bearer token").with_context(|| "--fleet-token-file".to_string())?,
        ),
        (None, Some(path)) => {
            let line = first_line(path, "user:password")
                .with_context(|| "--fleet-basic-auth-file".to_string())?;
            let Some((user, password)) = line.split_once(':') else {
                anyhow::bail!(
                    "--fleet-basic-auth-file {}: the first line is not user:password",
                    path.display()
                );
            };
            Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            }
        }
        (None, None) => Auth::None,
    };
    Ok(Some(procnet::fleet::FleetConfig {
        url: url.to_string(),
        auth,
        timeout: args
            .fleet_timeout
            .map(std::time::Duration::from_secs_f64)
            .unwrap_or(procnet::fleet::DEFAULT_TIMEOUT),
        rate_window: args
            .fleet_rate_window
            .clone()
            .unwrap_or_else(|| procnet::fleet::query::RATE_WINDOW.to_string()),
    }))
}

/// `--icons-dir` must name a directory: a typo would otherwise only show
/// as every icon missing.
fn check_icons_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => anyhow::bail!(
            "--icons-dir {}: not a directory; give the directory that holds the <type>.png files",
            dir.display()
        ),
        Err(e) => anyhow::bail!(
            "--icons-dir {}: cannot use it: {e}; give an existing directory of <type>.png files",
            dir.display()
        ),
    }
}

/// The token: the first line of `--token-file`, trimmed.
fn read_token_file(path: &Path) -> anyhow::Result<String> {
    let text = read_text(path, MAX_TOKEN_FILE_BYTES, "a token file")
        .with_context(|| format!("--token-file {}: cannot read it", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// A recorded snapshot (`snapshot --from`).
fn read_snapshot_file(path: &Path) -> anyhow::Result<Snapshot> {
    let text = read_text(path, MAX_SNAPSHOT_FILE_BYTES, "a snapshot file")
        .with_context(|| format!("snapshot file {}: cannot read it", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "snapshot file {}: not a procnet snapshot (record one with `procnet snapshot --format snapshot`)",
            path.display()
        )
    })
}

/// A failure of procnet's own doing or the machine's, not the input's
/// (writing the output failed): exit status 1.
#[derive(Debug)]
struct RunTimeFailure(String);

impl std::fmt::Display for RunTimeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunTimeFailure {}

/// 2 for what the user can fix, 1 for run-time failures (see [`EXIT_CODES`]).
fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(serve) = cause.downcast_ref::<ServeError>() {
            return match serve {
                ServeError::NeedsToken(_) | ServeError::PortInUse { .. } => 2,
                // A --record or --from directory the user can fix.
                ServeError::Record(_)
                | ServeError::Source(procnet::serve::source::SourceError::Record(_)) => 2,
                // An address that is not this machine's is a typo in --bind.
                ServeError::Listen { source, .. }
                    if source.kind() == std::io::ErrorKind::AddrNotAvailable =>
                {
                    2
                }
                _ => 1,
            };
        }
        if cause.is::<CollectError>() || cause.is::<RunTimeFailure>() {
            return 1;
        }
    }
    2
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
    if let (Some(at), Some(dir)) = (&args.at, &args.from) {
        return run_snapshot_at(&args, &setup, at, dir);
    }
    let snapshot: Snapshot = match &args.from {
        Some(path) => read_snapshot_file(path)?,
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
    // A recording is replayed as recorded: today's names need not be
    // those of then, and a replay asks no network.
    let host_names = if args.from.is_some() {
        procnet::names::label::HostNameMap::default()
    } else {
        let addrs = procnet::names::label::addresses_to_name(&snapshot, setup.options.udp);
        procnet::names::resolve_once(&args.graph.dns(), &addrs)
    };
    let graph = || {
        let mut g = build_graph(&inputs, 1);
        procnet::names::label::name_graph(&mut g, &host_names);
        g
    };
    let connections = || {
        let mut c = build_connections(&inputs);
        procnet::names::label::name_connections(&mut c, &host_names);
        c
    };
    let t = std::time::Instant::now();
    let json = |r: serde_json::Result<String>| {
        r.map_err(|e| RunTimeFailure(format!("cannot serialise the output: {e}")))
    };
    let text = match args.format {
        Format::Graph => json(serde_json::to_string_pretty(&graph()))?,
        Format::Connections => json(serde_json::to_string_pretty(&connections()))?,
        Format::Snapshot if setup.options.show_secrets => {
            json(serde_json::to_string_pretty(&snapshot))?
        }
        Format::Snapshot => {
            let mut shown = snapshot.clone();
            procnet::graph::redact::redact_snapshot(&mut shown);
            json(serde_json::to_string_pretty(&shown))?
        }
        Format::Table => procnet::table::render(&graph(), &connections()),
    };
    log::debug!("built and serialised in {:?}", t.elapsed());
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    match writeln!(out, "{}", text.trim_end()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(RunTimeFailure(format!("cannot write to stdout: {e}")).into()),
        Ok(()) => Ok(()),
    }
}

/// Writes the output and a newline; a closed pipe (`| head`) is fine.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", text.trim_end()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(RunTimeFailure(format!("cannot write to stdout: {e}")).into()),
        Ok(()) => Ok(()),
    }
}

/// `snapshot --at T --from DIR`: one moment of a recording.
fn run_snapshot_at(
    args: &SnapshotArgs,
    setup: &GraphSetup,
    at: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let at_ms =
        procnet::history::time::parse_time_ms(at).map_err(|e| anyhow::anyhow!("--at: {e}"))?;
    let (sample, warnings) = procnet::history::replay::sample_at(dir, at_ms)
        .with_context(|| format!("--from {}", dir.display()))?;
    for w in warnings {
        log::warn!("{w}");
    }
    let inputs = Inputs {
        snapshot: &sample.snapshot,
        rules: &setup.rules,
        options: &setup.options,
        containers: &sample.containers,
        traffic: None,
    };
    let json = |r: serde_json::Result<String>| {
        r.map_err(|e| RunTimeFailure(format!("cannot serialise the output: {e}")))
    };
    let graph = || procnet::history::replay::graph_of(&sample, &setup.rules, &setup.options);
    let text = match args.format {
        Format::Graph => json(serde_json::to_string_pretty(&graph()))?,
        Format::Connections => json(serde_json::to_string_pretty(&build_connections(&inputs)))?,
        Format::Snapshot => json(serde_json::to_string_pretty(&sample.snapshot))?,
        Format::Table => procnet::table::render(&graph(), &build_connections(&inputs)),
    };
    print_out(&text)
}

/// `procnet flows`: closed connections of a recording.
fn run_flows(args: FlowsArgs) -> anyhow::Result<()> {
    let now = procnet::collect::now_ms();
    let since = procnet::history::time::parse_time_or_ago_ms(&args.since, now)
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let until = match &args.until {
        Some(u) => procnet::history::time::parse_time_or_ago_ms(u, now)
            .map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => u64::MAX,
    };
    let extra =
        parse_port_list(&args.svc_ports).map_err(|e| anyhow::anyhow!("--svc-ports: {e}"))?;
    let (flows, warnings) =
        procnet::history::replay::flows_in(&args.from, since, until, ServicePorts::new(extra))
            .with_context(|| format!("--from {}", args.from.display()))?;
    for w in warnings {
        log::warn!("{w}");
    }
    let text = match args.format {
        FlowsFormat::Ndjson => flows
            .iter()
            .map(|f| serde_json::to_string(f).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
        FlowsFormat::Table => procnet::history::flows::table(&flows),
    };
    print_out(&text)
}

fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let setup = graph_setup(&args.graph)?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.trim().to_string()),
        (None, Some(path)) => Some(read_token_file(path)?),
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
    if let Some(dir) = &args.icons_dir {
        check_icons_dir(dir)?;
    }
    let host_name = match &args.host_name {
        Some(name) if name.trim().is_empty() => {
            anyhow::bail!(
                "--host-name is empty; give this host's name in the fleet, e.g. --host-name db1"
            )
        }
        Some(name) => name.trim().to_string(),
        None => procnet::collect::host::hostname().ok_or_else(|| {
            anyhow::anyhow!("this machine has no hostname; give one with --host-name NAME")
        })?,
    };
    let fleet_networks = match &args.fleet_networks {
        Some(csv) => procnet::graph::fleet::parse_networks(csv)?,
        None => procnet::graph::fleet::default_networks(),
    };
    let cap_bytes = procnet::history::time::parse_size(&args.history_size)
        .map_err(|e| anyhow::anyhow!("--history-size: {e}"))?;
    if cap_bytes != 0 && cap_bytes < procnet::history::store::MIN_CAP_BYTES {
        anyhow::bail!(
            "--history-size {}: too small; give at least 1MiB (default 64MiB), or 0 for no history",
            args.history_size
        );
    }
    let retention = procnet::history::time::parse_duration(&args.record_retention)
        .map_err(|e| anyhow::anyhow!("--record-retention: {e}"))?;
    if !(0.05..=86_400.0).contains(&args.keyframe_interval) {
        anyhow::bail!("--keyframe-interval: give 0.05 to 86400 seconds");
    }
    if cap_bytes == 0 && (args.record.is_some() || args.from.is_some()) {
        anyhow::bail!("--history-size 0 keeps no history: it cannot go with --record or --from");
    }
    if let Some(dir) = &args.from {
        if !dir.is_dir() {
            anyhow::bail!(
                "--from {}: not a directory; give a recording directory (from `procnet serve --record DIR`)",
                dir.display()
            );
        }
    }
    let source = match &args.from {
        Some(dir) => procnet::serve::source::SourceSpec::Recording(dir.clone()),
        None => procnet::serve::source::SourceSpec::Live {
            capture: args.capture,
            containers: setup.containers,
        },
    };
    let fleet = fleet_setup(&args)?;
    fix_mmap_threshold();
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
        host_name,
        fleet_networks,
        dns: args.graph.dns(),
        source,
        history: procnet::serve::HistorySettings {
            cap_bytes,
            keyframe_every: std::time::Duration::from_secs_f64(args.keyframe_interval),
            record: args.record.clone(),
            retention,
        },
        fleet,
    };
    procnet::serve::run(config)?;
    Ok(())
}

/// The allocation size from which glibc serves a block from its own
/// mapping, given back to the kernel when freed (1 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// Fixes glibc's mmap threshold for a long-running `serve`, unless the user
/// set `MALLOC_MMAP_THRESHOLD_` themselves.
///
/// Why: by default glibc raises the threshold to the size of the largest
/// mapped block freed so far. A server that frees one sample-sized buffer
/// (tens of MB at 100k sockets) then serves every later buffer of that size
/// from the brk heap, whose freed room stays resident in pieces; peak RSS
/// at 100k sockets was 5.6–8.4 MiB higher that way (bench/RESULTS.md,
/// "Serve memory at 100k sockets"). A fixed threshold keeps big buffers in
/// their own mappings, which go back to the kernel on free, at no CPU cost
/// that the benchmark could tell apart.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: mallopt only changes allocator parameters; it is called once,
    // before the server's threads start.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
    if ok != 1 {
        log::debug!("mallopt(M_MMAP_THRESHOLD) refused; keeping glibc's dynamic threshold");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Snapshot(args)) => run_snapshot(args),
        Some(Command::Serve(args)) => run_serve(*args),
        Some(Command::Flows(args)) => run_flows(args),
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
            ExitCode::from(exit_code(&e))
        }
    }
}
