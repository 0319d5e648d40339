//! The bytes of history: a block is the frames from one keyframe up to
//! the next, zstd-compressed as one unit. Version 2 (written now): a
//! version byte, then each frame in postcard with its length, the block's
//! strings stored once ([`crate::history::wire`]). Version 1 (read only,
//! recordings made before): one frame per line of JSON. The same block
//! bytes live in memory and in recording segments
//! (docs/recording-format.md), so recording costs no second encoding.

use crate::history::frame::{
    apply, apply_chain, apply_chain_last, BadDelta, Frame, FrameBody, FrameRef, SnapshotDelta,
};
use crate::history::wire::{self, Interner, LazyFrames, WireError, VERSION_BINARY};
use crate::snapshot::Snapshot;

/// zstd level: 3 is zstd's default, about 250 MB/s on one core; higher
/// levels cost more CPU per sample than the bytes they save are worth.
const ZSTD_LEVEL: i32 = 3;

/// Window of a frame compressed on its own ([`encode_compressed`]), 128
/// KiB: a streaming encoder does not know the frame's size, so at level 3
/// it sets up a 2 MiB window (and a decoder of the line one as big), ~3
/// MB of context for every sample, most of whose frames are a few KB.
/// Such lines live only until their block is sealed, which recompresses
/// them with the full window ([`recompress_block`]).
const LINE_WINDOW_LOG: u32 = 17;

/// Why stored history could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("a history block does not decompress: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("frame {index} of a history block is not valid: {source}")]
    Json {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("a history block is in format version {0}, which this procnet cannot read (it reads versions 1 and 2): replay it with the procnet that recorded it, or a newer one")]
    Version(u8),
    #[error("a history block does not start with a keyframe: the stored history is damaged")]
    NoKeyframe,
    #[error(transparent)]
    Delta(#[from] BadDelta),
}

/// One frame in block format version 2: its length and its postcard
/// bytes. The strings it adds are numbered in `strings`, the table of
/// the block being written (cleared at each keyframe).
pub fn encode_frame(frame: &FrameRef<'_>, strings: &mut Interner) -> Vec<u8> {
    wire::encode(frame, strings)
}

/// One frame as a line of JSON (block format version 1, no longer
/// written: kept to test that old recordings still read).
pub fn encode_frame_json(frame: &FrameRef<'_>) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    let mut line = serde_json::to_vec(frame).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Compresses encoded frames (from [`encode_frame`]) into one block of
/// version 2.
pub fn compress_block<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut raw = vec![VERSION_BINARY];
    for l in frames {
        raw.extend_from_slice(l);
    }
    compress_raw(&raw)
}

/// Compresses JSON lines into a block of version 1 (tests of old
/// recordings).
pub fn compress_block_json<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut raw = Vec::new();
    for l in lines {
        raw.extend_from_slice(l);
    }
    compress_raw(&raw)
}

fn compress_raw(raw: &[u8]) -> Vec<u8> {
    // Compressing into memory cannot fail but for allocation.
    zstd::bulk::compress(raw, ZSTD_LEVEL).unwrap_or_default()
}

/// One encoded frame compressed on its own: the open block keeps its
/// frames so (a keyframe of 100k sockets is ~4 MB, ~1 MB so).
pub fn compress_line(line: &[u8]) -> Vec<u8> {
    compress_raw(line)
}

/// One frame encoded and compressed on its own, as
/// `compress_line(&encode_frame(..))` but streamed: a keyframe is written
/// into the zstd encoder as it is serialised, so the peak is the
/// encoder's window and the compressed bytes, not the whole frame
/// uncompressed and a copy of its sockets.
pub fn encode_compressed(frame: &FrameRef<'_>, strings: &mut Interner) -> Vec<u8> {
    let streamed = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL)
        .and_then(|mut enc| enc.window_log(LINE_WINDOW_LOG).map(|()| enc))
        .and_then(|enc| wire::encode_into(frame, strings, enc))
        .and_then(|enc| enc.finish());
    // Writing into memory cannot fail but for allocation.
    streamed.unwrap_or_default()
}

