//! Answers from a recording without a server: the sample at a time
//! (`procnet snapshot --at T --from DIR`), the closed connections of a
//! window (`procnet flows --from DIR`), and the graph of a rebuilt sample
//! exactly as the live server built it.

use crate::graph::model::GraphDoc;
use crate::graph::ports::ServicePorts;
use crate::graph::traffic::TrafficTracker;
use crate::graph::{build_graph, GraphOptions, Inputs};
use crate::history::codec::rebuild_upto;
use crate::history::flows::{FlowRecord, FlowTracker};
use crate::history::frame::RecordedContainers;
use crate::history::record::{RecordError, RecordingReader};
use crate::history::store::{AtSample, OutOfRange};
use crate::history::time::rfc3339_ms;
use crate::rules::RuleSet;
use crate::snapshot::Snapshot;
use std::path::Path;

/// How long after a recording's last sample a time still means it.
pub const REPLAY_GRACE_MS: u64 = 5_000;

/// Why a question to a recording has no answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{} is not in the recording, which holds {} to {}; give --at within it", rfc3339_ms(.0.at_ms), .0.oldest_ms.map(rfc3339_ms).unwrap_or_default(), .0.newest_ms.map(rfc3339_ms).unwrap_or_default())]
    OutOfRange(OutOfRange),
    #[error("the recording is damaged: {0}")]
    Damaged(String),
}

/// The graph for a rebuilt sample, as live built it: rates from the
/// sample before, the seq it was served with.
pub fn graph_of(at: &AtSample, rules: &RuleSet, options: &GraphOptions) -> GraphDoc {
    let mut tracker = TrafficTracker::default();
    if let Some(p) = &at.prev {
        tracker.observe(p);
    }
    let traffic = tracker.observe(&at.snapshot);
    build_graph(
        &Inputs {
            snapshot: &at.snapshot,
            rules,
            options,
            containers: &at.containers,
            traffic: Some(&traffic),
        },
        at.meta.seq,
    )
}

/// The last recorded sample at or before `at_ms`, and the warnings of
/// what was skipped on the way (torn blocks).
pub fn sample_at(dir: &Path, at_ms: u64) -> Result<(AtSample, Vec<String>), ReplayError> {
    let mut reader = RecordingReader::open(dir)?;
    let mut oldest: Option<u64> = None;
    let mut newest: Option<u64> = None;
    let mut before_last: Option<Snapshot> = None;
    let mut found: Option<AtSample> = None;
    while let Some(block) = reader.next_block()? {
        let (first, last) = (block.block.first_ms(), block.block.last_ms());
        oldest.get_or_insert(first);
        newest = Some(last);
        if first > at_ms {
            break;
        }
        let damaged = |e: crate::history::codec::CodecError| ReplayError::Damaged(e.to_string());
        let index = block.block.metas.partition_point(|m| m.at_ms <= at_ms) - 1;
        let (prev, snapshot) = rebuild_upto(&block.frames, index).map_err(damaged)?;
        let containers = block.frames[..=index]
            .iter()
            .rev()
            .find_map(|f| f.containers.as_ref())
            .map(RecordedContainers::to_labels)
            .unwrap_or_default();
        let last_of_block = if index + 1 == block.frames.len() {
            Some(snapshot.clone())
        } else {
            rebuild_upto(&block.frames, block.frames.len() - 1)
                .map_err(damaged)?
                .1
                .into()
        };
        found = Some(AtSample {
            meta: block.block.metas[index],
            snapshot,
            prev: prev.or(before_last.take()),
            containers,
        });
        before_last = last_of_block;
    }
    match (found, newest) {
        (Some(f), Some(n)) if at_ms <= n + REPLAY_GRACE_MS => Ok((f, reader.warnings().to_vec())),
        _ => Err(ReplayError::OutOfRange(OutOfRange {
            at_ms,
            oldest_ms: oldest,
            newest_ms: newest,
        })),
    }
}

/// The closed connections of a recording that ended in `[since, until]`.
pub fn flows_in(
    dir: &Path,
    since_ms: u64,
    until_ms: u64,
    ports: ServicePorts,
) -> Result<(Vec<FlowRecord>, Vec<String>), ReplayError> {
    let mut reader = RecordingReader::open(dir)?;
    let mut tracker = FlowTracker::new(ports);
    let mut out = Vec::new();
    while let Some(block) = reader.next_block()? {
        if block.block.first_ms() > until_ms {
            break;
        }
        let samples = block
            .samples()
            .map_err(|e| ReplayError::Damaged(e.to_string()))?;
        for (s, _) in samples {
            out.extend(
                tracker
                    .observe(&s)
                    .into_iter()
                    .filter(|f| f.end_ms >= since_ms && f.end_ms <= until_ms),
            );
        }
    }
    Ok((out, reader.warnings().to_vec()))
}
