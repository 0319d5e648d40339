//! Pure container interpretation: what a port-forwarding process
//! (`docker-proxy`, Podman's `conmon` and `rootlessport`) forwards, and the
//! [`ContainerLabels`] built from the engine's container list
//! ([`ContainerInfo`], plain data in [`crate::snapshot`]) plus those
//! processes. No I/O: the engine client lives in `collect::containers`, and
//! which container a process is in is read with the process
//! (`collect::linux::cgroup`).

use crate::graph::pairing::is_listener;
use crate::graph::ContainerLabels;
pub use crate::snapshot::{ContainerInfo, PublishedPort};
use crate::snapshot::{Proto, Snapshot};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// A process that forwards host ports to a container, recognised by its
/// command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarder {
    /// Docker's userland proxy: everything is on its command line.
    DockerProxy {
        proto: Proto,
        host_ip: Option<IpAddr>,
        host_port: u16,
        container: SocketAddr,
    },
    /// Podman's container monitor, which also holds the published ports
    /// open on the host (`conmon -c <id> -n <name> …`).
    Conmon { id: String, name: Option<String> },
    /// Rootless Podman's port forwarder; its ports come on a pipe, not the
    /// command line.
    RootlessPort,
}

/// The value of flag `name` in a Go-style command line: `-name v`,
/// `--name v`, `-name=v` or `--name=v`.
fn flag<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(bare) = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|b| !b.is_empty())
        else {
            continue;
        };
        let (key, inline) = match bare.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (bare, None),
        };
        if names.contains(&key) {
            return match inline {
                Some(v) => Some(v),
                None => it.next().map(String::as_str),
            };
        }
    }
    None
}

fn program_name(cmdline: &[String]) -> Option<&str> {
    let first = cmdline.first()?;
    Some(first.rsplit('/').next().unwrap_or(first))
}

/// Recognises `docker-proxy`, `conmon` and `rootlessport` command lines.
pub fn parse_forwarder(cmdline: &[String]) -> Option<Forwarder> {
    let args = cmdline.get(1..).unwrap_or_default();
    match program_name(cmdline)? {
        "docker-proxy" => {
            let proto = match flag(args, &["proto"]).unwrap_or("tcp") {
                "tcp" | "tcp4" | "tcp6" => Proto::Tcp,
                "udp" | "udp4" | "udp6" => Proto::Udp,
                _ => return None,
            };
            let host_ip = flag(args, &["host-ip"]).and_then(|v| v.parse().ok());
            let host_port = flag(args, &["host-port"])?.parse().ok()?;
            let container_ip: IpAddr = flag(args, &["container-ip"])?.parse().ok()?;
            let container_port = flag(args, &["container-port"])?.parse().ok()?;
            Some(Forwarder::DockerProxy {
                proto,
                host_ip,
                host_port,
                container: SocketAddr::new(container_ip, container_port),
            })
        }
        "conmon" => {
            let id = flag(args, &["c", "cid"])?;
            Some(Forwarder::Conmon {
                id: id.to_string(),
                name: flag(args, &["n", "name"]).map(str::to_string),
            })
        }
        "rootlessport" => Some(Forwarder::RootlessPort),
        _ => None,
    }
}

/// Label of a host port that rootless Podman forwards when the engine has
/// not said which container it belongs to.
pub const ROOTLESS_LABEL: &str = "podman container (rootless)";

