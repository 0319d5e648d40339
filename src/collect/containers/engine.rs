//! The Docker Engine API (and Podman's Docker-compatible API) over its unix
//! socket: where the socket is, and `GET /containers/json` → the running
//! containers' names, ids, published ports and network addresses.

use super::http::GetError;
use crate::snapshot::Proto;
use crate::snapshot::{ContainerInfo, PublishedPort};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Docker's socket, the default when `$DOCKER_HOST` is not set.
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Rootful Podman's Docker-compatible socket, tried after Docker's.
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Why the engine could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no container engine socket found (tried {tried})")]
    NoSocket { tried: String },
    #[error(
        "DOCKER_HOST={0} is not a unix:// socket; procnet only talks to a local engine socket"
    )]
    UnsupportedHost(String),
    #[error("{path}: {source}")]
    Get {
        path: String,
        #[source]
        source: GetError,
    },
    #[error("{path}: GET /containers/json answered HTTP {status}: {message}")]
    Status {
        path: String,
        status: u16,
        message: String,
    },
    #[error("{path}: unexpected /containers/json body: {source}")]
    Body {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl EngineError {
    /// True when there is simply no engine here (not a fault worth a warning).
    pub fn is_absent(&self) -> bool {
        match self {
            EngineError::NoSocket { .. } => true,
            EngineError::Get {
                source: GetError::Connect(e),
                ..
            } => matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ),
            _ => false,
        }
    }
}

/// The engine socket: `$DOCKER_HOST` when it is `unix://…`, else the first
/// of Docker's and Podman's sockets that exists (`docker_host` is the
/// variable's value, passed in so this stays testable).
pub fn socket_path(docker_host: Option<&str>) -> Result<PathBuf, EngineError> {
    if let Some(host) = docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        return match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Err(EngineError::UnsupportedHost(host.to_string())),
        };
    }
    let mut candidates = vec![PathBuf::from(DOCKER_SOCKET), PathBuf::from(PODMAN_SOCKET)];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        candidates.push(Path::new(&dir).join("podman/podman.sock"));
    }
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or_else(|| EngineError::NoSocket {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The running containers, from the engine at `socket`.
#[cfg(unix)]
pub fn list_containers(
    socket: &Path,
    timeout: Duration,
) -> Result<Vec<ContainerInfo>, EngineError> {
    let path = socket.display().to_string();
    let response = super::http::get(socket, "/containers/json", timeout).map_err(|source| {
        EngineError::Get {
            path: path.clone(),
            source,
        }
    })?;
    if response.status != 200 {
        return Err(EngineError::Status {
            path,
            status: response.status,
            message: error_message(&response.body),
        });
    }
    parse_container_list(&response.body).map_err(|source| EngineError::Body { path, source })
}

/// No unix sockets here: there is no engine to ask.
#[cfg(not(unix))]
pub fn list_containers(
    socket: &Path,
    _timeout: Duration,
) -> Result<Vec<ContainerInfo>, EngineError> {
    Err(EngineError::NoSocket {
        tried: socket.display().to_string(),
    })
}

/// The engine's `{"message": "…"}` error body, else the body's start.
#[cfg_attr(not(unix), allow(dead_code))]
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        message: String,
    }
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => e.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

/// `GET /containers/json` items, as documented in the Engine API
/// (`ContainerSummary`); only the fields procnet reads. Podman sends `null`
/// for some empty lists, hence the `Option`s.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiContainer {
    id: String,
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    ports: Option<Vec<ApiPort>>,
    #[serde(default)]
    network_settings: Option<ApiNetworkSettings>,
}

