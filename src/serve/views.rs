//! The published views of one sample, each encoded at most once per
//! encoding, however many clients ask at the same time.
//!
//! `/api/connections` at 100k sockets is ~24 MB of JSON and takes seconds
//! to build; built per request, 20 parallel clients built it 20 times and
//! held 20 copies (RSS 151 MiB → 1.5 GiB). Here every view of a sample sits
//! in a [`SampleViews`] whose cells are [`OnceLock`]s: the first request
//! builds (on a blocking thread), concurrent ones wait for that build, and
//! all of them send the same reference-counted [`Bytes`]. The gzip form is
//! cached the same way, so 20 gzip clients cost one compression, not 20.
//! A new sample replaces the whole set; responses still being written keep
//! theirs alive until they finish.

use crate::graph::model::ConnectionsDoc;
use crate::graph::query::ConnectionRows;
use crate::serve::LatestSample;
use axum::body::Bytes;
use axum::http::HeaderMap;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Bodies smaller than this are sent as they are: gzip would save less
/// than its own overhead and the CPU it costs.
pub const MIN_COMPRESS_BYTES: usize = 4096;

/// The views procnet serves from a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Graph,
    Connections,
    Traffic,
}

impl View {
    /// Every view, in the order `/metrics` lists them.
    pub const ALL: [View; 3] = [View::Graph, View::Connections, View::Traffic];

    /// The `view` label in `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            View::Graph => "graph",
            View::Connections => "connections",
            View::Traffic => "traffic",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a response body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Counts view builds and compressions since the server started, for
/// `procnet_view_builds_total{view}` and
/// `procnet_view_compressions_total{view}`: they show that concurrent
/// requests share one build per sample.
#[derive(Debug, Default)]
pub struct ViewCounters {
    builds: [AtomicU64; 3],
    compressions: [AtomicU64; 3],
}

impl ViewCounters {
    pub fn count_build(&self, view: View) {
        self.builds[view.index()].fetch_add(1, Ordering::Relaxed);
    }

