//! In-memory history inside a byte cap: the samples of the last minutes
//! or hours as compressed blocks (one keyframe and the deltas after it,
//! [`KEYFRAME_EVERY`] long), the small per-sample facts for the scrubber,
//! and the log of closed connections. The oldest block goes first when
//! the cap is reached, and the closed connections that ended before the
//! oldest kept sample go with it.
//!
//! Pure data and CPU: no clock, no I/O. A query takes the blocks it needs
//! under the caller's lock (reference-counted, no copy) and decodes them
//! after the lock is released.

use crate::graph::ports::ServicePorts;
use crate::graph::ContainerLabels;
use crate::history::codec::{
    decode_frames, decompress_block_range, decompress_lines, encode_compressed, lazy_block,
    rebuild_last_refs, rebuild_upto_refs, recompress_block, CodecError,
};
use crate::history::flows::{FlowRecord, FlowTracker};
use crate::history::frame::Frame;
use crate::history::frame::{
    apply_chain, apply_chain_last, delta_changed, FrameBody, FrameBodyRef, FrameRef,
    RecordedContainers, SampleMeta, SnapshotDelta,
};
use crate::history::frame::{ListOp, SocketPatch};
use crate::history::wire::{Interner, LazyFrames};
use crate::snapshot::Snapshot;
use crate::snapshot::Socket;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A full keyframe this often; the deltas in between make a block.
pub const KEYFRAME_EVERY: Duration = Duration::from_secs(60);

/// The default `--history-size`.
pub const DEFAULT_CAP_BYTES: usize = 64 << 20;

/// A sample is kept whole (a [`Checkpoint`]) every this many samples of
/// a block, so `?at=` applies at most this many deltas instead of up to a
/// block's worth and never parses a keyframe's JSON (~5 MB at 20k sockets).
pub const CHECKPOINT_EVERY: usize = 10;

/// The most memory whole samples for `?at=` may hold, apart from the cap
/// (they are the server's published samples, shared, not copies: the one
/// in use costs nothing extra, every older one a whole sample). Also at
/// most an eighth of the cap ([`checkpoint_budget`]). What they save is
/// small: a cold seek from the keyframe decodes one block's deltas and
/// takes ≤ 12 ms at 20k sockets, ~3 ms more than from a checkpoint
/// (bench/RESULTS.md), while at 100k sockets each one kept 16 MB of
/// sockets alive (two of them, 34 MB, at 48 MiB). So: the last couple at
/// 20k sockets (~3 MB a sample), none at 100k (a sample is over the
/// budget), where older moments decode their block as before.
pub const CHECKPOINT_BYTES: usize = 8 << 20;

/// The checkpoints' budget for a history of `cap_bytes`: [`CHECKPOINT_BYTES`],
/// or an eighth of a smaller cap (a small history is asked for on a small
/// machine).
pub fn checkpoint_budget(cap_bytes: usize) -> usize {
    CHECKPOINT_BYTES.min(cap_bytes / 8)
}

/// The decoded frames of this many sealed blocks at most are kept for
/// `?at=` ([`FrameCache`]), within [`FRAME_CACHE_BYTES`]: a user scrubbing
/// through an old minute decodes its block once.
pub const FRAME_CACHE_BLOCKS: usize = 4;

/// The most memory the decoded frames of [`FRAME_CACHE_BLOCKS`] may hold
/// (apart from the cap, like the checkpoints); one block is always kept.
/// Only a user asking `?at=` fills it, and a miss costs one cold seek
/// (≤ 12 ms at 20k sockets, where a decoded block is ~4 MB, so this
/// still holds two); at 100k one block is over it anyway.
pub const FRAME_CACHE_BYTES: usize = 8 << 20;

/// The smallest `--history-size`: below this a single block of a busy
/// machine would not fit.
pub const MIN_CAP_BYTES: usize = 1 << 20;

/// What a history keeps and how.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    pub cap_bytes: usize,
    pub keyframe_every: Duration,
    /// How long after the newest sample a time still means it (two
    /// sampling intervals): later is the future, a 416.
    pub grace: Duration,
    /// For the direction of closed connections.
    pub service_ports: ServicePorts,
}

/// A closed block: compressed frames and their facts.
#[derive(Debug)]
pub struct SealedBlock {
    pub metas: Vec<SampleMeta>,
    /// A zstd-compressed block: its version byte and frames
    /// (docs/recording-format.md).
    pub data: Vec<u8>,
}

impl SealedBlock {
    pub fn first_ms(&self) -> u64 {
        self.metas.first().map_or(0, |m| m.at_ms)
    }
    pub fn last_ms(&self) -> u64 {
        self.metas.last().map_or(0, |m| m.at_ms)
    }
    /// Bytes this block holds in memory.
    fn cost(&self) -> usize {
        self.data.len() + self.metas.len() * std::mem::size_of::<SampleMeta>() + 64
    }
}

#[derive(Debug, Default)]
struct OpenBlock {
    metas: Vec<SampleMeta>,
    /// Each frame's bytes, zstd-compressed on its own.
    lines: Vec<Arc<[u8]>>,
    bytes: usize,
}

