//! Names for remote addresses: reverse DNS (PTR) lookups, off the sampling
//! and request paths.
//!
//! [`HostNames`] owns one thread with its own small async runtime and a
//! [hickory](https://docs.rs/hickory-resolver) resolver. The sampler hands
//! it the addresses on screen ([`HostNames::observe`]: a lock, a few hash
//! look-ups and a `try_send` per new address; it never waits for DNS) and
//! gets back the names found so far; new names appear with the next
//! sample. At most [`MAX_CONCURRENT`] lookups run at once, each bounded by
//! [`LOOKUP_TIMEOUT`]; at most [`QUEUE`] wait, and an address that finds
//! the queue full is simply asked for again next sample. What is cached
//! and for how long is [`cache`]'s business; which addresses get a name
//! and where names go in the documents is [`label`]'s.
//!
//! The resolver is the system's (`/etc/resolv.conf` and `/etc/hosts` on
//! Unix) unless `--dns-server ADDR[:PORT]` names one; `--no-dns` turns all
//! of it off. A name is what the address's owner publishes in its PTR
//! record; it is not confirmed by a forward lookup.

pub mod cache;
pub mod label;

use cache::{Answer, NameCache};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use label::{shown_name, HostNameMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Lookups running at once.
pub const MAX_CONCURRENT: usize = 32;
/// Lookups waiting for a turn; more new addresses wait for a later sample.
pub const QUEUE: usize = 4096;
/// The longest one lookup may take, all servers and retries included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Addresses held in the cache.
pub const CAPACITY: usize = 65_536;
/// A lookup not answered after this long (queued behind a slow server
/// included) may be started again.
const LOST_AFTER: Duration = Duration::from_secs(120);
/// How often addresses no longer on screen are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Which resolver to ask.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DnsSetting {
    /// No lookups (`--no-dns`).
    Off,
    /// The system's configuration (the default).
    #[default]
    System,
    /// One server, over UDP and TCP (`--dns-server ADDR[:PORT]`); the
    /// hosts file is not read.
    Server(SocketAddr),
}

/// Why names cannot be looked up.
#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    #[error("cannot read the system's DNS configuration ({0}); name a server with --dns-server ADDR[:PORT] or turn names off with --no-dns")]
    SystemConfig(String),
    #[error("cannot start the DNS resolver: {0}")]
    Start(#[from] std::io::Error),
}

/// `--dns-server`: an IP address with an optional port (53 by default),
/// e.g. `127.0.0.1:5353`, `192.168.1.1` or `[::1]:5353`.
pub fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(format!(
        "`{s}` is not an IP address with an optional port; give e.g. 127.0.0.1:5353, 192.168.1.1 or [::1]:5353"
    ))
}

/// The reverse-DNS service; dropping it stops its thread.
pub struct HostNames {
    cache: Arc<Mutex<NameCache>>,
    queue: mpsc::Sender<IpAddr>,
    last_forget: Mutex<Instant>,
}