#[derive(Deserialize)]
struct ApiPort {
    #[serde(rename = "IP", default)]
    ip: Option<String>,
    #[serde(rename = "PrivatePort", default)]
    private_port: u16,
    #[serde(rename = "PublicPort", default)]
    public_port: Option<u16>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiNetworkSettings {
    #[serde(default)]
    networks: Option<HashMap<String, ApiNetwork>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiNetwork {
    #[serde(rename = "IPAddress", default)]
    ip_address: Option<String>,
    #[serde(rename = "GlobalIPv6Address", default)]
    global_ipv6_address: Option<String>,
}

/// Parses a `GET /containers/json` body. Ports that are only exposed (no
/// `PublicPort`) and addresses that are empty are skipped; an unknown
/// protocol (`sctp`) is skipped too.
pub fn parse_container_list(body: &[u8]) -> Result<Vec<ContainerInfo>, serde_json::Error> {
    let items: Vec<ApiContainer> = serde_json::from_slice(body)?;
    Ok(items.into_iter().map(container_info).collect())
}

fn container_info(c: ApiContainer) -> ContainerInfo {
    let name = c
        .names
        .unwrap_or_default()
        .into_iter()
        .next()
        .map(|n| n.trim_start_matches('/').to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| c.id.chars().take(12).collect());
    let mut ports: Vec<PublishedPort> = c
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            let proto = match p.kind.as_deref().unwrap_or("tcp") {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => return None,
            };
            Some(PublishedPort {
                proto,
                host_ip: p.ip.as_deref().and_then(|ip| ip.parse().ok()),
                host_port: p.public_port.filter(|&port| port != 0)?,
                container_port: p.private_port,
            })
        })
        .collect();
    ports.sort_by_key(|p| (p.host_port, p.proto, p.host_ip));
    let mut addresses: Vec<IpAddr> = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_values()
        .flat_map(|n| [n.ip_address, n.global_ipv6_address])
        .flatten()
        .filter_map(|a| a.parse().ok())
        .collect();
    addresses.sort();
    addresses.dedup();
    ContainerInfo {
        id: c.id,
        name,
        ports,
        addresses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/engine_containers.json");

    #[test]
    fn documented_container_list() {
        let list = parse_container_list(FIXTURE.as_bytes()).unwrap();
        assert_eq!(list.len(), 3);
        let web = &list[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.id.len(), 64);
        assert_eq!(
            web.ports,
            vec![
                PublishedPort {
                    proto: Proto::Udp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 5353,
                    container_port: 53,
                },
                PublishedPort {
                    proto: Proto::Tcp,
                    host_ip: Some("0.0.0.0".parse().unwrap()),
                    host_port: 8080,
                    container_port: 80,
                },
                PublishedPort {
                    proto: Proto::Tcp,
                    host_ip: Some("::".parse().unwrap()),
                    host_port: 8080,
                    container_port: 80,
                },
            ]
        );
        assert_eq!(web.addresses, vec!["172.17.0.2".parse::<IpAddr>().unwrap()]);
        // Exposed but not published: no host port.
        let db = &list[1];
        assert_eq!(db.name, "db");
        assert!(db.ports.is_empty());
        assert_eq!(
            db.addresses,
            vec![
                "172.18.0.3".parse::<IpAddr>().unwrap(),
                "fd00:dead::3".parse().unwrap()
            ]
        );
        // Podman's nulls.
        let pod = &list[2];
        assert_eq!(pod.name, "pntest");
        assert_eq!(pod.ports[0].host_port, 18080);
        assert_eq!(pod.addresses, vec!["10.88.0.9".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert!(parse_container_list(b"{\"message\":\"x\"}").is_err());
        assert!(parse_container_list(b"[{\"Names\":[]}]").is_err());
        assert!(parse_container_list(b"").is_err());
        assert_eq!(parse_container_list(b"[]").unwrap(), vec![]);
        assert_eq!(
            error_message(b"{\"message\":\"page not found\"}"),
            "page not found"
        );
    }

    #[test]
    fn socket_from_docker_host() {
        assert_eq!(
            socket_path(Some("unix:///tmp/x.sock")).unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert!(matches!(
            socket_path(Some("tcp://10.0.0.1:2375")),
            Err(EngineError::UnsupportedHost(_))
        ));
        assert!(matches!(
            socket_path(Some("unix://")),
            Err(EngineError::UnsupportedHost(_))
        ));
    }
}