/// A sample of a block kept whole, shared with the server's published
/// sample it was: what `?at=` starts from instead of the keyframe.
#[derive(Clone)]
pub struct Checkpoint {
    /// The block's first sample time: which block this is in.
    pub block_first_ms: u64,
    /// Its index in the block.
    pub index: usize,
    pub snapshot: SharedSnapshot,
    /// The container labels in effect at this sample.
    pub containers: RecordedContainers,
    /// Estimated bytes it holds.
    pub bytes: usize,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("block_first_ms", &self.block_first_ms)
            .field("index", &self.index)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Rough bytes of a sample in memory.
fn snapshot_cost(s: &Snapshot) -> usize {
    s.sockets.len() * (std::mem::size_of::<crate::snapshot::Socket>() + 16)
        + s.processes.len() * (std::mem::size_of::<crate::snapshot::Process>() + 256)
        + 1024
}

/// The frames of one block, held for decoding outside the store's lock.
#[derive(Debug, Clone)]
pub enum BlockFrames {
    Sealed(Arc<SealedBlock>),
    /// The open block's frames so far, and its first sample's time.
    Open {
        first_ms: u64,
        lines: Vec<Arc<[u8]>>,
    },
}

impl BlockFrames {
    pub fn frames(&self) -> Result<Vec<Frame>, CodecError> {
        self.frames_range(0, usize::MAX)
    }

    /// Frames `from..to`: the ones before `from` are read only for the
    /// strings they add to the block's table.
    pub fn frames_range(&self, from: usize, to: usize) -> Result<Vec<Frame>, CodecError> {
        match self {
            BlockFrames::Sealed(b) => decompress_block_range(&b.data, from, to),
            BlockFrames::Open { lines, .. } => decode_frames(
                &decompress_lines(lines.iter().take(to).map(|l| &l[..]))?,
                from,
                to,
            ),
        }
    }
}

/// The sealed blocks `?at=` read last, decompressed, with the frames
/// decoded so far ([`LazyFrames`]; at most [`FRAME_CACHE_BLOCKS`] within
/// [`FRAME_CACHE_BYTES`], the least recently used go first): stepping
/// through an old minute decompresses its block once and decodes each
/// frame once, not once a step.
#[derive(Debug, Default)]
pub struct FrameCache {
    /// Most recently used last: (block key, frames, estimated bytes).
    entries: VecDeque<(BlockKey, Arc<LazyFrames>, usize)>,
    bytes: usize,
    /// The open block as last read: (its first sample's time, frames in
    /// it then, frames). Replaced when a sample is added (not counted in
    /// `bytes`: at most one block, like the one sealed block always kept).
    open: Option<(u64, usize, Arc<LazyFrames>)>,
}

/// A sealed block by its times and size (unique in one history).
type BlockKey = (u64, u64, usize);

fn block_key(b: &SealedBlock) -> BlockKey {
    (b.first_ms(), b.last_ms(), b.data.len())
}

/// Rough bytes of decoded frames in memory.
fn frames_cost<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> usize {
    frames
        .into_iter()
        .map(|f| match &f.body {
            FrameBody::Key(s) => snapshot_cost(s),
            FrameBody::Delta(d) => {
                let new = d
                    .sockets
                    .iter()
                    .filter(|op| matches!(op, ListOp::New(_)))
                    .count();
                d.sockets.len() * std::mem::size_of::<ListOp<Socket, SocketPatch>>()
                    + new * (std::mem::size_of::<Socket>() + 16)
                    + d.processes.len() * 256
                    + 256
            }
        })
        .sum()
}

/// Bytes a block in the cache holds now.
fn lazy_cost(frames: &LazyFrames) -> usize {
    frames.raw_bytes() + frames_cost(frames.decoded_frames())
}

impl FrameCache {
    fn get(&mut self, key: BlockKey) -> Option<Arc<LazyFrames>> {
        let i = self.entries.iter().position(|e| e.0 == key)?;
        let e = self.entries.remove(i)?;
        let frames = e.1.clone();
        self.entries.push_back(e);
        Some(frames)
    }

    fn insert(&mut self, key: BlockKey, frames: Arc<LazyFrames>) {
        let cost = lazy_cost(&frames);
        self.bytes += cost;
        self.entries.push_back((key, frames, cost));
        self.evict();
    }

    /// Counts what a query decoded into `key`'s block, and keeps the bound.
    fn settle(&mut self, key: BlockKey) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == key) {
            let cost = lazy_cost(&e.1);
            self.bytes = self.bytes - e.2 + cost;
            e.2 = cost;
        }
        self.evict();
    }

    fn evict(&mut self) {
        while self.entries.len() > 1
            && (self.entries.len() > FRAME_CACHE_BLOCKS || self.bytes > FRAME_CACHE_BYTES)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.2;
            }
        }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The frames of a block, ready to decode one at a time: a sealed block
/// from the cache (decompressed and cached on a miss), the open block's
/// frames decompressed now.
fn lazy_frames(
    cache: &Mutex<FrameCache>,
    block: &BlockFrames,
) -> Result<(Arc<LazyFrames>, Option<BlockKey>), CodecError> {
    let b = match block {
        BlockFrames::Sealed(b) => b,
        BlockFrames::Open { first_ms, lines } => {
            let same = |c: &FrameCache| {
                c.open
                    .as_ref()
                    .filter(|(f, n, _)| *f == *first_ms && *n == lines.len())
                    .map(|o| o.2.clone())
            };
            if let Some(f) = cache.lock().ok().and_then(|c| same(&c)) {
                return Ok((f, None));
            }
            let raw = decompress_lines(lines.iter().map(|l| &l[..]))?;
            let frames = Arc::new(LazyFrames::new(raw, 0)?);
            if let Ok(mut c) = cache.lock() {
                c.open = Some((*first_ms, lines.len(), frames.clone()));
            }
            return Ok((frames, None));
        }
    };
    let key = block_key(b);
    if let Some(f) = cache.lock().ok().and_then(|mut c| c.get(key)) {
        return Ok((f, Some(key)));
    }
    // Decompressed outside the lock: another query may do the same block
    // at the same time, and the second insert only refreshes it.
    let frames = Arc::new(lazy_block(&b.data)?);
    if let Ok(mut c) = cache.lock() {
        match c.get(key) {
            Some(f) => return Ok((f, Some(key))),
            None => c.insert(key, frames.clone()),
        }
    }
    Ok((frames, Some(key)))
}

