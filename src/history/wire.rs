//! The binary form of a frame (block format version 2): postcard, with
//! the strings of a block (process names, command lines, paths, users,
//! interface names) stored once per block and named by number.
//!
//! Why binary: a keyframe of 20k sockets was ~5 MB of JSON whose parse
//! (addresses from text, field names) dominated `?at=` for any moment
//! older than the checkpoints. Why postcard (and not bincode 2): its wire
//! format is specified and stable since 1.0 (a recording format must not
//! drift with a crate update), integers are varints (counters and pids
//! are small), and it is maintained; bincode's last release (3.0) is an
//! unmaintained tombstone.
//!
//! postcard is not self-describing: a field skipped when serialising
//! would shift every field after it. So frames are written through the
//! mirror types below (every field always present), never through
//! `Snapshot`'s own serde form (which skips empty fields for the JSON
//! API). The conversions destructure every field, so a field added to
//! `Snapshot`'s types is a compile error here, not a silent loss.
//! `Diagnostics` (many fields, changed often by other parts) is carried as
//! its JSON inside the frame: it is stored in keyframes and in a delta only
//! when it changed.

use crate::history::frame::{
    Frame, FrameBody, FrameBodyRef, FrameRef, ListOp, NoPatch, RecordedContainers, SampleMeta,
    SnapshotDelta, SocketPatch,
};
use crate::snapshot::{
    CapturedFlow, Interface, Process, Proto, Snapshot, Socket, SocketList, SocketState, TcpHealth,
    UnknownReason,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// The first byte of a version-2 block's decompressed payload. A
/// version-1 payload (JSON lines) starts with `{`.
pub const VERSION_BINARY: u8 = 2;

/// Why a binary frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame {index} of a history block is not valid: {source}")]
    Postcard {
        index: usize,
        #[source]
        source: postcard::Error,
    },
    #[error("frame {index} of a history block names string {id} of a table of {len}: the stored history is damaged")]
    String { index: usize, id: u32, len: usize },
    #[error("frame {index} of a history block has diagnostics that are not valid JSON: {source}")]
    Diagnostics {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("frame {index} of a history block is cut short: the stored history is damaged")]
    Short { index: usize },
}

/// The strings of the block being written: each is stored in the first
/// frame that uses it and named by its number after that.
#[derive(Debug, Default)]
pub struct Interner {
    ids: FxHashMap<String, u32>,
    fresh: Vec<String>,
}

impl Interner {
    /// Starts a new block: numbers start again from 0.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.fresh.clear();
    }

    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(s.to_owned(), i);
        self.fresh.push(s.to_owned());
        i
    }
}

/// The strings a frame may name: those of its block up to and with its
/// own, by number.
#[derive(Debug)]
pub struct StringTable<'a> {
    strings: &'a [String],
    /// The frame being read, for errors.
    index: usize,
}

impl StringTable<'_> {
    fn get(&self, id: u32) -> Result<String, WireError> {
        self.strings
            .get(id as usize)
            .cloned()
            .ok_or(WireError::String {
                index: self.index,
                id,
                len: self.strings.len(),
            })
    }

    fn opt(&self, id: Option<u32>) -> Result<Option<String>, WireError> {
        id.map(|i| self.get(i)).transpose()
    }
}

#[derive(Serialize, Deserialize)]
struct WireFrame {
    /// The strings this frame adds to the block's table (numbered on from
    /// the ones before). First, so a reader can take them without
    /// decoding the rest.
    strings: Vec<String>,
    meta: SampleMeta,
    containers: Option<RecordedContainers>,
    body: WireBody,
}

#[derive(Serialize, Deserialize)]
enum WireBody {
    Key(WireSnapshot),
    Delta(WireDelta),
}

#[derive(Serialize, Deserialize)]
struct WireSnapshot {
    taken_at_ms: u64,
    local_addresses: Vec<IpAddr>,
    interfaces: Vec<WireInterface>,
    processes: Vec<WireProcess>,
    sockets: Vec<WireSocket>,
    /// `Diagnostics` as JSON.
    diagnostics: Vec<u8>,
    captured: Vec<WireCaptured>,
}

#[derive(Serialize, Deserialize)]
struct WireDelta {
    taken_at_ms: u64,
    local_addresses: Option<Vec<IpAddr>>,
    interfaces: Option<Vec<WireInterface>>,
    diagnostics: Option<Vec<u8>>,
    processes: Vec<WireOp<WireProcess, NoPatch>>,
    sockets: Vec<WireOp<WireSocket, WirePatch>>,
    captured: Vec<WireCaptured>,
}

