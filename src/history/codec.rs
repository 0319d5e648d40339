//! The bytes of history: a frame is one line of JSON, a block is the
//! frames from one keyframe up to the next, zstd-compressed as one unit.
//! The same block bytes live in memory and in recording segments
//! (docs/recording-format.md), so recording costs no second encoding.

use crate::history::frame::{apply, BadDelta, Frame, FrameBody, FrameRef};
use crate::snapshot::Snapshot;

/// zstd level: 3 is zstd's default, about 250 MB/s on one core; higher
/// levels cost more CPU per sample than the bytes they save are worth.
const ZSTD_LEVEL: i32 = 3;

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
    #[error("a history block does not start with a keyframe: the stored history is damaged")]
    NoKeyframe,
    #[error(transparent)]
    Delta(#[from] BadDelta),
}

/// One frame as a line of JSON (with its newline).
pub fn encode_frame(frame: &FrameRef<'_>) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    let mut line = serde_json::to_vec(frame).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Compresses encoded frames (from [`encode_frame`]) into one block.
pub fn compress_block<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut raw = Vec::new();
    for l in lines {
        raw.extend_from_slice(l);
    }
    // Compressing into memory cannot fail but for allocation.
    zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap_or_default()
}

/// One encoded frame compressed on its own: the open block keeps its
/// frames so (a keyframe of 100k sockets is ~25 MB of JSON, ~2 MB so).
pub fn compress_line(line: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(line, ZSTD_LEVEL).unwrap_or_default()
}

/// The JSON lines of frames compressed one by one ([`compress_line`]).
pub fn decompress_lines<'a>(
    lines: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, CodecError> {
    let mut raw = Vec::new();
    for l in lines {
        raw.extend(zstd::stream::decode_all(l).map_err(CodecError::Zstd)?);
    }
    Ok(raw)
}

/// The frames of a compressed block.
pub fn decompress_block(block: &[u8]) -> Result<Vec<Frame>, CodecError> {
    let raw = zstd::stream::decode_all(block).map_err(CodecError::Zstd)?;
    parse_lines(&raw)
}

/// Parses frames from JSON lines.
pub fn parse_lines(raw: &[u8]) -> Result<Vec<Frame>, CodecError> {
    parse_lines_upto(raw, usize::MAX)
}

/// Parses the first `n` frames only: a query for a moment early in a
/// block does not pay for the frames after it.
pub fn parse_lines_upto(raw: &[u8], n: usize) -> Result<Vec<Frame>, CodecError> {
    parse_lines_range(raw, 0, n)
}

/// Parses frames `from..to` only: the lines before `from` are skipped
/// unparsed (a query from a checkpoint does not parse the keyframe).
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
pub fn rebuild_upto(
    frames: &[Frame],
    upto: usize,
) -> Result<(Option<Snapshot>, Snapshot), CodecError> {
    let mut prev: Option<Snapshot> = None;
    let mut cur: Option<Snapshot> = None;
    for f in frames.iter().take(upto + 1) {
        let snap = match &f.body {
            FrameBody::Key(s) => (**s).clone(),
            FrameBody::Delta(d) => apply(cur.as_ref().ok_or(CodecError::NoKeyframe)?, d)?,
        };
        prev = cur.replace(snap);
    }
    let cur = cur.ok_or(CodecError::NoKeyframe)?;
    Ok((prev, cur))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::frame::{delta, SampleMeta};
    use crate::snapshot::{Proto, Socket, SocketState};

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
                owners: vec![3],
                unowned_reason: None,
                bytes_sent: Some(bytes),
                bytes_received: None,
                tcp_health: None,
                closed: false,
            }],
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

    #[test]
    fn a_block_round_trips() {
        let samples: Vec<Snapshot> = (0..5).map(|i| sample(i * 1000, i * 10)).collect();
        let mut lines = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let body = if i == 0 {
                FrameBody::Key(Box::new(s.clone()))
            } else {
                FrameBody::Delta(Box::new(delta(&samples[i - 1], s)))
            };
            let frame = Frame {
                meta: meta(s.taken_at_ms),
                containers: None,
                body,
            };
            lines.push(encode_frame(&frame.borrowed()));
        }
        let block = compress_block(lines.iter().map(|l| l.as_slice()));
        let frames = decompress_block(&block).unwrap();
        assert_eq!(rebuild(&frames, None).unwrap(), samples);
        let (prev, cur) = rebuild_upto(&frames, 2).unwrap();
        assert_eq!(prev.as_ref(), Some(&samples[1]));
        assert_eq!(cur, samples[2]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decompress_block(b"not zstd").is_err());
        let block = compress_block([b"{\"x\":1}\n".as_slice()]);
        assert!(matches!(
            decompress_block(&block),
            Err(CodecError::Json { index: 0, .. })
        ));
    }
}