/// Compresses frames compressed one by one ([`compress_line`],
/// [`encode_compressed`]) into one block of version 2, streamed: each is
/// decompressed into the block's encoder, never all of them at once.
pub fn recompress_block<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, CodecError> {
    use std::io::Write;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(CodecError::Zstd)?;
    enc.write_all(&[VERSION_BINARY]).map_err(CodecError::Zstd)?;
    for l in lines {
        zstd::stream::copy_decode(l, &mut enc).map_err(CodecError::Zstd)?;
    }
    enc.finish().map_err(CodecError::Zstd)
}

/// The encoded frames compressed one by one ([`compress_line`]), back to
/// back (without the block's version byte).
pub fn decompress_lines<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, CodecError> {
    let mut raw = Vec::new();
    for l in lines {
        raw.extend(zstd::stream::decode_all(l).map_err(CodecError::Zstd)?);
    }
    Ok(raw)
}

/// The frames of a compressed block, of either version.
pub fn decompress_block(block: &[u8]) -> Result<Vec<Frame>, CodecError> {
    decompress_block_range(block, 0, usize::MAX)
}

/// Frames `from..to` of a compressed block, of either version.
pub fn decompress_block_range(
    block: &[u8],
    from: usize,
    to: usize,
) -> Result<Vec<Frame>, CodecError> {
    let raw = zstd::stream::decode_all(block).map_err(CodecError::Zstd)?;
    match raw.first() {
        None => Ok(Vec::new()),
        Some(&VERSION_BINARY) => decode_frames(&raw[1..], from, to),
        Some(b'{') => parse_lines_range(&raw, from, to),
        Some(&v) => Err(CodecError::Version(v)),
    }
}

/// Decodes frames `from..to` of version-2 frames back to back (a sealed
/// block's payload after its version byte, or the open block's frames).
pub fn decode_frames(raw: &[u8], from: usize, to: usize) -> Result<Vec<Frame>, CodecError> {
    let frames = wire::split(raw)?;
    Ok(wire::decode_range(&frames, from, to)?)
}

/// Parses frames `from..to` from JSON lines (version 1): the lines
/// before `from` are skipped unparsed.
pub fn parse_lines_range(raw: &[u8], from: usize, to: usize) -> Result<Vec<Frame>, CodecError> {
    raw.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .take(to)
        .skip(from)
        .map(|(index, l)| {
            serde_json::from_slice(l).map_err(|source| CodecError::Json { index, source })
        })
        .collect()
}

/// Rebuilds the samples of a block's frames, in order. The first frame
/// must be a keyframe, unless `before` (the sample just before the block)
/// is given.
pub fn rebuild(frames: &[Frame], before: Option<&Snapshot>) -> Result<Vec<Snapshot>, CodecError> {
    let mut out: Vec<Snapshot> = Vec::with_capacity(frames.len());
    for f in frames {
        let snap = match &f.body {
            FrameBody::Key(s) => (**s).clone(),
            FrameBody::Delta(d) => {
                let prev = out.last().or(before).ok_or(CodecError::NoKeyframe)?;
                apply(prev, d)?
            }
        };
        out.push(snap);
    }
    Ok(out)
}

/// Rebuilds only the samples up to index `upto` (inclusive), keeping the
/// last two: what `?at=` needs (the sample, and the one before for rates).
/// The samples in between are never built ([`apply_chain`]).
pub fn rebuild_upto(
    frames: &[Frame],
    upto: usize,
) -> Result<(Option<Snapshot>, Snapshot), CodecError> {
    let refs: Vec<&Frame> = frames.iter().collect();
    rebuild_upto_refs(&refs, upto)
}

/// [`rebuild_upto`] of frames held by reference (a [`LazyFrames`]).
pub fn rebuild_upto_refs(
    frames: &[&Frame],
    upto: usize,
) -> Result<(Option<Snapshot>, Snapshot), CodecError> {
    let frames = &frames[..frames.len().min(upto.saturating_add(1))];
    let (start, base, deltas) = chain_of(frames)?;
    let (prev, cur) = apply_chain(base, &deltas)?;
    // A keyframe's sample before is the last of the frames before it.
    let prev = match (prev, start) {
        (Some(p), _) => Some(p),
        (None, 0) => None,
        (None, s) => Some(rebuild_last_refs(&frames[..s])?),
    };
    Ok((prev, cur))
}