#[derive(Serialize, Deserialize)]
enum WireOp<T, P> {
    Copy(u32, u32),
    Patch(u32, P),
    /// Boxed (the same bytes): a decoded delta of 20k copies is not 20k
    /// sockets' worth of memory.
    New(Box<T>),
}

#[derive(Serialize, Deserialize)]
struct WireInterface {
    name: u32,
    addresses: Vec<IpAddr>,
}

#[derive(Serialize, Deserialize)]
struct WireProcess {
    pid: u32,
    start_time: Option<u64>,
    name: u32,
    cmdline: Vec<u32>,
    exe: Option<u32>,
    uid: Option<u32>,
    user: Option<u32>,
    ppid: Option<u32>,
    container_id: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct WireSocket {
    proto: Proto,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    state: SocketState,
    inode: u64,
    uid: Option<u32>,
    owners: Vec<u32>,
    unowned_reason: Option<UnknownReason>,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    /// (rtt_us, retransmits).
    tcp_health: Option<(Option<u32>, u32)>,
    closed: bool,
}

#[derive(Serialize, Deserialize)]
struct WirePatch {
    state: SocketState,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    tcp_health: Option<(Option<u32>, u32)>,
    closed: bool,
}

#[derive(Serialize, Deserialize)]
struct WireCaptured {
    proto: Proto,
    local: SocketAddr,
    remote: SocketAddr,
    interface: u32,
    sent: u64,
    received: u64,
}

fn health_to_wire(h: &Option<TcpHealth>) -> Option<(Option<u32>, u32)> {
    h.map(
        |TcpHealth {
             rtt_us,
             retransmits,
         }| (rtt_us, retransmits),
    )
}

fn health_from_wire(h: Option<(Option<u32>, u32)>) -> Option<TcpHealth> {
    h.map(|(rtt_us, retransmits)| TcpHealth {
        rtt_us,
        retransmits,
    })
}

fn socket_to_wire(s: &Socket) -> WireSocket {
    let Socket {
        proto,
        local,
        remote,
        state,
        inode,
        uid,
        owners,
        unowned_reason,
        bytes_sent,
        bytes_received,
        tcp_health,
        closed,
        // Not recorded: version-2 frames have no room for it, so a
        // recording credits a shared socket's bytes by the youngest-holder
        // rule (docs/recording-format.md).
        io_owner: _,
    } = s;
    WireSocket {
        proto: *proto,
        local: *local,
        remote: *remote,
        state: *state,
        inode: *inode,
        uid: *uid,
        owners: owners.to_vec(),
        unowned_reason: *unowned_reason,
        bytes_sent: *bytes_sent,
        bytes_received: *bytes_received,
        tcp_health: health_to_wire(tcp_health),
        closed: *closed,
    }
}

fn socket_from_wire(w: WireSocket) -> Socket {
    Socket {
        proto: w.proto,
        local: w.local,
        remote: w.remote,
        state: w.state,
        inode: w.inode,
        uid: w.uid,
        owners: w.owners.into(),
        unowned_reason: w.unowned_reason,
        bytes_sent: w.bytes_sent,
        bytes_received: w.bytes_received,
        tcp_health: health_from_wire(w.tcp_health),
        closed: w.closed,
        io_owner: None,
    }
}

fn patch_to_wire(p: &SocketPatch) -> WirePatch {
    let SocketPatch {
        state,
        bytes_sent,
        bytes_received,
        tcp_health,
        closed,
    } = p;
    WirePatch {
        state: *state,
        bytes_sent: *bytes_sent,
        bytes_received: *bytes_received,
        tcp_health: health_to_wire(tcp_health),
        closed: *closed,
    }
}

fn patch_from_wire(w: WirePatch) -> SocketPatch {
    SocketPatch {
        state: w.state,
        bytes_sent: w.bytes_sent,
        bytes_received: w.bytes_received,
        tcp_health: health_from_wire(w.tcp_health),
        closed: w.closed,
    }
}

fn process_to_wire(p: &Process, s: &mut Interner) -> WireProcess {
    let Process {
        pid,
        start_time,
        name,
        cmdline,
        exe,
        uid,
        user,
        ppid,
        container_id,
    } = p;
    WireProcess {
        pid: *pid,
        start_time: *start_time,
        name: s.id(name),
        cmdline: cmdline.iter().map(|a| s.id(a)).collect(),
        exe: exe.as_deref().map(|x| s.id(x)),
        uid: *uid,
        user: user.as_deref().map(|x| s.id(x)),
        ppid: *ppid,
        container_id: container_id.as_deref().map(|x| s.id(x)),
    }
}

fn process_from_wire(w: WireProcess, t: &StringTable) -> Result<Process, WireError> {
    Ok(Process {
        pid: w.pid,
        start_time: w.start_time,
        name: t.get(w.name)?,
        cmdline: w
            .cmdline
            .into_iter()
            .map(|i| t.get(i))
            .collect::<Result<_, _>>()?,
        exe: t.opt(w.exe)?,
        uid: w.uid,
        user: t.opt(w.user)?,
        ppid: w.ppid,
        container_id: t.opt(w.container_id)?,
    })
}

fn interface_to_wire(i: &Interface, s: &mut Interner) -> WireInterface {
    let Interface { name, addresses } = i;
    WireInterface {
        name: s.id(name),
        addresses: addresses.clone(),
    }
}

fn interface_from_wire(w: WireInterface, t: &StringTable) -> Result<Interface, WireError> {
    Ok(Interface {
        name: t.get(w.name)?,
        addresses: w.addresses,
    })
}

fn captured_to_wire(c: &CapturedFlow, s: &mut Interner) -> WireCaptured {
    let CapturedFlow {
        proto,
        local,
        remote,
        interface,
        sent,
        received,
    } = c;
    WireCaptured {
        proto: *proto,
        local: *local,
        remote: *remote,
        interface: s.id(interface),
        sent: *sent,
        received: *received,
    }
}

fn captured_from_wire(w: WireCaptured, t: &StringTable) -> Result<CapturedFlow, WireError> {
    Ok(CapturedFlow {
        proto: w.proto,
        local: w.local,
        remote: w.remote,
        interface: t.get(w.interface)?,
        sent: w.sent,
        received: w.received,
    })
}

fn diagnostics_json<T: Serialize>(d: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_vec(d).unwrap_or_default()
}

fn snapshot_to_wire(snap: &Snapshot, s: &mut Interner) -> WireSnapshot {
    let Snapshot {
        taken_at_ms,
        local_addresses,
        interfaces,
        processes,
        sockets,
        diagnostics,
        captured,
    } = snap;
    WireSnapshot {
        taken_at_ms: *taken_at_ms,
        local_addresses: local_addresses.clone(),
        interfaces: interfaces.iter().map(|i| interface_to_wire(i, s)).collect(),
        processes: processes.iter().map(|p| process_to_wire(p, s)).collect(),
        sockets: sockets.iter().map(socket_to_wire).collect(),
        diagnostics: diagnostics_json(diagnostics),
        captured: captured.iter().map(|c| captured_to_wire(c, s)).collect(),
    }
}

fn delta_to_wire(d: &SnapshotDelta, s: &mut Interner) -> WireDelta {
    let SnapshotDelta {
        taken_at_ms,
        local_addresses,
        interfaces,
        diagnostics,
        processes,
        sockets,
        captured,
    } = d;
    WireDelta {
        taken_at_ms: *taken_at_ms,
        local_addresses: local_addresses.clone(),
        interfaces: interfaces
            .as_ref()
            .map(|l| l.iter().map(|i| interface_to_wire(i, s)).collect()),
        diagnostics: diagnostics.as_ref().map(diagnostics_json),
        processes: processes
            .iter()
            .map(|op| match op {
                ListOp::Copy(f, n) => WireOp::Copy(*f, *n),
                ListOp::Patch(_, p) => match *p {},
                ListOp::New(p) => WireOp::New(Box::new(process_to_wire(p, s))),
            })
            .collect(),
        sockets: sockets
            .iter()
            .map(|op| match op {
                ListOp::Copy(f, n) => WireOp::Copy(*f, *n),
                ListOp::Patch(f, p) => WireOp::Patch(*f, patch_to_wire(p)),
                ListOp::New(x) => WireOp::New(Box::new(socket_to_wire(x))),
            })
            .collect(),
        captured: captured.iter().map(|c| captured_to_wire(c, s)).collect(),
    }
}

fn diagnostics_from<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    index: usize,
) -> Result<T, WireError> {
    serde_json::from_slice(bytes).map_err(|source| WireError::Diagnostics { index, source })
}