/// Counts what was decoded into a cached block.
fn settle(cache: &Mutex<FrameCache>, key: Option<BlockKey>) {
    if let (Some(key), Ok(mut c)) = (key, cache.lock()) {
        c.settle(key);
    }
}

/// A time outside what history keeps: the answer is 416 with the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{at_ms} is outside the kept history ({oldest_ms:?} to {newest_ms:?})")]
pub struct OutOfRange {
    pub at_ms: u64,
    /// `None` when history is empty.
    pub oldest_ms: Option<u64>,
    pub newest_ms: Option<u64>,
}

/// Where the sample for a time is.
#[derive(Debug, Clone)]
pub struct Located {
    pub meta: SampleMeta,
    /// Its index in `block`.
    pub index: usize,
    pub block: BlockFrames,
    /// The block before, when the sample is its block's first (the sample
    /// before it is needed for rates).
    pub before: Option<BlockFrames>,
    /// The newest checkpoint of `block` before `index` (at `index` when
    /// that is 0).
    pub start: Option<Checkpoint>,
    /// The newest checkpoint of `before`.
    pub before_start: Option<Checkpoint>,
    /// The store's decoded frames of recently read blocks.
    pub cache: Arc<Mutex<FrameCache>>,
}

/// A sample rebuilt from history.
#[derive(Debug, Clone)]
pub struct AtSample {
    pub meta: SampleMeta,
    pub snapshot: Snapshot,
    /// The sample before, for byte rates (absent for the oldest kept).
    pub prev: Option<Snapshot>,
    pub containers: ContainerLabels,
}

/// The deltas of `frames` (those right after a checkpoint).
fn deltas_of<'a>(frames: &[&'a Frame]) -> Result<Vec<&'a SnapshotDelta>, CodecError> {
    frames
        .iter()
        .map(|f| match &f.body {
            FrameBody::Delta(d) => Ok(&**d),
            // A checkpoint is never followed by its block's keyframe.
            FrameBody::Key(_) => Err(CodecError::NoKeyframe),
        })
        .collect()
}

/// The samples from a checkpoint through `frames` (the deltas right
/// after it): the last and the one before it, and the containers then.
fn from_checkpoint(
    start: &Checkpoint,
    frames: &[&Frame],
) -> Result<(Option<Snapshot>, Snapshot, ContainerLabels), CodecError> {
    let base: &Snapshot = (*start.snapshot).as_ref();
    let containers = frames
        .iter()
        .rev()
        .find_map(|f| f.containers.as_ref())
        .unwrap_or(&start.containers)
        .to_labels();
    let (prev, cur) = apply_chain(base, &deltas_of(frames)?)?;
    Ok((prev, cur, containers))
}

impl Located {
    pub fn rebuild(&self) -> Result<AtSample, CodecError> {
        let t = std::time::Instant::now();
        let at = self.rebuild_timed();
        log::debug!(
            "history: sample {} rebuilt in {:.1} ms (index {}, from {})",
            self.meta.seq,
            t.elapsed().as_secs_f64() * 1000.0,
            self.index,
            self.start
                .as_ref()
                .map_or("the keyframe".to_string(), |c| format!(
                    "checkpoint {}",
                    c.index
                )),
        );
        at
    }

    fn rebuild_timed(&self) -> Result<AtSample, CodecError> {
        let (frames, key) = lazy_frames(&self.cache, &self.block)?;
        let built = self.rebuild_in(&frames);
        settle(&self.cache, key);
        let (prev, snapshot, containers) = built?;
        let prev = match (prev, &self.before) {
            (Some(p), _) => Some(p),
            (None, Some(before)) => Some(self.last_of_before(before)?),
            (None, None) => None,
        };
        Ok(AtSample {
            meta: self.meta,
            snapshot,
            prev,
            containers,
        })
    }

    /// The sample and the one before it in its block (if any), from the
    /// nearest checkpoint and at most [`CHECKPOINT_EVERY`] deltas, or
    /// from the block's keyframe.
    fn rebuild_in(
        &self,
        frames: &LazyFrames,
    ) -> Result<(Option<Snapshot>, Snapshot, ContainerLabels), CodecError> {
        if let Some(start) = &self.start {
            let deltas = frames.range(start.index + 1, self.index + 1)?;
            return from_checkpoint(start, &deltas);
        }
        let upto = frames.range(0, self.index + 1)?;
        let (prev, snapshot) = rebuild_upto_refs(&upto, self.index)?;
        let containers = upto
            .iter()
            .rev()
            .find_map(|f| f.containers.as_ref())
            .map(RecordedContainers::to_labels)
            .unwrap_or_default();
        Ok((prev, snapshot, containers))
    }