/// The labels for one sample: the engine's published ports and names, then
/// what the forwarding processes in `snapshot` say. A forwarder is the live
/// truth (the engine list may be a few seconds old), so it wins over the
/// engine for its port; the engine's addresses still name the container.
pub fn container_labels(engine: &[ContainerInfo], snapshot: &Snapshot) -> ContainerLabels {
    let mut labels = ContainerLabels::default();
    let mut by_address: HashMap<IpAddr, &str> = HashMap::new();
    for c in engine {
        labels.names.insert(c.id.clone(), c.name.clone());
        for p in &c.ports {
            labels
                .published
                .insert((p.proto, p.host_port), c.name.clone());
        }
        for &ip in &c.addresses {
            by_address.insert(ip, &c.name);
        }
    }

    let forwarders: HashMap<u32, Forwarder> = snapshot
        .processes
        .iter()
        .filter_map(|p| Some((p.pid, parse_forwarder(&p.cmdline)?)))
        .collect();
    if forwarders.is_empty() {
        return labels;
    }
    for f in forwarders.values() {
        match f {
            Forwarder::DockerProxy {
                proto,
                host_port,
                container,
                ..
            } => {
                let name = by_address
                    .get(&container.ip())
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| format!("container {container}"));
                labels.published.insert((*proto, *host_port), name);
            }
            Forwarder::Conmon { id, name: Some(n) } => {
                labels.names.entry(id.clone()).or_insert_with(|| n.clone());
            }
            _ => {}
        }
    }
    // conmon and rootlessport: their ports are the sockets they listen on.
    for s in snapshot.sockets.iter().filter(|s| is_listener(s)) {
        for pid in &s.owners {
            let key = (s.proto, s.local.port());
            match forwarders.get(pid) {
                Some(Forwarder::Conmon { id, .. }) => {
                    let name = labels.name_of(id);
                    labels.published.insert(key, name);
                }
                Some(Forwarder::RootlessPort) => {
                    labels
                        .published
                        .entry(key)
                        .or_insert_with(|| ROOTLESS_LABEL.to_string());
                }
                _ => {}
            }
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{build_connections, build_graph, GraphOptions, Inputs};
    use crate::rules::RuleSet;
    use crate::snapshot::{Process, Socket, SocketState};

    const ID: &str = "4bba34ccf3e836d9a8b2dd480ef79174566776de6382ac8a833ba310747991f5";

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn docker_proxy_cmdline() {
        let f = parse_forwarder(&args("/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80"));
        assert_eq!(
            f,
            Some(Forwarder::DockerProxy {
                proto: Proto::Tcp,
                host_ip: Some("0.0.0.0".parse().unwrap()),
                host_port: 8080,
                container: "172.17.0.2:80".parse().unwrap(),
            })
        );
        // `=` forms, udp, IPv6, newer flags mixed in.
        let f = parse_forwarder(&args("docker-proxy -proto=udp -host-ip=:: -host-port=5353 -container-ip=fd00::2 -container-port=53 -use-listen-fd"));
        assert_eq!(
            f,
            Some(Forwarder::DockerProxy {
                proto: Proto::Udp,
                host_ip: Some("::".parse().unwrap()),
                host_port: 5353,
                container: "[fd00::2]:53".parse().unwrap(),
            })
        );
    }

    #[test]
    fn docker_proxy_incomplete_or_other_programs() {
        assert_eq!(
            parse_forwarder(&args("docker-proxy -proto tcp -host-port 8080")),
            None
        );
        assert_eq!(
            parse_forwarder(&args(
                "docker-proxy -proto sctp -host-port 1 -container-ip 1.2.3.4 -container-port 2"
            )),
            None
        );
        assert_eq!(
            parse_forwarder(&args(
                "docker-proxy -host-port x -container-ip 1.2.3.4 -container-port 2"
            )),
            None
        );
        assert_eq!(parse_forwarder(&args("nginx -g daemon")), None);
        assert_eq!(parse_forwarder(&[]), None);
        assert_eq!(
            parse_forwarder(&args("/usr/libexec/podman/rootlessport")),
            Some(Forwarder::RootlessPort)
        );
    }

    #[test]
    fn conmon_cmdline() {
        let line = format!("/usr/bin/conmon --api-version 1 -c {ID} -u {ID} -r /usr/bin/runc -n pntest --exit-dir /run/libpod/exits");
        assert_eq!(
            parse_forwarder(&args(&line)),
            Some(Forwarder::Conmon {
                id: ID.into(),
                name: Some("pntest".into())
            })
        );
    }

    fn process(pid: u32, cmd: &str) -> Process {
        let cmdline = args(cmd);
        Process {
            pid,
            name: program_name(&cmdline)
                .unwrap_or("?")
                .chars()
                .take(15)
                .collect(),
            cmdline,
            ..Process::default()
        }
    }

    fn listener(pid: u32, addr: &str) -> Socket {
        Socket {
            proto: Proto::Tcp,
            local: addr.parse().unwrap(),
            remote: None,
            state: SocketState::Listen,
            inode: 1,
            uid: None,
            owners: smallvec::smallvec![pid],
            unowned_reason: None,
            bytes_sent: None,
            bytes_received: None,
            tcp_health: None,
            closed: false,
            io_owner: None,
        }
    }

    fn connection(pid: u32, local: &str, remote: &str) -> Socket {
        Socket {
            remote: Some(remote.parse().unwrap()),
            state: SocketState::Established,
            ..listener(pid, local)
        }
    }

    fn web() -> ContainerInfo {
        ContainerInfo {
            id: ID.into(),
            name: "web".into(),
            ports: vec![PublishedPort {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_port: 80,
            }],
            addresses: vec!["172.17.0.2".parse().unwrap()],
        }
    }

    #[test]
    fn labels_from_engine_only() {
        let labels = container_labels(&[web()], &Snapshot::default());
        assert_eq!(labels.published[&(Proto::Tcp, 8080)], "web");
        assert_eq!(labels.names[ID], "web");
        assert_eq!(labels.name_of("deadbeef"), "deadbeef");
    }

    #[test]
    fn docker_proxy_named_by_engine_address_or_by_target() {
        let snap = Snapshot {
            processes: vec![
                process(10, "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 9000 -container-ip 172.17.0.2 -container-port 80"),
                process(11, "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 9001 -container-ip 172.17.0.9 -container-port 443"),
            ],
            ..Snapshot::default()
        };
        // The engine does not list 9000 yet (slow API): the proxy says it
        // goes to 172.17.0.2, which the engine knows as `web`.
        let labels = container_labels(&[web()], &snap);
        assert_eq!(labels.published[&(Proto::Tcp, 9000)], "web");
        assert_eq!(
            labels.published[&(Proto::Tcp, 9001)],
            "container 172.17.0.9:443"
        );
        // The engine's list is stale (8080 was `web`'s, a new container
        // took it): the live proxy wins.
        let mut snap2 = snap.clone();
        snap2.processes.push(process(12, "docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.7 -container-port 80"));
        let labels = container_labels(&[web()], &snap2);
        assert_eq!(
            labels.published[&(Proto::Tcp, 8080)],
            "container 172.17.0.7:80"
        );
        // No engine at all.
        let labels = container_labels(&[], &snap);
        assert_eq!(
            labels.published[&(Proto::Tcp, 9000)],
            "container 172.17.0.2:80"
        );
    }

    #[test]
    fn conmon_and_rootlessport_listeners_are_labelled() {
        let conmon = format!("/usr/bin/conmon --api-version 1 -c {ID} -n pntest -r /usr/bin/runc");
        let snap = Snapshot {
            processes: vec![
                process(20, &conmon),
                process(21, "/usr/libexec/podman/rootlessport"),
            ],
            sockets: vec![
                listener(20, "127.0.0.1:18080"),
                listener(21, "0.0.0.0:18081"),
            ]
            .into(),
            ..Snapshot::default()
        };
        let labels = container_labels(&[], &snap);
        assert_eq!(labels.published[&(Proto::Tcp, 18080)], "pntest");
        assert_eq!(labels.published[&(Proto::Tcp, 18081)], ROOTLESS_LABEL);
        assert_eq!(labels.names[ID], "pntest");
    }

    /// psys's order for `toLabel`: the container publishing the port, then
    /// a known service port, then the local process listening there.
    #[test]
    fn to_label_resolution_order() {
        let snap = Snapshot {
            local_addresses: vec!["127.0.0.1".parse().unwrap()],
            processes: vec![
                process(1, "pgproxy"),
                process(2, "redis-server *:6379"),
                process(3, "myserver --port 7000"),
                process(4, "client"),
            ],
            sockets: vec![
                listener(1, "127.0.0.1:5432"),
                listener(2, "127.0.0.1:6379"),
                listener(3, "127.0.0.1:7000"),
                connection(4, "127.0.0.1:40001", "127.0.0.1:5432"),
                connection(4, "127.0.0.1:40002", "127.0.0.1:6379"),
                connection(4, "127.0.0.1:40003", "127.0.0.1:7000"),
            ]
            .into(),
            ..Snapshot::default()
        };
        let rules = RuleSet::default();
        let options = GraphOptions::default();
        let engine = ContainerInfo {
            id: ID.into(),
            name: "pg".into(),
            ports: vec![PublishedPort {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 5432,
                container_port: 5432,
            }],
            addresses: vec![],
        };
        let labels = container_labels(&[engine], &snap);
        let inputs = Inputs {
            snapshot: &snap,
            rules: &rules,
            options: &options,
            containers: &labels,
            traffic: None,
        };
        let to_label = |inputs: &Inputs<'_>, port: u16| {
            build_connections(inputs)
                .connections
                .iter()
                .find(|c| c.to_port == port)
                .and_then(|c| c.to_label.clone())
        };
        // 5432 is both a container's port and PostgreSQL's: the container wins.
        assert_eq!(to_label(&inputs, 5432).as_deref(), Some("pg"));
        // No container: the known service.
        assert_eq!(to_label(&inputs, 6379).as_deref(), Some("Redis"));
        // Neither: the local process.
        assert_eq!(to_label(&inputs, 7000).as_deref(), Some("myserver"));
        let doc = build_connections(&inputs);
        let l = doc.listeners.iter().find(|l| l.port == 5432).unwrap();
        assert_eq!(l.container_name.as_deref(), Some("pg"));
        assert_eq!(l.service_label.as_deref(), Some("pg"));

        // Without container labels, 5432 falls back to the service name.
        let none = ContainerLabels::default();
        let inputs = Inputs {
            containers: &none,
            traffic: None,
            ..inputs
        };
        assert_eq!(to_label(&inputs, 5432).as_deref(), Some("PostgreSQL"));
    }

    #[test]
    fn process_nodes_carry_the_container_name() {
        let mut inside = process(5, "httpd -f");
        inside.container_id = Some(ID.into());
        let mut unknown = process(6, "nc -l");
        unknown.container_id = Some("b".repeat(64));
        let snap = Snapshot {
            processes: vec![inside, unknown],
            sockets: vec![listener(5, "0.0.0.0:80"), listener(6, "0.0.0.0:81")].into(),
            ..Snapshot::default()
        };
        let labels = container_labels(&[web()], &snap);
        let rules = RuleSet::default();
        let options = GraphOptions::default();
        let graph = build_graph(
            &Inputs {
                snapshot: &snap,
                rules: &rules,
                options: &options,
                containers: &labels,
                traffic: None,
            },
            1,
        );
        let node = |id: &str| graph.nodes.iter().find(|n| n.id == id).unwrap();
        assert_eq!(node("pid:5").container.as_deref(), Some("web"));
        assert_eq!(node("pid:6").container.as_deref(), Some("bbbbbbbbbbbb"));
    }
}