fn snapshot_from_wire(w: WireSnapshot, t: &StringTable) -> Result<Snapshot, WireError> {
    Ok(Snapshot {
        taken_at_ms: w.taken_at_ms,
        local_addresses: w.local_addresses,
        interfaces: w
            .interfaces
            .into_iter()
            .map(|i| interface_from_wire(i, t))
            .collect::<Result<_, _>>()?,
        processes: w
            .processes
            .into_iter()
            .map(|p| process_from_wire(p, t))
            .collect::<Result<_, _>>()?,
        sockets: w.sockets.into_iter().map(socket_from_wire).collect(),
        diagnostics: diagnostics_from(&w.diagnostics, t.index)?,
        captured: w
            .captured
            .into_iter()
            .map(|c| captured_from_wire(c, t))
            .collect::<Result<_, _>>()?,
    })
}

fn delta_from_wire(w: WireDelta, t: &StringTable) -> Result<SnapshotDelta, WireError> {
    Ok(SnapshotDelta {
        taken_at_ms: w.taken_at_ms,
        local_addresses: w.local_addresses,
        interfaces: w
            .interfaces
            .map(|l| {
                l.into_iter()
                    .map(|i| interface_from_wire(i, t))
                    .collect::<Result<_, _>>()
            })
            .transpose()?,
        diagnostics: w
            .diagnostics
            .map(|d| diagnostics_from(&d, t.index))
            .transpose()?,
        processes: w
            .processes
            .into_iter()
            .map(|op| {
                Ok(match op {
                    WireOp::Copy(f, n) => ListOp::Copy(f, n),
                    WireOp::Patch(_, p) => match p {},
                    WireOp::New(p) => ListOp::New(Box::new(process_from_wire(*p, t)?)),
                })
            })
            .collect::<Result<_, WireError>>()?,
        sockets: w
            .sockets
            .into_iter()
            .map(|op| match op {
                WireOp::Copy(f, n) => ListOp::Copy(f, n),
                WireOp::Patch(f, p) => ListOp::Patch(f, patch_from_wire(p)),
                WireOp::New(x) => ListOp::New(Box::new(socket_from_wire(*x))),
            })
            .collect(),
        captured: w
            .captured
            .into_iter()
            .map(|c| captured_from_wire(c, t))
            .collect::<Result<_, _>>()?,
    })
}