    fn count_compression(&self, view: View) {
        self.compressions[view.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn builds(&self, view: View) -> u64 {
        self.builds[view.index()].load(Ordering::Relaxed)
    }

    pub fn compressions(&self, view: View) -> u64 {
        self.compressions[view.index()].load(Ordering::Relaxed)
    }
}

/// One view's body, plain and gzip, each made at most once.
#[derive(Debug, Default)]
struct EncodedBody {
    identity: OnceLock<Bytes>,
    gzip: OnceLock<Bytes>,
}

impl EncodedBody {
    fn ready(bytes: Bytes) -> EncodedBody {
        let body = EncodedBody::default();
        let _ = body.identity.set(bytes);
        body
    }
}

/// Every view of one sample. Built by [`crate::serve::Shared::publish`]
/// with the graph and traffic JSON the sampler made; the connections JSON
/// is made on the first request that wants it.
#[derive(Default)]
pub struct SampleViews {
    /// The sample these views show (0 before the first).
    pub number: u64,
    latest: Option<Arc<LatestSample>>,
    bodies: [EncodedBody; 3],
    /// The connections document as rows, for pages (`?q=&sort=&limit=`):
    /// built on the first page request of the sample, shared by all.
    rows: OnceLock<Arc<ConnectionRows>>,
}

impl SampleViews {
    pub fn new(
        latest: Option<Arc<LatestSample>>,
        graph_json: Bytes,
        traffic_json: Bytes,
    ) -> SampleViews {
        SampleViews {
            number: latest.as_ref().map_or(0, |l| l.number),
            latest,
            bodies: [
                EncodedBody::ready(graph_json),
                EncodedBody::default(),
                EncodedBody::ready(traffic_json),
            ],
            rows: OnceLock::new(),
        }
    }

    /// The connection rows if they are already built: no blocking.
    pub fn ready_rows(&self) -> Option<Arc<ConnectionRows>> {
        self.rows.get().cloned()
    }

    /// The connection rows that pages are cut from, built here if nobody
    /// has yet (counted as a build of the connections view); concurrent
    /// callers wait for the one build. Blocks: call from a blocking thread.
    pub fn rows(&self, counters: &ViewCounters) -> Arc<ConnectionRows> {
        self.rows
            .get_or_init(|| {
                counters.count_build(View::Connections);
                let doc = match &self.latest {
                    Some(latest) => latest.connections_doc(),
                    None => ConnectionsDoc::default(),
                };
                Arc::new(ConnectionRows::new(doc))
            })
            .clone()
    }

    /// The body if it is already made: no blocking, no building.
    pub fn ready(&self, view: View, encoding: Encoding) -> Option<(Bytes, Encoding)> {
        let body = &self.bodies[view.index()];
        let identity = body.identity.get()?;
        match encoding {
            Encoding::Gzip if identity.len() >= MIN_COMPRESS_BYTES => {
                body.gzip.get().map(|gz| (gz.clone(), Encoding::Gzip))
            }
            _ => Some((identity.clone(), Encoding::Identity)),
        }
    }

    /// The body, built and compressed here if nobody has yet; concurrent
    /// callers wait for the one build. May block for seconds on a large
    /// sample: call it from a blocking thread. The encoding it returns is
    /// gzip only when asked for and the body is large enough.
    pub fn get(
        &self,
        view: View,
        encoding: Encoding,
        counters: &ViewCounters,
    ) -> (Bytes, Encoding) {
        let body = &self.bodies[view.index()];
        let identity = body.identity.get_or_init(|| {
            // Serialising rows already built for pages is not a build.
            if !(view == View::Connections && self.rows.get().is_some()) {
                counters.count_build(view);
            }
            self.build(view)
        });
        if encoding == Encoding::Gzip && identity.len() >= MIN_COMPRESS_BYTES {
            let gz = body.gzip.get_or_init(|| {
                counters.count_compression(view);
                gzip(identity)
            });
            return (gz.clone(), Encoding::Gzip);
        }
        (identity.clone(), Encoding::Identity)
    }

    fn build(&self, view: View) -> Bytes {
        match (view, &self.latest) {
            // Pages were asked for first: their rows are the document.
            (View::Connections, _) if self.rows.get().is_some() => self
                .rows
                .get()
                .map(|r| Bytes::from(serde_json::to_vec(&r.doc).unwrap_or_default()))
                .unwrap_or_default(),
            (View::Connections, Some(latest)) => latest.connections_json(),
            (View::Connections, None) => {
                Bytes::from_static(b"{\"listeners\":[],\"connections\":[]}")
            }
            // Graph and traffic are always made by `new`; an empty body
            // here would mean a bug, and is still valid JSON for clients.
            (View::Graph, _) => Bytes::from_static(b"{}"),
            (View::Traffic, _) => Bytes::from_static(b"[]"),
        }
    }
}

/// Fast gzip: a view is compressed once per sample, on the sampling
/// interval's budget, and JSON shrinks ~8–10× even at the fastest level.
pub fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    let mut out = encoder.finish().unwrap_or_default();
    out.shrink_to_fit();
    Bytes::from(out)
}

/// Whether the client accepts gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip`
/// with a non-zero quality, or `*` with one when gzip is not named.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = None;
    for value in headers.get_all(axum::http::header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match coding.as_str() {
                "gzip" | "x-gzip" => return quality > 0.0,
                "*" => star = Some(quality > 0.0),
                _ => {}
            }
        }
    }
    star.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                axum::http::header::ACCEPT_ENCODING,
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn accept_encoding_negotiation() {
        assert!(!accepts_gzip(&HeaderMap::new()));
        assert!(accepts_gzip(&with(&["gzip"])));
        assert!(accepts_gzip(&with(&["br;q=1.0, gzip;q=0.8, *;q=0.1"])));
        assert!(accepts_gzip(&with(&["deflate", "GZIP"])));
        assert!(!accepts_gzip(&with(&["gzip;q=0"])));
        assert!(!accepts_gzip(&with(&["gzip; q=0.0, *"])));
        assert!(accepts_gzip(&with(&["*"])));
        assert!(!accepts_gzip(&with(&["*;q=0"])));
        assert!(!accepts_gzip(&with(&["identity, br"])));
        assert!(accepts_gzip(&with(&["x-gzip"])));
    }

    #[test]
    fn one_build_and_one_compression_per_sample() {
        let counters = ViewCounters::default();
        let big = Bytes::from(vec![b'x'; 100_000]);
        let views = SampleViews::new(None, big.clone(), Bytes::from_static(b"[]"));
        assert_eq!(
            views.ready(View::Graph, Encoding::Identity),
            Some((big.clone(), Encoding::Identity))
        );
        assert_eq!(views.ready(View::Graph, Encoding::Gzip), None);
        let (gz, enc) = views.get(View::Graph, Encoding::Gzip, &counters);
        assert_eq!(enc, Encoding::Gzip);
        let mut plain = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, big);
        let (again, _) = views.get(View::Graph, Encoding::Gzip, &counters);
        assert_eq!(again.as_ptr(), gz.as_ptr(), "shared, not recompressed");
        assert_eq!(counters.compressions(View::Graph), 1);
        // The graph was made by the sampler: no build counted here.
        assert_eq!(counters.builds(View::Graph), 0);
        // Small bodies are never compressed.
        let (t, enc) = views.get(View::Traffic, Encoding::Gzip, &counters);
        assert_eq!((&t[..], enc), (&b"[]"[..], Encoding::Identity));
        // Connections, with no sample yet: one build, shared by threads
        // that ask at the same time.
        let bodies: Vec<(Bytes, Encoding)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| views.get(View::Connections, Encoding::Identity, &counters)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(bodies.iter().all(|(b, _)| b.starts_with(b"{\"listeners\"")));
        assert_eq!(counters.builds(View::Connections), 1);
    }
}