/// The last sample of `frames` alone (one sample built, not two).
pub fn rebuild_last_refs(frames: &[&Frame]) -> Result<Snapshot, CodecError> {
    let (_, base, deltas) = chain_of(frames)?;
    Ok(apply_chain_last(base, &deltas)?)
}

/// The last keyframe of `frames` (its index) and the deltas after it.
fn chain_of<'a>(
    frames: &[&'a Frame],
) -> Result<(usize, &'a Snapshot, Vec<&'a SnapshotDelta>), CodecError> {
    // The chain starts at the last keyframe (a block has one, first).
    let start = frames
        .iter()
        .rposition(|f| matches!(f.body, FrameBody::Key(_)))
        .ok_or(CodecError::NoKeyframe)?;
    let FrameBody::Key(base) = &frames[start].body else {
        return Err(CodecError::NoKeyframe);
    };
    let deltas = frames[start + 1..]
        .iter()
        .map(|f| match &f.body {
            FrameBody::Delta(d) => Ok(&**d),
            FrameBody::Key(_) => Err(CodecError::NoKeyframe),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((start, base, deltas))
}

/// A compressed block of either version, decompressed, for decoding its
/// frames one at a time ([`LazyFrames`]; a version-1 block is parsed
/// whole).
pub fn lazy_block(block: &[u8]) -> Result<LazyFrames, CodecError> {
    let raw = zstd::stream::decode_all(block).map_err(CodecError::Zstd)?;
    match raw.first() {
        None => Ok(LazyFrames::default()),
        Some(&VERSION_BINARY) => Ok(LazyFrames::new(raw, 1)?),
        Some(b'{') => Ok(LazyFrames::decoded(parse_lines_range(&raw, 0, usize::MAX)?)),
        Some(&v) => Err(CodecError::Version(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::frame::{delta, SampleMeta};
    use crate::snapshot::{Interface, Process, Proto, Socket, SocketState};

    fn sample(t: u64, bytes: u64) -> Snapshot {
        Snapshot {
            taken_at_ms: t,
            sockets: vec![Socket {
                proto: Proto::Tcp,
                local: "127.0.0.1:1".parse().unwrap(),
                remote: Some("127.0.0.1:2".parse().unwrap()),
                state: SocketState::Established,
                inode: 5,
                uid: None,
                owners: smallvec::smallvec![3],
                unowned_reason: None,
                bytes_sent: Some(bytes),
                bytes_received: None,
                tcp_health: None,
                closed: false,
                io_owner: None,
            }]
            .into(),
            ..Snapshot::default()
        }
    }

    fn meta(t: u64) -> SampleMeta {
        SampleMeta {
            at_ms: t,
            seq: t,
            edges: 1,
            bytes_total: 0,
        }
    }

    fn with_processes(mut s: Snapshot, i: u64) -> Snapshot {
        // The same strings in every sample, and one new one a sample:
        // the block's table is shared by the frames.
        s.processes = (0..3)
            .map(|p| Process {
                pid: 10 + p,
                start_time: Some(7),
                name: "nginx".into(),
                cmdline: vec![
                    "nginx".into(),
                    "-g".into(),
                    format!("worker {}", i + p as u64),
                ],
                exe: Some("/usr/sbin/nginx".into()),
                user: (p == 0).then(|| "www-data".into()),
                ..Process::default()
            })
            .collect();
        s.interfaces = vec![Interface {
            name: "lo".into(),
            addresses: vec!["127.0.0.1".parse().unwrap()],
        }];
        s.diagnostics.warnings = vec![format!("warning {i}")];
        s
    }

    /// The frames of `samples` (a keyframe, then deltas).
    fn frames_of(samples: &[Snapshot]) -> Vec<Frame> {
        samples
            .iter()
            .enumerate()
            .map(|(i, s)| Frame {
                meta: meta(s.taken_at_ms),
                containers: None,
                body: if i == 0 {
                    FrameBody::Key(Box::new(s.clone()))
                } else {
                    FrameBody::Delta(Box::new(delta(&samples[i - 1], s)))
                },
            })
            .collect()
    }

    fn samples() -> Vec<Snapshot> {
        (0..5)
            .map(|i| with_processes(sample(i * 1000, i * 10), i))
            .collect()
    }

    #[test]
    fn a_block_round_trips() {
        let samples = samples();
        let frames = frames_of(&samples);
        let mut strings = Interner::default();
        let lines: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| encode_frame(&f.borrowed(), &mut strings))
            .collect();
        let block = compress_block(lines.iter().map(|l| l.as_slice()));
        let back = decompress_block(&block).unwrap();
        assert_eq!(back, frames);
        assert_eq!(rebuild(&back, None).unwrap(), samples);
        let (prev, cur) = rebuild_upto(&back, 2).unwrap();
        assert_eq!(prev.as_ref(), Some(&samples[1]));
        assert_eq!(cur, samples[2]);
        // A range from the middle reads the strings of the frames before.
        let tail = decompress_block_range(&block, 3, 5).unwrap();
        assert_eq!(tail, frames[3..]);
        // The open block's frames (compressed one by one) decode the same.
        let open: Vec<Vec<u8>> = lines.iter().map(|l| compress_line(l)).collect();
        let raw = decompress_lines(open.iter().map(|l| l.as_slice())).unwrap();
        assert_eq!(decode_frames(&raw, 2, 4).unwrap(), frames[2..4]);
    }

    #[test]
    fn a_streamed_frame_is_the_same_bytes_and_block() {
        let samples = samples();
        let frames = frames_of(&samples);
        let (mut whole, mut streamed) = (Interner::default(), Interner::default());
        let mut lines = Vec::new();
        for f in &frames {
            let plain = encode_frame(&f.borrowed(), &mut whole);
            let line = encode_compressed(&f.borrowed(), &mut streamed);
            assert_eq!(decompress_lines([line.as_slice()]).unwrap(), plain);
            lines.push(line);
        }
        let block = recompress_block(lines.iter().map(|l| l.as_slice())).unwrap();
        assert_eq!(decompress_block(&block).unwrap(), frames);
        let lazy = lazy_block(&block).unwrap();
        assert_eq!(lazy.len(), frames.len());
        // Frames decoded out of order, the keyframe last, are the same.
        for i in (0..frames.len()).rev() {
            assert_eq!(lazy.frame(i).unwrap(), &frames[i]);
        }
        assert!(recompress_block([b"not zstd".as_slice()]).is_err());
    }

    #[test]
    fn strings_are_stored_once_a_block() {
        let samples = samples();
        let frames = frames_of(&samples);
        let mut strings = Interner::default();
        let key = encode_frame(&frames[0].borrowed(), &mut strings);
        let json = encode_frame_json(&frames[0].borrowed());
        assert!(
            key.len() * 2 < json.len(),
            "{} vs {}",
            key.len(),
            json.len()
        );
        let count =
            |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(
            count(&key, b"/usr/sbin/nginx"),
            1,
            "three processes, one string"
        );
        assert_eq!(count(&key, b"nginx"), 2, "the name and the path");
    }

    #[test]
    fn a_version_1_block_still_reads() {
        let samples = samples();
        let frames = frames_of(&samples);
        let lines: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| encode_frame_json(&f.borrowed()))
            .collect();
        let block = compress_block_json(lines.iter().map(|l| l.as_slice()));
        let back = decompress_block(&block).unwrap();
        assert_eq!(rebuild(&back, None).unwrap(), samples);
        assert_eq!(decompress_block_range(&block, 2, 3).unwrap(), frames[2..3]);
    }

    #[test]
    fn an_unknown_version_is_named() {
        let block = compress_raw(&[7, 1, 2, 3]);
        let e = decompress_block(&block).unwrap_err();
        assert!(matches!(e, CodecError::Version(7)), "{e}");
        assert!(e.to_string().contains("version 7"), "{e}");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decompress_block(b"not zstd").is_err());
        let block = compress_block_json([b"{\"x\":1}\n".as_slice()]);
        assert!(matches!(
            decompress_block(&block),
            Err(CodecError::Json { index: 0, .. })
        ));
        // A version-2 block cut short, and one naming a string it lacks.
        let mut strings = Interner::default();
        let frames = frames_of(&samples());
        let line = encode_frame(&frames[0].borrowed(), &mut strings);
        let block = compress_block([&line[..line.len() - 3]]);
        assert!(decompress_block(&block).is_err());
        let delta = encode_frame(&frames[1].borrowed(), &mut strings);
        let block = compress_block([delta.as_slice()]);
        assert!(decompress_block(&block).is_err());
    }
}