impl HostNames {
    /// Starts the resolver thread; `None` with [`DnsSetting::Off`].
    pub fn start(setting: &DnsSetting) -> Result<Option<HostNames>, NamesError> {
        let builder = match setting {
            DnsSetting::Off => return Ok(None),
            DnsSetting::System => {
                let mut b = TokioResolver::builder_tokio()
                    .map_err(|e| NamesError::SystemConfig(e.to_string()))?;
                bound_options(b.options_mut());
                b
            }
            DnsSetting::Server(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_name_servers(vec![server]);
                let mut b =
                    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
                bound_options(b.options_mut());
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                b
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let resolver = runtime
            .block_on(async { builder.build() })
            .map_err(|e| NamesError::SystemConfig(e.to_string()))?;
        let cache = Arc::new(Mutex::new(NameCache::new(CAPACITY, LOST_AFTER)));
        let (queue, requests) = mpsc::channel(QUEUE);
        let shared = cache.clone();
        std::thread::Builder::new()
            .name("procnet-dns".into())
            .spawn(move || runtime.block_on(serve_lookups(requests, resolver, shared)))?;
        Ok(Some(HostNames {
            cache,
            queue,
            last_forget: Mutex::new(Instant::now()),
        }))
    }

    /// Notes the addresses on screen, starts lookups for those that need
    /// one, and returns the names known for them now. Never waits for DNS.
    pub fn observe(&self, addrs: &[IpAddr]) -> HostNameMap {
        let now = Instant::now();
        let mut cache = lock(&self.cache);
        {
            let mut last = lock(&self.last_forget);
            if now.saturating_duration_since(*last) >= FORGET_EVERY {
                cache.forget_stale(now);
                *last = now;
            }
        }
        let mut names = HostNameMap::default();
        for &addr in addrs {
            if cache.want(addr, now) && self.queue.try_send(addr).is_err() {
                cache.abandon(addr);
            }
            if let Some(name) = cache.name(&addr) {
                names.insert(addr, name.to_string());
            }
        }
        names
    }

    /// Waits until no lookup runs or `deadline` passes (for `snapshot`,
    /// which prints once and wants the names in it).
    pub fn settle(&self, deadline: Instant) {
        while Instant::now() < deadline && lock(&self.cache).running(Instant::now()) > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The names of `addrs` for a one-off view (`procnet snapshot`): looks
/// them up, waits at most [`LOOKUP_TIMEOUT`] for the answers, and returns
/// what came back. A resolver that cannot start gives no names (logged).
pub fn resolve_once(setting: &DnsSetting, addrs: &[IpAddr]) -> HostNameMap {
    if addrs.is_empty() {
        return HostNameMap::default();
    }
    match HostNames::start(setting) {
        Ok(Some(names)) => {
            let deadline = Instant::now() + LOOKUP_TIMEOUT + Duration::from_millis(200);
            names.observe(addrs);
            names.settle(deadline);
            names.observe(addrs)
        }
        Ok(None) => HostNameMap::default(),
        Err(e) => {
            log::warn!("{e}; addresses are shown without names");
            HostNameMap::default()
        }
    }
}

/// One lookup is bounded by [`LOOKUP_TIMEOUT`] whatever the system's
/// configuration says (`resolv.conf` may ask for 5 s × 3 servers × 2).
fn bound_options(o: &mut ResolverOpts) {
    o.timeout = o.timeout.min(Duration::from_secs(2));
    o.attempts = o.attempts.clamp(1, 2);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn names off for good.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The resolver thread: takes addresses from the queue and looks each up,
/// [`MAX_CONCURRENT`] at a time; ends when [`HostNames`] is dropped.
async fn serve_lookups(
    mut requests: mpsc::Receiver<IpAddr>,
    resolver: TokioResolver,
    cache: Arc<Mutex<NameCache>>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    while let Some(addr) = requests.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let resolver = resolver.clone();
        let cache = cache.clone();
        tokio::spawn(async move {
            let answer = lookup(&resolver, addr).await;
            log::debug!("reverse DNS {addr}: {answer:?}");
            lock(&cache).record(addr, answer, Instant::now());
            drop(permit);
        });
    }
}

/// One PTR lookup.
async fn lookup(resolver: &TokioResolver, addr: IpAddr) -> Answer {
    let query = resolver.reverse_lookup(addr.to_canonical());
    match tokio::time::timeout(LOOKUP_TIMEOUT, query).await {
        Err(_) => Answer::Failed,
        Ok(Ok(found)) => found
            .answers()
            .iter()
            .find_map(|r| match &r.data {
                RData::PTR(ptr) => shown_name(&ptr.to_string()).map(|name| Answer::Name {
                    name,
                    ttl: Duration::from_secs(u64::from(r.ttl)),
                }),
                _ => None,
            })
            .unwrap_or(Answer::NoName { ttl: None }),
        Ok(Err(NetError::Dns(DnsError::NoRecordsFound(none)))) => Answer::NoName {
            ttl: none.negative_ttl.map(|s| Duration::from_secs(u64::from(s))),
        },
        Ok(Err(_)) => Answer::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_server_takes_an_address_with_or_without_a_port() {
        assert_eq!(
            parse_dns_server("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_dns_server("192.168.1.1"),
            Ok("192.168.1.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_dns_server("[::1]:5353"),
            Ok("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_dns_server("::1"), Ok("[::1]:53".parse().unwrap()));
        let err = parse_dns_server("dns.example").unwrap_err();
        assert!(err.contains("127.0.0.1:5353"), "{err}");
    }
}
