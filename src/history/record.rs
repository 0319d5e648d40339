//! Recordings on disk (`--record DIR`): hourly append-only segment files
//! of the same compressed blocks history keeps in memory, each block with
//! a checksummed header, plus a small time index per segment. The format
//! is in docs/recording-format.md.
//!
//! Crash-safe by construction: a block is written whole with one write
//! and synced; a crash mid-write leaves a torn last block, which the
//! reader detects (short, bad magic or checksum) and skips, saying so,
//! with every block before it intact. A writer reopening a segment cuts a
//! torn tail off before it appends.

use crate::history::codec::{decompress_block, rebuild, CodecError};
use crate::history::frame::{Frame, RecordedContainers};
use crate::history::store::SealedBlock;
use crate::snapshot::Snapshot;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"PNRSEG1\n";
/// The first bytes of every block header.
pub const BLOCK_MAGIC: &[u8; 4] = b"PNBK";
/// Block header: magic, payload length, CRC-32 of the payload, sample
/// count (u32 little-endian each), first and last sample time (u64 LE ms).
pub const BLOCK_HEADER_LEN: usize = 32;
/// A segment holds the blocks that start in one UTC hour.
pub const SEGMENT_SPAN_MS: u64 = 3_600_000;
/// No block is larger: a longer length field is a torn or foreign file.
const MAX_BLOCK_BYTES: u32 = 1 << 30;

/// Why a recording could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording directory {dir}: {source}; give a directory procnet can create and write (--record DIR)")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir} holds no procnet recording (no procnet-*.seg files); record one with `procnet serve --record {dir}`")]
    Empty { dir: PathBuf },
    #[error("recording file {path}: {source}")]
    Codec {
        path: PathBuf,
        #[source]
        source: CodecError,
    },
}

fn segment_name(hour_start_s: u64) -> String {
    format!("procnet-{hour_start_s}.seg")
}

fn index_path(segment: &Path) -> PathBuf {
    segment.with_extension("idx")
}

/// The hour a segment file starts at, from its name.
fn segment_hour(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("procnet-")?
        .strip_suffix(".seg")?
        .parse()
        .ok()
}

/// The segment files of `dir`, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<PathBuf>, RecordError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RecordError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut segs: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter_map(|p| segment_hour(&p).map(|h| (h, p)))
        .collect();
    segs.sort();
    Ok(segs.into_iter().map(|(_, p)| p).collect())
}

fn header(block: &SealedBlock) -> [u8; BLOCK_HEADER_LEN] {
    let mut h = [0u8; BLOCK_HEADER_LEN];
    h[0..4].copy_from_slice(BLOCK_MAGIC);
    h[4..8].copy_from_slice(&(block.data.len() as u32).to_le_bytes());
    h[8..12].copy_from_slice(&crc32fast::hash(&block.data).to_le_bytes());
    h[12..16].copy_from_slice(&(block.metas.len() as u32).to_le_bytes());
    h[16..24].copy_from_slice(&block.first_ms().to_le_bytes());
    h[24..32].copy_from_slice(&block.last_ms().to_le_bytes());
    h
}

/// A parsed block header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub len: u32,
    pub crc: u32,
    pub samples: u32,
    pub first_ms: u64,
    pub last_ms: u64,
}

