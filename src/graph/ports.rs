//! Service ports: which port numbers say "this end is the server", and what
//! service usually answers there (for friendly labels).

use std::collections::BTreeSet;

/// Ports of common services above the IANA well-known range, with the
/// service that usually listens there. Ports below 1024 are services anyway.
const KNOWN_SERVICES: &[(u16, &str)] = &[
    (21, "FTP"),
    (22, "SSH"),
    (25, "SMTP"),
    (53, "DNS"),
    (80, "HTTP"),
    (110, "POP3"),
    (123, "NTP"),
    (143, "IMAP"),
    (389, "LDAP"),
    (443, "HTTPS"),
    (465, "SMTPS"),
    (587, "SMTP"),
    (636, "LDAPS"),
    (993, "IMAPS"),
    (995, "POP3S"),
    (1433, "SQL Server"),
    (1521, "Oracle"),
    (1883, "MQTT"),
    (2049, "NFS"),
    (2181, "ZooKeeper"),
    (2375, "Docker"),
    (2376, "Docker"),
    (2379, "etcd"),
    (3306, "MySQL"),
    (3389, "RDP"),
    (4222, "NATS"),
    (4317, "OTLP"),
    (5432, "PostgreSQL"),
    (5601, "Kibana"),
    (5672, "RabbitMQ"),
    (5984, "CouchDB"),
    (6379, "Redis"),
    (6443, "Kubernetes API"),
    (8080, "HTTP"),
    (8086, "InfluxDB"),
    (8443, "HTTPS"),
    (8500, "Consul"),
    (8883, "MQTT"),
    (9042, "Cassandra"),
    (9090, "Prometheus"),
    (9092, "Kafka"),
    (9200, "Elasticsearch"),
    (9300, "Elasticsearch"),
    (11211, "Memcached"),
    (15672, "RabbitMQ"),
    (27017, "MongoDB"),
];

/// The service usually found on `port`, if it is a well-known one.
pub fn service_name(port: u16) -> Option<&'static str> {
    KNOWN_SERVICES
        .binary_search_by_key(&port, |&(p, _)| p)
        .ok()
        .map(|i| KNOWN_SERVICES[i].1)
}

/// The set of ports that mark the server end of a connection: IANA
/// well-known ports (< 1024), the built-in table, and `--svc-ports`.
#[derive(Debug, Clone, Default)]
pub struct ServicePorts {
    extra: BTreeSet<u16>,
}

impl ServicePorts {
    /// Built-in ports plus `extra` (from `--svc-ports`).
    pub fn new(extra: impl IntoIterator<Item = u16>) -> ServicePorts {
        ServicePorts {
            extra: extra.into_iter().collect(),
        }
    }

    /// True when `port` marks a server.
    pub fn contains(&self, port: u16) -> bool {
        (port != 0 && port < 1024) || service_name(port).is_some() || self.extra.contains(&port)
    }
}

/// Parses `--svc-ports` (`"3000,5000"`; spaces and empty items allowed).
pub fn parse_port_list(csv: &str) -> Result<Vec<u16>, String> {
    csv.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!(
                "`{s}` is not a port number (1-65535); write ports separated by commas, e.g. 3000,5000"
            )),
            Ok(p) => Ok(p),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(KNOWN_SERVICES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn service_ports() {
        let ports = ServicePorts::new([3000]);
        assert!(ports.contains(22) && ports.contains(5432) && ports.contains(3000));
        assert!(!ports.contains(0) && !ports.contains(5000) && !ports.contains(50122));
        assert_eq!(service_name(6379), Some("Redis"));
    }

    #[test]
    fn port_list() {
        assert_eq!(parse_port_list(" 3000, 5000,,").unwrap(), vec![3000, 5000]);
        assert!(parse_port_list("3000,x").unwrap_err().contains("`x`"));
        assert!(parse_port_list("70000").is_err());
        assert!(parse_port_list("0").is_err());
    }
}
