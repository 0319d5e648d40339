//! Peak heap of history's encoding at 100k sockets (issue 12's serve RSS
//! target): a keyframe encoded and compressed, and a block sealed, the
//! way before (whole frame in memory, then compressed) and now (streamed
//! into the zstd encoder). Counted by a global allocator that tracks the
//! bytes live and their peak; each line is the peak above what was live
//! before the step.
//! `cargo run --release --example history_encode_mem -- 50000` (50k
//! connections, 100k sockets). zstd's own contexts are allocated by its C
//! code (malloc), outside the heap count: the second number is the growth
//! of the process's peak RSS over the step (free memory handed back with
//! `malloc_trim` first, the peak reset through `/proc/self/clear_refs`),
//! which sees both. `ONLY=before` or `ONLY=now` runs one way alone.

#[path = "common/machine.rs"]
mod machine;

use machine::machine;
use procnet::history::codec::{
    compress_block, compress_line, decompress_lines, encode_compressed, encode_frame,
    recompress_block,
};
use procnet::history::frame::{delta, FrameBodyRef, FrameRef, SampleMeta};
use procnet::history::wire::Interner;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

/// VmHWM or VmRSS of this process, in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runs `f` and prints the peak heap above what was live before it
/// (skipped, `None`, when `ONLY` names the other way).
fn peak<T>(name: &str, f: impl FnOnce() -> T) -> Option<T> {
    let only = std::env::var("ONLY").unwrap_or_default();
    if !only.is_empty() && !name.contains(&format!("({only})")) {
        return None;
    }
    // SAFETY: malloc_trim only returns free memory to the system. Linux
    // (glibc) only, as are the /proc counters this example reads.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0)
    };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss = status_kb("VmRSS:");
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    let mib = (PEAK.load(Relaxed) - base) as f64 / 1048576.0;
    let rss = status_kb("VmHWM:").saturating_sub(rss) as f64 / 1024.0;
    println!("{name:<58} heap {mib:>6.1} MiB, peak RSS +{rss:>5.1} MiB");
    Some(out)
}

fn meta(t: u64) -> SampleMeta {
    SampleMeta {
        at_ms: t * 1000,
        seq: t,
        edges: 1,
        bytes_total: 0,
    }
}

fn main() {
    let conns: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    // The block's frames first, two samples alive at a time; then only
    // the keyframe's sample is kept, so the peak of a whole run
    // (heaptrack) is that of the steps.
    let first = machine(conns, 0);
    println!(
        "{} sockets; a block of a keyframe and 9 deltas",
        first.sockets.len()
    );
    let mut strings = Interner::default();
    let mut lines = vec![encode_compressed(
        &FrameRef {
            meta: meta(0),
            containers: None,
            body: FrameBodyRef::Key(&first),
        },
        &mut strings,
    )];
    let mut prev = machine(conns, 0);
    for t in 1..10 {
        let next = machine(conns, t);
        let d = delta(&prev, &next);
        let f = FrameRef {
            meta: meta(t as u64),
            containers: None,
            body: FrameBodyRef::Delta(&d),
        };
        lines.push(encode_compressed(&f, &mut strings));
        prev = next;
    }
    drop(prev);
    let samples = [first];
    let key = FrameRef {
        meta: meta(0),
        containers: None,
        body: FrameBodyRef::Key(&samples[0]),
    };
    let before = peak("keyframe: encode, then compress (before)", || {
        compress_line(&encode_frame(&key, &mut Interner::default()))
    });
    let after = peak("keyframe: encoded into the zstd encoder (now)", || {
        encode_compressed(&key, &mut Interner::default())
    });
    if let (Some(b), Some(a)) = (&before, &after) {
        assert_eq!(
            decompress_lines([b.as_slice()]).unwrap(),
            decompress_lines([a.as_slice()]).unwrap()
        );
        println!("  (compressed keyframe {} B)", a.len());
    }
    let old = peak(
        "seal a block: decompress all, then compress (before)",
        || {
            let raw = decompress_lines(lines.iter().map(|l| l.as_slice())).unwrap();
            compress_block([raw.as_slice()])
        },
    );
    let new = peak(
        "seal a block: each frame into the block's encoder (now)",
        || recompress_block(lines.iter().map(|l| l.as_slice())).unwrap(),
    );
    if let (Some(o), Some(n)) = (old, new) {
        println!("  (block {} B before, {} B now)", o.len(), n.len());
    }
}