/// One frame as its block stores it: its length (a postcard varint)
/// and its postcard bytes. Its new strings go into `strings`.
pub fn encode(frame: &FrameRef<'_>, strings: &mut Interner) -> Vec<u8> {
    let body = match frame.body {
        FrameBodyRef::Key(s) => WireBody::Key(snapshot_to_wire(s, strings)),
        FrameBodyRef::Delta(d) => WireBody::Delta(delta_to_wire(d, strings)),
    };
    let wire = WireFrame {
        strings: std::mem::take(&mut strings.fresh),
        meta: frame.meta,
        containers: frame.containers.cloned(),
        body,
    };
    // Serialising plain data into a Vec cannot fail but for allocation.
    let bytes = postcard::to_stdvec(&wire).unwrap_or_default();
    let mut out = postcard::to_stdvec(&(bytes.len() as u32)).unwrap_or_default();
    out.extend_from_slice(&bytes);
    out
}

/// [`WireFrame`] of a keyframe borrowing its sample's sockets: the same
/// postcard bytes (fields in the same order, `&[T]` encodes as `Vec<T>`),
/// without a copy of every socket (at 100k sockets that copy was ~15 MB
/// for a frame of ~3 MB).
#[derive(Serialize)]
struct KeyFrameRef<'a> {
    strings: Vec<String>,
    meta: SampleMeta,
    containers: Option<&'a RecordedContainers>,
    body: KeyBodyRef<'a>,
}

/// [`WireBody`]`::Key` (variant 0).
#[derive(Serialize)]
enum KeyBodyRef<'a> {
    Key(WireSnapshotRef<'a>),
}

/// [`WireSnapshot`], borrowing.
#[derive(Serialize)]
struct WireSnapshotRef<'a> {
    taken_at_ms: u64,
    local_addresses: &'a [IpAddr],
    interfaces: Vec<WireInterface>,
    processes: Vec<WireProcess>,
    sockets: SocketsRef<'a>,
    diagnostics: Vec<u8>,
    captured: Vec<WireCaptured>,
}

/// A sample's sockets, each written as a [`WireSocket`] when serialised.
struct SocketsRef<'a>(&'a SocketList);

impl Serialize for SocketsRef<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.0.iter().map(WireSocketRef::of))
    }
}