    /// The last sample of the block before (only it is built).
    fn last_of_before(&self, before: &BlockFrames) -> Result<Snapshot, CodecError> {
        let (frames, key) = lazy_frames(&self.cache, before)?;
        let n = frames.len();
        let last = match &self.before_start {
            Some(c) => frames
                .range(c.index + 1, n)
                .map_err(CodecError::from)
                .and_then(|f| deltas_of(&f))
                .and_then(|d| Ok(apply_chain_last((*c.snapshot).as_ref(), &d)?)),
            None => frames
                .range(0, n)
                .map_err(CodecError::from)
                .and_then(|f| rebuild_last_refs(&f)),
        };
        settle(&self.cache, key);
        last
    }
}

/// How much history holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: usize,
    pub cap_bytes: usize,
    pub blocks: usize,
    pub samples: usize,
    pub flows: usize,
    /// Blocks dropped for the cap since the start.
    pub dropped_blocks: u64,
}

/// The in-memory history (see the module docs).
#[derive(Debug)]
pub struct HistoryStore {
    config: HistoryConfig,
    sealed: VecDeque<Arc<SealedBlock>>,
    sealed_bytes: usize,
    open: OpenBlock,
    flows: VecDeque<FlowRecord>,
    flows_bytes: usize,
    dropped_blocks: u64,
    /// Oldest first, within `checkpoint_cap`.
    checkpoints: VecDeque<Checkpoint>,
    checkpoint_bytes: usize,
    /// [`checkpoint_budget`] of the cap (smaller in tests).
    checkpoint_cap: usize,
    cache: Arc<Mutex<FrameCache>>,
}

/// What one sample adds to the store.
#[derive(Debug, Default)]
pub struct Update {
    /// The open block, closed and compressed whole, when this sample
    /// starts a new one.
    pub sealed: Option<Arc<SealedBlock>>,
    /// The sample's frame, compressed on its own.
    pub frame: Option<(SampleMeta, Arc<[u8]>)>,
    /// Connections that closed in this sample.
    pub flows: Vec<FlowRecord>,
    /// The sample itself, every [`CHECKPOINT_EVERY`] samples of a block.
    pub checkpoint: Option<Checkpoint>,
}

/// A sample held by reference: the server's published sample is kept as
/// the previous one for the next delta without a copy of its sockets.
pub type SharedSnapshot = Arc<dyn AsRef<Snapshot> + Send + Sync>;

impl AsRef<Snapshot> for Snapshot {
    fn as_ref(&self) -> &Snapshot {
        self
    }
}

/// Encodes samples into frames and blocks, on the sampler's thread and
/// outside the store's lock: the previous sample (for deltas), the
/// closed-connection tracker and a copy of the open block's frames.
pub struct HistoryWriter {
    keyframe_every: Duration,
    /// Shared with the server's published sample, never copied.
    last: Option<(SharedSnapshot, RecordedContainers)>,
    /// A sample was refused (not newer than the last): the change set of
    /// the one after it is against a sample history never saw.
    dropped_one: bool,
    tracker: FlowTracker,
    open_lines: Vec<Arc<[u8]>>,
    open_metas: Vec<SampleMeta>,
    /// The open block's strings.
    strings: Interner,
}

impl HistoryWriter {
    pub fn new(config: &HistoryConfig) -> HistoryWriter {
        HistoryWriter {
            keyframe_every: config.keyframe_every,
            last: None,
            dropped_one: false,
            tracker: FlowTracker::new(config.service_ports.clone()),
            open_lines: Vec::new(),
            open_metas: Vec::new(),
            strings: Interner::default(),
        }
    }

    /// Encodes the next sample. A sample not newer than the last is
    /// skipped (a restarted replay).
    pub fn encode(
        &mut self,
        shared: SharedSnapshot,
        containers: &ContainerLabels,
        meta: SampleMeta,
    ) -> Update {
        self.encode_changed(shared, containers, meta, None)
    }

    /// [`HistoryWriter::encode`], with which sockets changed since the
    /// last sample when the collector knows (the closed-connection
    /// tracker then looks at those only; see `SocketChanges`).
    pub fn encode_changed(
        &mut self,
        shared: SharedSnapshot,
        containers: &ContainerLabels,
        meta: SampleMeta,
        changes: Option<&crate::snapshot::SocketChanges>,
    ) -> Update {
        let snap: &Snapshot = (*shared).as_ref();
        if self
            .last
            .as_ref()
            .is_some_and(|(l, _)| meta.at_ms <= (**l).as_ref().taken_at_ms)
        {
            // The next sample's change set is against this one, which
            // history did not keep: that sample gets the full comparison.
            self.dropped_one = true;
            return Update::default();
        }
        let changes = changes.filter(|_| !std::mem::take(&mut self.dropped_one));
        let flows = self.tracker.observe_changed(snap, changes);
        let containers = RecordedContainers::from_labels(containers);
        let block_age = self
            .open_metas
            .first()
            .map(|m| meta.at_ms.saturating_sub(m.at_ms));
        let sealed = match block_age {
            Some(age) if age >= self.keyframe_every.as_millis() as u64 => self.seal(),
            _ => None,
        };
        let keyframe = self.open_metas.is_empty();
        if keyframe {
            self.strings.clear();
        }
        let d;
        let (body, changed) = match (&self.last, keyframe) {
            (Some((prev, prev_c)), false) => {
                d = delta_changed((**prev).as_ref(), snap, changes);
                (FrameBodyRef::Delta(&d), *prev_c != containers)
            }
            _ => (FrameBodyRef::Key(snap), true),
        };
        let frame = FrameRef {
            meta,
            containers: changed.then_some(&containers),
            body,
        };
        let line: Arc<[u8]> = encode_compressed(&frame, &mut self.strings).into();
        let index = self.open_metas.len();
        self.open_lines.push(line.clone());
        self.open_metas.push(meta);
        let checkpoint = index.is_multiple_of(CHECKPOINT_EVERY).then(|| Checkpoint {
            block_first_ms: self.open_metas[0].at_ms,
            index,
            snapshot: shared.clone(),
            containers: containers.clone(),
            bytes: snapshot_cost(snap),
        });
        self.last = Some((shared.clone(), containers));
        Update {
            sealed,
            frame: Some((meta, line)),
            flows,
            checkpoint,
        }
    }