fn parse_header(h: &[u8; BLOCK_HEADER_LEN]) -> Option<BlockHeader> {
    if &h[0..4] != BLOCK_MAGIC {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let header = BlockHeader {
        len: u32_at(4),
        crc: u32_at(8),
        samples: u32_at(12),
        first_ms: u64_at(16),
        last_ms: u64_at(24),
    };
    (header.len <= MAX_BLOCK_BYTES).then_some(header)
}

/// Writes blocks into hourly segments of a directory.
pub struct Recorder {
    dir: PathBuf,
    retention: Duration,
    current: Option<(u64, File, File)>,
}

impl Recorder {
    /// Creates `dir` if needed. Nothing is written until the first block.
    pub fn open(dir: &Path, retention: Duration) -> Result<Recorder, RecordError> {
        std::fs::create_dir_all(dir).map_err(|source| RecordError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        // Fail now, not an hour into the run, when the directory is not writable.
        let probe = dir.join(".procnet-write-test");
        std::fs::write(&probe, b"").map_err(|source| RecordError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(Recorder {
            dir: dir.to_path_buf(),
            retention,
            current: None,
        })
    }

    /// Appends one block, whole, and syncs it. `now_ms` decides which
    /// old segments the retention removes.
    pub fn append(&mut self, block: &SealedBlock, now_ms: u64) -> Result<(), RecordError> {
        let hour = block.first_ms() / SEGMENT_SPAN_MS * (SEGMENT_SPAN_MS / 1000);
        if self.current.as_ref().map(|c| c.0) != Some(hour) {
            self.current = None;
            let path = self.dir.join(segment_name(hour));
            let (seg, idx) = open_segment(&path)?;
            self.current = Some((hour, seg, idx));
            self.expire(now_ms);
        }
        let path = self.dir.join(segment_name(hour));
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        let Some((_, seg, idx)) = self.current.as_mut() else {
            return Ok(());
        };
        let offset = seg.seek(SeekFrom::End(0)).map_err(io)?;
        let mut bytes = Vec::with_capacity(BLOCK_HEADER_LEN + block.data.len());
        bytes.extend_from_slice(&header(block));
        bytes.extend_from_slice(&block.data);
        seg.write_all(&bytes).map_err(io)?;
        seg.sync_data().map_err(io)?;
        let mut entry = [0u8; 24];
        entry[0..8].copy_from_slice(&block.first_ms().to_le_bytes());
        entry[8..16].copy_from_slice(&block.last_ms().to_le_bytes());
        entry[16..24].copy_from_slice(&offset.to_le_bytes());
        idx.write_all(&entry).map_err(io)?;
        Ok(())
    }

    /// Removes segments that ended longer than the retention ago.
    fn expire(&self, now_ms: u64) {
        let Ok(segs) = segments(&self.dir) else {
            return;
        };
        let keep_after_s = now_ms.saturating_sub(self.retention.as_millis() as u64) / 1000;
        for p in segs {
            let Some(hour) = segment_hour(&p) else {
                continue;
            };
            if hour + SEGMENT_SPAN_MS / 1000 < keep_after_s {
                match std::fs::remove_file(&p) {
                    Ok(()) => log::info!(
                        "recording: removed {} (older than --record-retention)",
                        p.display()
                    ),
                    Err(e) => log::warn!("recording: cannot remove {}: {e}", p.display()),
                }
                let _ = std::fs::remove_file(index_path(&p));
            }
        }
    }
}

/// Opens a segment for appending: a new one gets its magic; an existing
/// one is cut back to its last whole block (a crash may have torn it).
fn open_segment(path: &Path) -> Result<(File, File), RecordError> {
    let io = |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut seg = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    let len = seg.metadata().map_err(io)?.len();
    if len == 0 {
        seg.write_all(SEGMENT_MAGIC).map_err(io)?;
    } else {
        let (good, _, torn) = scan(path)?;
        if torn.is_some() {
            log::warn!(
                "recording {}: cutting a torn last block off at byte {good} before appending",
                path.display()
            );
            seg.set_len(good).map_err(io)?;
        }
    }
    let idx = OpenOptions::new()
        .create(true)
        .append(true)
        .open(index_path(path))
        .map_err(io)?;
    Ok((seg, idx))
}

/// Reads a segment's block headers: the end of the last whole block, the
/// headers, and why reading stopped early (a torn block), if it did.
fn scan(path: &Path) -> Result<(u64, Vec<BlockHeader>, Option<String>), RecordError> {
    let mut reader = SegmentReader::open(path)?;
    let mut headers = Vec::new();
    loop {
        match reader.next_raw() {
            Ok(Some((h, _))) => headers.push(h),
            Ok(None) => return Ok((reader.good, headers, None)),
            Err(torn) => return Ok((reader.good, headers, Some(torn))),
        }
    }
}

/// Reads one segment's blocks in order.
struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    /// The end of the last whole block read.
    good: u64,
}

impl SegmentReader {
    fn open(path: &Path) -> Result<SegmentReader, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(SegmentReader {
            path: path.to_path_buf(),
            file: BufReader::new(file),
            good: 0,
        })
    }

    /// The next whole block; `Ok(None)` at a clean end; `Err(why)` at a
    /// torn or foreign block (nothing after it is read).
    fn next_raw(&mut self) -> Result<Option<(BlockHeader, Vec<u8>)>, String> {
        if self.good == 0 {
            let mut magic = [0u8; 8];
            match read_full(&mut self.file, &mut magic) {
                Ok(0) => return Ok(None),
                Ok(8) if &magic == SEGMENT_MAGIC => self.good = 8,
                Ok(_) => return Err("not a procnet segment (bad magic)".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut h = [0u8; BLOCK_HEADER_LEN];
        let n = read_full(&mut self.file, &mut h).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        let at = self.good;
        if n < BLOCK_HEADER_LEN {
            return Err(format!(
                "the block at byte {at} is torn (its header is cut short)"
            ));
        }
        let header = parse_header(&h)
            .ok_or_else(|| format!("the block at byte {at} is torn (bad header)"))?;
        let mut data = vec![0u8; header.len as usize];
        let got = read_full(&mut self.file, &mut data).map_err(|e| e.to_string())?;
        if got < data.len() {
            return Err(format!(
                "the block at byte {at} is torn ({got} of its {} bytes)",
                data.len()
            ));
        }
        if crc32fast::hash(&data) != header.crc {
            return Err(format!(
                "the block at byte {at} is torn (checksum mismatch)"
            ));
        }
        self.good += (BLOCK_HEADER_LEN + data.len()) as u64;
        Ok(Some((header, data)))
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One block of a recording, decoded.
pub struct ReadBlock {
    pub block: Arc<SealedBlock>,
    pub frames: Vec<Frame>,
}

impl ReadBlock {
    /// The block's samples, rebuilt, with the containers each was built with.
    pub fn samples(&self) -> Result<Vec<(Snapshot, RecordedContainers)>, CodecError> {
        let snaps = rebuild(&self.frames, None)?;
        let mut containers = RecordedContainers::default();
        Ok(snaps
            .into_iter()
            .zip(&self.frames)
            .map(|(s, f)| {
                if let Some(c) = &f.containers {
                    containers = c.clone();
                }
                (s, containers.clone())
            })
            .collect())
    }
}

/// Reads a whole recording, block by block, oldest first. Torn blocks
/// end their segment; what was skipped is in [`RecordingReader::warnings`].
pub struct RecordingReader {
    pending: std::vec::IntoIter<PathBuf>,
    current: Option<SegmentReader>,
    warnings: Vec<String>,
}

impl RecordingReader {
    pub fn open(dir: &Path) -> Result<RecordingReader, RecordError> {
        let segs = segments(dir)?;
        if segs.is_empty() {
            return Err(RecordError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        Ok(RecordingReader {
            pending: segs.into_iter(),
            current: None,
            warnings: Vec::new(),
        })
    }

    /// What was skipped so far (torn blocks), one sentence each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The next block, `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<ReadBlock>, RecordError> {
        loop {
            if self.current.is_none() {
                let Some(p) = self.pending.next() else {
                    return Ok(None);
                };
                self.current = Some(SegmentReader::open(&p)?);
            }
            let Some(seg) = self.current.as_mut() else {
                continue;
            };
            match seg.next_raw() {
                Ok(Some((_, data))) => {
                    let frames = decompress_block(&data).map_err(|source| RecordError::Codec {
                        path: seg.path.clone(),
                        source,
                    })?;
                    let metas = frames.iter().map(|f| f.meta).collect();
                    return Ok(Some(ReadBlock {
                        block: Arc::new(SealedBlock { metas, data }),
                        frames,
                    }));
                }
                Ok(None) => self.current = None,
                Err(why) => {
                    let w = format!(
                        "recording {}: {why}; replaying everything before it",
                        seg.path.display()
                    );
                    log::warn!("{w}");
                    self.warnings.push(w);
                    self.current = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::codec::{
        compress_block, compress_block_json, encode_frame, encode_frame_json,
    };
    use crate::history::frame::{FrameBody, SampleMeta};
    use crate::history::wire::Interner;

    fn block(t: u64) -> SealedBlock {
        let meta = SampleMeta {
            at_ms: t,
            seq: t,
            edges: 0,
            bytes_total: 0,
        };
        let frame = Frame {
            meta,
            containers: None,
            body: FrameBody::Key(Box::new(Snapshot {
                taken_at_ms: t,
                ..Snapshot::default()
            })),
        };
        let line = encode_frame(&frame.borrowed(), &mut Interner::default());
        SealedBlock {
            metas: vec![meta],
            data: compress_block([line.as_slice()]),
        }
    }

    fn read_all(dir: &Path) -> (Vec<u64>, Vec<String>) {
        let mut r = RecordingReader::open(dir).unwrap();
        let mut times = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            times.push(b.block.first_ms());
        }
        (times, r.warnings().to_vec())
    }

    #[test]
    fn blocks_come_back_in_order_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::open(dir.path(), Duration::from_secs(7 * 86_400)).unwrap();
        let times = [1_000, 60_000, SEGMENT_SPAN_MS + 5, SEGMENT_SPAN_MS * 2];
        for t in times {
            rec.append(&block(t), t).unwrap();
        }
        assert_eq!(segments(dir.path()).unwrap().len(), 3);
        assert_eq!(read_all(dir.path()), (times.to_vec(), vec![]));
    }

    #[test]
    fn a_recording_of_block_format_version_1_still_replays() {
        // A segment as procnet wrote it before version 2 (JSON lines),
        // then a block of version 2 appended after an upgrade.
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::open(dir.path(), Duration::from_secs(86_400)).unwrap();
        let old = block(1_000);
        let frame = Frame {
            meta: old.metas[0],
            containers: Some(RecordedContainers {
                published: vec![],
                names: vec![("abc".into(), "web".into())],
            }),
            body: FrameBody::Key(Box::new(Snapshot {
                taken_at_ms: 1_000,
                processes: vec![crate::snapshot::Process {
                    pid: 4,
                    name: "nginx".into(),
                    cmdline: vec!["nginx".into(), "-g".into()],
                    ..Default::default()
                }],
                ..Snapshot::default()
            })),
        };
        let v1 = SealedBlock {
            metas: old.metas.clone(),
            data: compress_block_json([encode_frame_json(&frame.borrowed()).as_slice()]),
        };
        rec.append(&v1, 1_000).unwrap();
        rec.append(&block(2_000), 2_000).unwrap();
        let mut r = RecordingReader::open(dir.path()).unwrap();
        let first = r.next_block().unwrap().unwrap();
        assert_eq!(first.frames, vec![frame]);
        let second = r.next_block().unwrap().unwrap();
        assert_eq!(second.block.first_ms(), 2_000);
        assert!(r.next_block().unwrap().is_none());
        assert!(r.warnings().is_empty());
    }

    #[test]
    fn a_torn_last_block_is_skipped_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::open(dir.path(), Duration::from_secs(86_400)).unwrap();
        for t in [1_000, 2_000, 3_000] {
            rec.append(&block(t), t).unwrap();
        }
        drop(rec);
        let seg = &segments(dir.path()).unwrap()[0];
        let len = std::fs::metadata(seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(seg).unwrap();
        f.set_len(len - 5).unwrap();
        let (times, warnings) = read_all(dir.path());
        assert_eq!(times, vec![1_000, 2_000]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("torn"), "{warnings:?}");
        // A writer appending later first cuts the torn block off.
        let mut rec = Recorder::open(dir.path(), Duration::from_secs(86_400)).unwrap();
        rec.append(&block(4_000), 4_000).unwrap();
        assert_eq!(read_all(dir.path()), (vec![1_000, 2_000, 4_000], vec![]));
    }

    #[test]
    fn old_segments_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::open(dir.path(), Duration::from_secs(3600)).unwrap();
        rec.append(&block(1_000), 1_000).unwrap();
        let late = SEGMENT_SPAN_MS * 5;
        rec.append(&block(late), late).unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn an_empty_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = RecordingReader::open(dir.path()).err().unwrap();
        assert!(e.to_string().contains("no procnet recording"), "{e}");
    }
}