/// [`WireSocket`], borrowing its owners.
#[derive(Serialize)]
struct WireSocketRef<'a> {
    proto: Proto,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    state: SocketState,
    inode: u64,
    uid: Option<u32>,
    owners: &'a [u32],
    unowned_reason: Option<UnknownReason>,
    bytes_sent: Option<u64>,
    bytes_received: Option<u64>,
    tcp_health: Option<(Option<u32>, u32)>,
    closed: bool,
}

impl<'a> WireSocketRef<'a> {
    fn of(s: &'a Socket) -> WireSocketRef<'a> {
        let Socket {
            proto,
            local,
            remote,
            state,
            inode,
            uid,
            owners,
            unowned_reason,
            bytes_sent,
            bytes_received,
            tcp_health,
            closed,
            io_owner: _, // not recorded, as in `socket_to_wire`
        } = s;
        WireSocketRef {
            proto: *proto,
            local: *local,
            remote: *remote,
            state: *state,
            inode: *inode,
            uid: *uid,
            owners,
            unowned_reason: *unowned_reason,
            bytes_sent: *bytes_sent,
            bytes_received: *bytes_received,
            tcp_health: health_to_wire(tcp_health),
            closed: *closed,
        }
    }
}

fn key_to_wire<'a>(frame: &FrameRef<'a>, snap: &'a Snapshot, s: &mut Interner) -> KeyFrameRef<'a> {
    let Snapshot {
        taken_at_ms,
        local_addresses,
        interfaces,
        processes,
        sockets,
        diagnostics,
        captured,
    } = snap;
    let body = WireSnapshotRef {
        taken_at_ms: *taken_at_ms,
        local_addresses,
        interfaces: interfaces.iter().map(|i| interface_to_wire(i, s)).collect(),
        processes: processes.iter().map(|p| process_to_wire(p, s)).collect(),
        sockets: SocketsRef(sockets),
        diagnostics: diagnostics_json(diagnostics),
        captured: captured.iter().map(|c| captured_to_wire(c, s)).collect(),
    };
    KeyFrameRef {
        strings: std::mem::take(&mut s.fresh),
        meta: frame.meta,
        containers: frame.containers,
        body: KeyBodyRef::Key(body),
    }
}

/// Writes one frame as [`encode`] makes it (its length, its postcard
/// bytes) into `out`, a keyframe straight from its sample: nothing of
/// the frame's size is held but what `out` keeps (a zstd encoder keeps
/// its window and the compressed bytes). The size is counted first
/// (postcard's size flavour, no buffer).
pub fn encode_into<W: std::io::Write>(
    frame: &FrameRef<'_>,
    strings: &mut Interner,
    mut out: W,
) -> std::io::Result<W> {
    let FrameBodyRef::Key(snap) = frame.body else {
        // Deltas are small: encoded whole.
        out.write_all(&encode(frame, strings))?;
        return Ok(out);
    };
    let wire = key_to_wire(frame, snap, strings);
    let io = |e: postcard::Error| std::io::Error::other(e);
    let len = postcard::experimental::serialized_size(&wire).map_err(io)?;
    let out = postcard::to_io(&(len as u32), out).map_err(io)?;
    postcard::to_io(&wire, out).map_err(io)
}

/// Splits frames (as [`encode`] wrote them, back to back) into each
/// frame's bytes.
pub fn split(raw: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    Ok(spans(raw)?.into_iter().map(|r| &raw[r]).collect())
}

/// Where each frame's bytes are in `raw` (frames back to back).
fn spans(raw: &[u8]) -> Result<Vec<std::ops::Range<usize>>, WireError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let index = out.len();
        let (len, rest) = postcard::take_from_bytes::<u32>(&raw[at..])
            .map_err(|source| WireError::Postcard { index, source })?;
        let len = len as usize;
        if rest.len() < len {
            return Err(WireError::Short { index });
        }
        let start = raw.len() - rest.len();
        out.push(start..start + len);
        at = start + len;
    }
    Ok(out)
}

/// A frame from its wire form, naming strings of `table`.
fn frame_from_wire(
    meta: SampleMeta,
    containers: Option<RecordedContainers>,
    body: WireBody,
    table: &StringTable<'_>,
) -> Result<Frame, WireError> {
    let body = match body {
        WireBody::Key(s) => FrameBody::Key(Box::new(snapshot_from_wire(s, table)?)),
        WireBody::Delta(d) => FrameBody::Delta(Box::new(delta_from_wire(d, table)?)),
    };
    Ok(Frame {
        meta,
        containers,
        body,
    })
}