    /// Closes the open block: its frames compressed as one (the deltas
    /// compress against each other). At the keyframe interval, and when
    /// the server stops so a recording keeps the last minute.
    pub fn seal(&mut self) -> Option<Arc<SealedBlock>> {
        if self.open_metas.is_empty() {
            return None;
        }
        let lines = std::mem::take(&mut self.open_lines);
        let metas = std::mem::take(&mut self.open_metas);
        match recompress_block(lines.iter().map(|l| &l[..])) {
            Ok(data) => Some(Arc::new(SealedBlock { data, metas })),
            Err(e) => {
                log::error!("history: dropping a block that does not decode: {e}");
                None
            }
        }
    }

    /// An update that only closes the open block (at shutdown).
    pub fn flush(&mut self) -> Update {
        Update {
            sealed: self.seal(),
            ..Update::default()
        }
    }
}

/// Rough bytes of one flow record in memory.
fn flow_cost(f: &FlowRecord) -> usize {
    std::mem::size_of::<FlowRecord>()
        + f.start.len()
        + f.end.len()
        + f.state.len()
        + f.client.address.len()
        + f.server.address.len()
        + f.client.process_name.as_ref().map_or(0, String::len)
        + f.server.process_name.as_ref().map_or(0, String::len)
}

impl HistoryStore {
    pub fn new(config: HistoryConfig) -> HistoryStore {
        HistoryStore {
            checkpoint_cap: checkpoint_budget(config.cap_bytes),
            config,
            sealed: VecDeque::new(),
            sealed_bytes: 0,
            open: OpenBlock::default(),
            flows: VecDeque::new(),
            flows_bytes: 0,
            dropped_blocks: 0,
            checkpoints: VecDeque::new(),
            checkpoint_bytes: 0,
            cache: Arc::default(),
        }
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    /// Adds what a [`HistoryWriter`] made of a sample: a cheap insert
    /// (the encoding was done outside the store's lock). Returns the
    /// block this closed, if any (for the recording).
    pub fn apply(&mut self, update: Update) -> Option<Arc<SealedBlock>> {
        for f in update.flows {
            self.flows_bytes += flow_cost(&f);
            self.flows.push_back(f);
        }
        if let Some(block) = &update.sealed {
            self.open = OpenBlock::default();
            self.sealed_bytes += block.cost();
            self.sealed.push_back(block.clone());
        }
        if let Some((meta, line)) = update.frame {
            self.open.bytes += line.len() + std::mem::size_of::<SampleMeta>();
            self.open.lines.push(line);
            self.open.metas.push(meta);
        }
        if let Some(c) = update.checkpoint {
            self.checkpoint_bytes += c.bytes;
            self.checkpoints.push_back(c);
        }
        self.enforce_cap();
        update.sealed
    }

    /// Encodes and adds a sample in one step (tests, the CLI): the server
    /// encodes outside the lock with [`HistoryWriter::encode`].
    pub fn push(
        &mut self,
        writer: &mut HistoryWriter,
        snap: &Snapshot,
        containers: &ContainerLabels,
        meta: SampleMeta,
    ) -> Option<Arc<SealedBlock>> {
        let update = writer.encode(Arc::new(snap.clone()), containers, meta);
        self.apply(update)
    }

    fn bytes(&self) -> usize {
        self.sealed_bytes + self.open.bytes + self.flows_bytes
    }

    fn enforce_cap(&mut self) {
        while self.bytes() > self.config.cap_bytes {
            let Some(old) = self.sealed.pop_front() else {
                break;
            };
            self.sealed_bytes -= old.cost();
            self.dropped_blocks += 1;
            if let Some(oldest) = self.oldest_ms() {
                while self.flows.front().is_some_and(|f| f.end_ms < oldest) {
                    if let Some(f) = self.flows.pop_front() {
                        self.flows_bytes -= flow_cost(&f);
                    }
                }
            }
        }
        let oldest = self.oldest_ms().unwrap_or(u64::MAX);
        while self.checkpoint_bytes > self.checkpoint_cap
            || self
                .checkpoints
                .front()
                .is_some_and(|c| c.block_first_ms < oldest)
        {
            let Some(c) = self.checkpoints.pop_front() else {
                break;
            };
            self.checkpoint_bytes -= c.bytes;
        }
        // Flows alone over the cap (a flood of short connections on a
        // quiet sample log): the oldest flows go.
        while self.bytes() > self.config.cap_bytes && !self.flows.is_empty() {
            if let Some(f) = self.flows.pop_front() {
                self.flows_bytes -= flow_cost(&f);
            }
        }
    }

    pub fn oldest_ms(&self) -> Option<u64> {
        self.sealed
            .front()
            .map(|b| b.first_ms())
            .or_else(|| self.open.metas.first().map(|m| m.at_ms))
    }

    pub fn newest_ms(&self) -> Option<u64> {
        self.open
            .metas
            .last()
            .map(|m| m.at_ms)
            .or_else(|| self.sealed.back().map(|b| b.last_ms()))
    }

    /// The facts of every kept sample, oldest first.
    pub fn metas(&self) -> Vec<SampleMeta> {
        self.sealed
            .iter()
            .flat_map(|b| b.metas.iter().copied())
            .chain(self.open.metas.iter().copied())
            .collect()
    }

    pub fn usage(&self) -> Usage {
        Usage {
            bytes: self.bytes(),
            cap_bytes: self.config.cap_bytes,
            blocks: self.sealed.len() + usize::from(!self.open.metas.is_empty()),
            samples: self.sealed.iter().map(|b| b.metas.len()).sum::<usize>()
                + self.open.metas.len(),
            flows: self.flows.len(),
            dropped_blocks: self.dropped_blocks,
        }
    }

    fn out_of_range(&self, at_ms: u64) -> OutOfRange {
        OutOfRange {
            at_ms,
            oldest_ms: self.oldest_ms(),
            newest_ms: self.newest_ms(),
        }
    }

    /// Checks that `at_ms` is within what is kept.
    pub fn check(&self, at_ms: u64) -> Result<(), OutOfRange> {
        match (self.oldest_ms(), self.newest_ms()) {
            (Some(o), Some(n))
                if at_ms >= o && at_ms <= n + self.config.grace.as_millis() as u64 =>
            {
                Ok(())
            }
            _ => Err(self.out_of_range(at_ms)),
        }
    }

    /// The newest checkpoint of the block starting at `block_first_ms`
    /// at or before `index`.
    fn checkpoint(&self, block_first_ms: u64, index: usize) -> Option<Checkpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.block_first_ms == block_first_ms && c.index <= index)
            .cloned()
    }

    /// The checkpoint to rebuild sample `index` of a block from: one before
    /// it, so the sample before comes out of the same deltas.
    fn start_for(&self, block_first_ms: u64, index: usize) -> Option<Checkpoint> {
        self.checkpoint(block_first_ms, index.saturating_sub(1))
    }

    /// The last sample taken at or before `at_ms`.
    pub fn locate(&self, at_ms: u64) -> Result<Located, OutOfRange> {
        self.check(at_ms)?;
        let in_open = self.open.metas.first().is_some_and(|m| m.at_ms <= at_ms);
        if in_open {
            let index = self.open.metas.partition_point(|m| m.at_ms <= at_ms) - 1;
            let before_block = (index == 0).then(|| self.sealed.back()).flatten();
            return Ok(Located {
                meta: self.open.metas[index],
                index,
                block: BlockFrames::Open {
                    first_ms: self.open.metas[0].at_ms,
                    lines: self.open.lines.clone(),
                },
                before: before_block.cloned().map(BlockFrames::Sealed),
                start: self.start_for(self.open.metas[0].at_ms, index),
                before_start: before_block.and_then(|b| self.checkpoint(b.first_ms(), usize::MAX)),
                cache: self.cache.clone(),
            });
        }
        let b = self.sealed.partition_point(|b| b.first_ms() <= at_ms);
        let Some(block) = b.checked_sub(1).and_then(|b| self.sealed.get(b)) else {
            return Err(self.out_of_range(at_ms));
        };
        let index = block.metas.partition_point(|m| m.at_ms <= at_ms) - 1;
        let before_block = (index == 0 && b >= 2)
            .then(|| self.sealed.get(b - 2))
            .flatten();
        Ok(Located {
            meta: block.metas[index],
            index,
            block: BlockFrames::Sealed(block.clone()),
            before: before_block.cloned().map(BlockFrames::Sealed),
            start: self.start_for(block.first_ms(), index),
            before_start: before_block.and_then(|b| self.checkpoint(b.first_ms(), usize::MAX)),
            cache: self.cache.clone(),
        })
    }

    /// Forgets the decoded blocks and, with `checkpoints`, the kept whole
    /// samples: what a seek costs cold (`examples/history_seek`).
    #[doc(hidden)]
    pub fn forget_for_bench(&mut self, checkpoints: bool) {
        if let Ok(mut c) = self.cache.lock() {
            *c = FrameCache::default();
        }
        if checkpoints {
            self.checkpoints.clear();
            self.checkpoint_bytes = 0;
        }
    }

    /// Closed connections that ended within `[since_ms, until_ms]`, oldest first.
    pub fn flows(&self, since_ms: u64, until_ms: u64) -> Vec<FlowRecord> {
        let from = self.flows.partition_point(|f| f.end_ms < since_ms);
        self.flows
            .iter()
            .skip(from)
            .take_while(|f| f.end_ms <= until_ms)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Proto, Socket, SocketState};

    fn config(cap: usize) -> HistoryConfig {
        HistoryConfig {
            cap_bytes: cap,
            keyframe_every: Duration::from_secs(10),
            grace: Duration::from_secs(2),
            service_ports: ServicePorts::new([]),
        }
    }

    /// A machine with `n` connections, of which those from `churn` on are
    /// new each second.
    fn sample(t_s: u64, n: u16, churn: u16) -> Snapshot {
        let sockets = (0..n)
            .map(|i| {
                let port = if i >= churn {
                    10_000u16
                        .wrapping_add((t_s as u16).wrapping_mul(n))
                        .wrapping_add(i)
                } else {
                    1000 + i
                };
                Socket {
                    proto: Proto::Tcp,
                    local: SocketAddr::from(([127, 0, 0, 1], port)),
                    remote: Some(SocketAddr::from(([127, 0, 0, 1], 80))),
                    state: SocketState::Established,
                    inode: port as u64,
                    uid: None,
                    owners: smallvec::smallvec![7],
                    unowned_reason: None,
                    bytes_sent: Some(t_s * 100 + i as u64),
                    bytes_received: Some(5),
                    tcp_health: None,
                    closed: false,
                    io_owner: None,
                }
            })
            .collect();
        Snapshot {
            taken_at_ms: t_s * 1000,
            sockets,
            ..Snapshot::default()
        }
    }
    use std::net::SocketAddr;

    fn meta(t_s: u64) -> SampleMeta {
        SampleMeta {
            at_ms: t_s * 1000,
            seq: t_s,
            edges: 1,
            bytes_total: t_s,
        }
    }

    #[test]
    fn every_sample_comes_back_as_it_was() {
        let mut store = HistoryStore::new(config(64 << 20));
        let mut w = HistoryWriter::new(store.config());
        let samples: Vec<Snapshot> = (1..=35).map(|t| sample(t, 20, 15)).collect();
        for (i, s) in samples.iter().enumerate() {
            store.push(&mut w, s, &ContainerLabels::default(), meta(i as u64 + 1));
        }
        assert_eq!(store.usage().blocks, 4);
        for (i, s) in samples.iter().enumerate() {
            let at = store
                .locate(s.taken_at_ms + 500)
                .unwrap()
                .rebuild()
                .unwrap();
            assert_eq!(&at.snapshot, s, "sample {i}");
            assert_eq!(at.meta.seq, i as u64 + 1);
            if i > 0 {
                assert_eq!(at.prev.as_ref(), Some(&samples[i - 1]), "sample {i}");
            }
        }
        assert_eq!(
            store.locate(500).unwrap_err().oldest_ms,
            Some(1000),
            "before the oldest"
        );
        assert!(store.locate(35_000 + 2_000).is_ok());
        assert!(store.locate(35_000 + 2_001).is_err(), "the future");
    }

    #[test]
    fn a_sample_from_a_checkpoint_is_the_sample_decoded_from_its_keyframe() {
        let cfg = HistoryConfig {
            keyframe_every: Duration::from_secs(35),
            ..config(64 << 20)
        };
        let mut store = HistoryStore::new(cfg);
        let mut w = HistoryWriter::new(store.config());
        let samples: Vec<Snapshot> = (1..=100).map(|t| sample(t, 30, 20)).collect();
        let mut labels = ContainerLabels::default();
        for (i, s) in samples.iter().enumerate() {
            if i == 47 {
                labels.names.insert("abc".into(), "web".into());
            }
            store.push(&mut w, s, &labels, meta(i as u64 + 1));
        }
        // Blocks of 35 samples: checkpoints at 0, 10, 20, 30 of each.
        assert_eq!(store.checkpoints.len(), 4 + 4 + 3);
        let from_checkpoints: Vec<AtSample> = samples
            .iter()
            .map(|s| {
                let l = store.locate(s.taken_at_ms).unwrap();
                assert!(l.start.is_some(), "{}", s.taken_at_ms);
                l.rebuild().unwrap()
            })
            .collect();
        store.checkpoints.clear();
        for (i, s) in samples.iter().enumerate() {
            let l = store.locate(s.taken_at_ms).unwrap();
            assert!(l.start.is_none());
            let decoded = l.rebuild().unwrap();
            let at = &from_checkpoints[i];
            assert_eq!(&at.snapshot, s, "sample {i}");
            assert_eq!(at.snapshot, decoded.snapshot, "sample {i}");
            assert_eq!(at.prev, decoded.prev, "sample {i}");
            assert_eq!(at.prev.as_ref(), i.checked_sub(1).map(|p| &samples[p]));
            assert_eq!(at.containers.names, decoded.containers.names, "sample {i}");
            assert_eq!(at.containers.names.len(), usize::from(i >= 47), "{i}");
        }
    }

    #[test]
    fn old_blocks_decode_once_into_a_bounded_cache() {
        let mut store = HistoryStore::new(config(64 << 20));
        let mut w = HistoryWriter::new(store.config());
        let samples: Vec<Snapshot> = (1..=80).map(|t| sample(t, 20, 15)).collect();
        for (i, s) in samples.iter().enumerate() {
            store.push(&mut w, s, &ContainerLabels::default(), meta(i as u64 + 1));
        }
        // No checkpoints: every moment seeks from its block's keyframe.
        store.checkpoints.clear();
        let cache = store.cache.clone();
        for round in 0..2 {
            for (i, s) in samples.iter().enumerate() {
                let at = store.locate(s.taken_at_ms).unwrap().rebuild().unwrap();
                assert_eq!(&at.snapshot, s, "round {round}, sample {i}");
                assert_eq!(at.prev.as_ref(), i.checked_sub(1).map(|p| &samples[p]));
                let c = cache.lock().unwrap();
                assert!(c.len() <= FRAME_CACHE_BLOCKS, "{}", c.len());
                assert!(!c.is_empty(), "a sealed block was read: {i}");
            }
        }
        // Stepping within one old block decodes it once: it stays cached.
        let key = block_key(&store.sealed[1]);
        for t in 11..=20 {
            store.locate(t * 1000).unwrap().rebuild().unwrap();
            assert!(cache.lock().unwrap().get(key).is_some());
        }
    }

    #[test]
    fn the_open_block_read_between_samples_is_never_stale() {
        let mut store = HistoryStore::new(config(64 << 20));
        let mut w = HistoryWriter::new(store.config());
        let samples: Vec<Snapshot> = (1..=25).map(|t| sample(t, 20, 15)).collect();
        for (i, s) in samples.iter().enumerate() {
            store.push(&mut w, s, &ContainerLabels::default(), meta(i as u64 + 1));
            // The newest, as the open block grows (and across the seals).
            for (j, want) in samples
                .iter()
                .enumerate()
                .take(i + 1)
                .skip(i.saturating_sub(3))
            {
                let at = store.locate(want.taken_at_ms).unwrap().rebuild();
                assert_eq!(&at.unwrap().snapshot, want, "after {i}: {j}");
            }
        }
        assert!(store.cache.lock().unwrap().open.is_some());
    }

    #[test]
    fn no_checkpoint_when_a_sample_is_over_the_budget() {
        // The default: 8 MiB, an eighth of a smaller cap.
        assert_eq!(checkpoint_budget(DEFAULT_CAP_BYTES), 8 << 20);
        assert_eq!(checkpoint_budget(16 << 20), 2 << 20);
        // A 1 MiB history keeps checkpoints within 128 kB: samples of
        // 2,000 sockets (a few hundred kB) are never kept whole, and every
        // moment still rebuilds from its keyframe.
        let mut store = HistoryStore::new(config(1 << 20));
        assert_eq!(store.checkpoint_cap, 128 << 10);
        let mut w = HistoryWriter::new(store.config());
        for t in 1..=25 {
            store.push(
                &mut w,
                &sample(t, 2000, 2000),
                &ContainerLabels::default(),
                meta(t),
            );
            assert!(store.checkpoints.is_empty());
        }
        let at = store.locate(23_000).unwrap();
        assert!(at.start.is_none());
        assert_eq!(at.rebuild().unwrap().snapshot, sample(23, 2000, 2000));
    }

    #[test]
    fn checkpoints_stay_within_their_bound() {
        let mut store = HistoryStore::new(config(64 << 20));
        store.checkpoint_cap = 1 << 20;
        let mut w = HistoryWriter::new(store.config());
        // 2,000 sockets a sample: a few hundred kB each, so the bound
        // keeps a few of the 10 (one a block).
        for t in 1..=100 {
            store.push(
                &mut w,
                &sample(t, 2000, 2000),
                &ContainerLabels::default(),
                meta(t),
            );
            assert!(store.checkpoint_bytes <= store.checkpoint_cap);
        }
        let kept = store.checkpoints.len();
        assert!(kept > 0 && kept < 10, "{kept}");
        assert_eq!(
            store.checkpoints.iter().map(|c| c.bytes).sum::<usize>(),
            store.checkpoint_bytes
        );
        // The newest are kept, and a moment older than them still rebuilds.
        assert_eq!(store.checkpoints.back().unwrap().block_first_ms, 91_000);
        let oldest = store.oldest_ms().unwrap();
        let l = store.locate(oldest).unwrap();
        assert!(l.start.is_none());
        assert_eq!(
            l.rebuild().unwrap().snapshot,
            sample(oldest / 1000, 2000, 2000)
        );
    }

    #[test]
    fn the_cap_holds_and_the_oldest_goes_first() {
        let cap = 2 << 20;
        let mut store = HistoryStore::new(config(cap));
        let mut w = HistoryWriter::new(store.config());
        for t in 1..=600 {
            store.push(
                &mut w,
                &sample(t, 400, 0),
                &ContainerLabels::default(),
                meta(t),
            );
            assert!(store.usage().bytes <= cap, "at {t}: {:?}", store.usage());
        }
        let u = store.usage();
        assert!(u.dropped_blocks > 0, "{u:?}");
        let oldest = store.oldest_ms().unwrap();
        assert!(oldest > 1000, "the oldest went: {oldest}");
        assert_eq!(store.newest_ms(), Some(600_000));
        // What is kept is whole: the oldest kept sample rebuilds.
        let at = store.locate(oldest).unwrap().rebuild().unwrap();
        assert_eq!(at.snapshot, sample(oldest / 1000, 400, 0));
        // Closed connections older than the oldest sample went too.
        assert!(store.flows(0, u64::MAX).iter().all(|f| f.end_ms >= oldest));
        assert!(!store.flows(0, u64::MAX).is_empty());
    }

    #[test]
    fn a_replayed_restart_is_ignored() {
        let mut store = HistoryStore::new(config(64 << 20));
        let mut w = HistoryWriter::new(store.config());
        store.push(
            &mut w,
            &sample(2, 3, 3),
            &ContainerLabels::default(),
            meta(2),
        );
        store.push(
            &mut w,
            &sample(1, 3, 3),
            &ContainerLabels::default(),
            meta(1),
        );
        assert_eq!(store.usage().samples, 1);
    }
}
