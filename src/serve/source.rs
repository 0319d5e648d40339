//! Where `serve` gets its samples: the seam between "what the machine
//! looks like" and everything the server makes of it. `main.rs` chooses
//! the source; the sampler only asks it for the next sample.
//!
//! - [`SourceSpec::Live`]: the collector of this machine, one sample per
//!   interval;
//! - [`SourceSpec::Recording`]: a recording (`serve --from DIR`), replayed
//!   as fast as it decodes, each sample with the seq and container labels
//!   it was served with, so the replayed views equal the live ones; then
//!   the source is finished and the server keeps serving what it replayed.
//!
//! Another source (a Prometheus-backed fleet view, say) implements
//! [`SampleSource`] and a `SourceSpec` variant that opens it; nothing else
//! in the server changes.

use crate::collect::{CollectError, CollectOptions, Collector};
use crate::graph::ContainerLabels;
use crate::history::frame::SampleMeta;
use crate::history::record::{RecordError, RecordingReader};
use crate::snapshot::Snapshot;
use std::collections::VecDeque;
use std::path::PathBuf;

/// One sample from a source.
#[derive(Debug, Clone)]
pub struct Sample {
    pub snapshot: Snapshot,
    /// The container labels to build it with; `None`: ask the live
    /// container engine (the live source).
    pub containers: Option<ContainerLabels>,
    /// The seq it was served with (a recording); `None`: the sampler
    /// counts (a new seq when the graph changed).
    pub seq: Option<u64>,
    /// Which sockets differ from the previous sample's, when the source
    /// knows (tier T0); `None`: every consumer does its full pass.
    pub changes: Option<crate::snapshot::SocketChanges>,
}

/// Why a source could not give a sample.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("recording: {0}")]
    Damaged(String),
}

/// A source of samples (see the module docs).
pub trait SampleSource: Send {
    /// The next sample; `Ok(None)` when the source has no more (the end
    /// of a recording) — the server goes on serving what it has.
    fn next_sample(&mut self) -> Result<Option<Sample>, SourceError>;
    /// Whether the sampler waits an interval between samples (live) or
    /// takes them back to back (a replay).
    fn paced(&self) -> bool;
    /// What the source skipped or could not read, one sentence each
    /// (e.g. a torn block of a recording); shown by `/api/history`.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether the next sample would equal the last one (nothing happened
    /// and no rate is moving): the sampler then builds nothing and keeps
    /// serving what it has. `false` unless the source knows.
    fn unchanged(&mut self) -> bool {
        false
    }
}

impl SampleSource for Collector {
    fn unchanged(&mut self) -> bool {
        Collector::unchanged(self)
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, SourceError> {
        let snapshot = self.sample()?;
        Ok(Some(Sample {
            snapshot,
            containers: None,
            seq: None,
            changes: self.take_changes(),
        }))
    }

    fn paced(&self) -> bool {
        true
    }
}

/// Which source `serve` samples from, chosen in `main.rs`. Opened again
/// after a sampler panic, so it is a description, not the source itself.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// This machine.
    Live { capture: bool, containers: bool },
    /// A recording directory (`serve --from DIR`).
    Recording(PathBuf),
}

impl SourceSpec {
    /// Opens the source: the collector starts, or the recording is found.
    pub fn open(&self) -> Result<Box<dyn SampleSource>, SourceError> {
        match self {
            SourceSpec::Live {
                capture,
                containers,
            } => {
                let mut c = Collector::with_options(CollectOptions {
                    capture: *capture,
                    events: true,
                    walk_every_sample: false,
                })?;
                c.set_containers(*containers);
                Ok(Box::new(c))
            }
            SourceSpec::Recording(dir) => Ok(Box::new(RecordingSource {
                reader: RecordingReader::open(dir)?,
                queue: VecDeque::new(),
            })),
        }
    }

    /// Whether this is a replay (no collector, no container engine).
    pub fn is_recording(&self) -> bool {
        matches!(self, SourceSpec::Recording(_))
    }
}

/// Replays a recording's samples in order.
pub struct RecordingSource {
    reader: RecordingReader,
    queue: VecDeque<(Snapshot, ContainerLabels, SampleMeta)>,
}

impl SampleSource for RecordingSource {
    fn next_sample(&mut self) -> Result<Option<Sample>, SourceError> {
        while self.queue.is_empty() {
            let Some(block) = self.reader.next_block()? else {
                return Ok(None);
            };
            let samples = block
                .samples()
                .map_err(|e| SourceError::Damaged(e.to_string()))?;
            for ((snap, containers), frame) in samples.into_iter().zip(&block.frames) {
                self.queue
                    .push_back((snap, containers.to_labels(), frame.meta));
            }
        }
        Ok(self
            .queue
            .pop_front()
            .map(|(snapshot, containers, meta)| Sample {
                snapshot,
                containers: Some(containers),
                seq: Some(meta.seq),
                changes: None,
            }))
    }

    fn paced(&self) -> bool {
        false
    }

    fn warnings(&self) -> Vec<String> {
        self.reader.warnings().to_vec()
    }
}