/// Decodes frames `from..to` of a block's frames (from [`split`]); the
/// ones before `from` are read only for the strings they add.
pub fn decode_range(frames: &[&[u8]], from: usize, to: usize) -> Result<Vec<Frame>, WireError> {
    let mut strings: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(to.min(frames.len()).saturating_sub(from));
    for (index, bytes) in frames.iter().enumerate().take(to) {
        let bad = |source| WireError::Postcard { index, source };
        if index < from {
            let (fresh, _) = postcard::take_from_bytes::<Vec<String>>(bytes).map_err(bad)?;
            strings.extend(fresh);
            continue;
        }
        let WireFrame {
            strings: fresh,
            meta,
            containers,
            body,
        } = postcard::from_bytes(bytes).map_err(bad)?;
        strings.extend(fresh);
        let table = StringTable {
            strings: &strings,
            index,
        };
        out.push(frame_from_wire(meta, containers, body, &table)?);
    }
    Ok(out)
}

/// A block's frames decoded one at a time, when first asked for, and kept:
/// a seek decodes only the frames it applies (not the keyframe when it
/// starts from a checkpoint), and the next seek in the same block decodes
/// only the ones not decoded yet. Holds the decompressed bytes (about a
/// keyframe's postcard size plus the deltas) and the block's strings.
#[derive(Debug, Default)]
pub struct LazyFrames {
    raw: Vec<u8>,
    spans: Vec<std::ops::Range<usize>>,
    strings: Vec<String>,
    /// How many of `strings` frame `i` may name (those of frames `..=i`).
    known: Vec<usize>,
    frames: Vec<std::sync::OnceLock<Frame>>,
}

impl LazyFrames {
    /// Version-2 frames back to back in `raw` from `start` on: split, and
    /// the strings read; no frame decoded yet.
    pub fn new(raw: Vec<u8>, start: usize) -> Result<LazyFrames, WireError> {
        let payload = raw.get(start..).unwrap_or_default();
        let spans: Vec<_> = spans(payload)?
            .into_iter()
            .map(|r| r.start + start..r.end + start)
            .collect();
        let mut strings = Vec::new();
        let mut known = Vec::with_capacity(spans.len());
        for (index, r) in spans.iter().enumerate() {
            let (fresh, _) = postcard::take_from_bytes::<Vec<String>>(&raw[r.clone()])
                .map_err(|source| WireError::Postcard { index, source })?;
            strings.extend(fresh);
            known.push(strings.len());
        }
        let frames = spans.iter().map(|_| std::sync::OnceLock::new()).collect();
        Ok(LazyFrames {
            raw,
            spans,
            strings,
            known,
            frames,
        })
    }

    /// Frames decoded already (a version-1 block, parsed whole).
    pub fn decoded(frames: Vec<Frame>) -> LazyFrames {
        LazyFrames {
            frames: frames.into_iter().map(std::sync::OnceLock::from).collect(),
            ..LazyFrames::default()
        }
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `index`, decoded now if it was not yet.
    pub fn frame(&self, index: usize) -> Result<&Frame, WireError> {
        let cell = self.frames.get(index).ok_or(WireError::Short { index })?;
        if let Some(f) = cell.get() {
            return Ok(f);
        }
        let (Some(span), Some(&known)) = (self.spans.get(index), self.known.get(index)) else {
            return Err(WireError::Short { index });
        };
        let WireFrame {
            meta,
            containers,
            body,
            ..
        } = postcard::from_bytes(&self.raw[span.clone()])
            .map_err(|source| WireError::Postcard { index, source })?;
        let table = StringTable {
            strings: &self.strings[..known],
            index,
        };
        let frame = frame_from_wire(meta, containers, body, &table)?;
        // Another query may have decoded it meanwhile: the same frame.
        Ok(cell.get_or_init(|| frame))
    }

    /// Frames `from..to` (clipped to the block), decoded now if need be.
    pub fn range(&self, from: usize, to: usize) -> Result<Vec<&Frame>, WireError> {
        (from..to.min(self.len())).map(|i| self.frame(i)).collect()
    }

    /// The frames decoded so far.
    pub fn decoded_frames(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter_map(|c| c.get())
    }

    /// Bytes held apart from the decoded frames.
    pub fn raw_bytes(&self) -> usize {
        self.raw.capacity()
            + self
                .strings
                .iter()
                .map(|s| s.capacity() + 24)
                .sum::<usize>()
            + self.spans.len() * 40
    }
}
