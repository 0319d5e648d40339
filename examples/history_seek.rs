//! Where the time of a history `?at=` goes, step by step, on a synthetic
//! machine shaped like `bench/holdconns.py` (N loopback connections between
//! a client and a server process, 2N sockets): a block of a keyframe and 59
//! deltas (a few counters change, one connection opens and one closes each
//! second), in block format version 1 (JSON lines) and 2 (postcard).
//! Prints one line per step, the median of `ROUNDS` (default 15) runs.
//! Run by `bench/history.sh`; alone:
//! `cargo run --release --example history_seek -- 10000`.
//!
//! `-- --from DIR`: the same breakdown of real samples, a recording made
//! by `serve --record DIR` (e.g. during `bench/history.sh`): its samples
//! go through a `HistoryStore` as the server's would, then moments of
//! every block are asked for cold (nothing decoded yet; with and without
//! the checkpoints) and warm, with the graph and its JSON after.

use procnet::graph::{ContainerLabels, GraphOptions};
use procnet::history::codec::{
    compress_block, compress_block_json, decompress_block, encode_frame, encode_frame_json,
    rebuild_upto,
};
use procnet::history::frame::{apply, delta, Frame, FrameBody, SampleMeta};
use procnet::history::replay::graph_of;
use procnet::history::store::AtSample;
use procnet::history::wire::Interner;
use procnet::rules::RuleSet;
use procnet::snapshot::Snapshot;
use std::time::Instant;

#[path = "common/machine.rs"]
mod machine;
use machine::machine;

fn median_ms(rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The seek breakdown of a real recording (see the module docs).
fn from_recording(dir: &std::path::Path, rounds: usize) {
    use procnet::history::record::RecordingReader;
    use procnet::history::store::{HistoryStore, HistoryWriter, DEFAULT_CAP_BYTES};
    use procnet::history::HistoryConfig;
    use std::sync::Arc;
    let mut reader = RecordingReader::open(dir).expect("a recording");
    let mut samples = Vec::new();
    while let Some(b) = reader.next_block().expect("a readable recording") {
        if std::env::var("OPS").is_ok() {
            for f in &b.frames {
                if let FrameBody::Delta(d) = &f.body {
                    let (mut copy, mut patch, mut new) = (0, 0, 0);
                    for op in &d.sockets {
                        match op {
                            procnet::history::frame::ListOp::Copy(_, n) => copy += n,
                            procnet::history::frame::ListOp::Patch(..) => patch += 1,
                            procnet::history::frame::ListOp::New(_) => new += 1,
                        }
                    }
                    let head: Vec<String> = d
                        .sockets
                        .iter()
                        .take(6)
                        .map(|op| match op {
                            procnet::history::frame::ListOp::Copy(f, n) => format!("c{f}+{n}"),
                            procnet::history::frame::ListOp::Patch(f, _) => format!("p{f}"),
                            procnet::history::frame::ListOp::New(_) => "n".into(),
                        })
                        .collect();
                    println!(
                        "delta: {} ops, copied {copy}, patched {patch}, new {new}: {} ...",
                        d.sockets.len(),
                        head.join(" ")
                    );
                }
            }
        }
        for ((s, c), f) in b.samples().expect("samples").into_iter().zip(&b.frames) {
            samples.push((s, c.to_labels(), f.meta));
        }
    }
    let config = HistoryConfig {
        cap_bytes: DEFAULT_CAP_BYTES,
        keyframe_every: std::time::Duration::from_secs(60),
        grace: std::time::Duration::from_secs(2),
        service_ports: Default::default(),
    };
    let mut store = HistoryStore::new(config.clone());
    let mut writer = HistoryWriter::new(&config);
    let mut encode_ms = Vec::new();
    for (s, c, m) in &samples {
        let shared = Arc::new(s.clone());
        let t = Instant::now();
        let u = writer.encode(shared, c, *m);
        encode_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        store.apply(u);
    }
    encode_ms.sort_by(f64::total_cmp);
    println!(
        "{} samples, {} sockets in the last; encode a sample: median {:.2} ms, max {:.2} ms",
        samples.len(),
        samples.last().map_or(0, |s| s.0.sockets.len()),
        encode_ms[encode_ms.len() / 2],
        encode_ms[encode_ms.len() - 1]
    );
    let (rules, options) = (RuleSet::default(), GraphOptions::default());
    // Moments: a block's first sample, its second, one just before a
    // checkpoint, the middle, its last; every block but the open one.
    let metas = store.metas();
    let mut blocks: Vec<Vec<u64>> = vec![];
    let mut first = None;
    for m in &metas {
        let f = *first.get_or_insert(m.at_ms);
        if m.at_ms - f >= 60_000 {
            first = Some(m.at_ms);
        }
        if first == Some(m.at_ms) {
            blocks.push(vec![]);
        }
        if let Some(b) = blocks.last_mut() {
            b.push(m.at_ms);
        }
    }
    let picks = |b: &Vec<u64>| -> Vec<(usize, u64)> {
        [0, 1, 9, b.len() / 2, b.len() - 1]
            .into_iter()
            .filter(|&i| i < b.len())
            .map(|i| (i, b[i]))
            .collect()
    };
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1000.0
    };
    for checkpoints in [true, false] {
        if !checkpoints {
            store.forget_for_bench(true);
        }
        println!(
            "{:<40} {:>9} {:>9} {:>9} {:>9}",
            if checkpoints {
                "with checkpoints: block, index"
            } else {
                "no checkpoints: block, index"
            },
            "cold ms",
            "warm ms",
            "graph ms",
            "json ms"
        );
        for (bi, b) in blocks.iter().enumerate() {
            for (i, at) in picks(b) {
                let mut cold = vec![];
                let mut warm = vec![];
                let mut at_sample = None;
                for _ in 0..rounds {
                    store.forget_for_bench(false);
                    cold.push(time(&mut || {
                        std::hint::black_box(store.locate(at).unwrap().rebuild().unwrap());
                    }));
                    warm.push(time(&mut || {
                        at_sample = Some(store.locate(at).unwrap().rebuild().unwrap());
                    }));
                }
                let at_sample = at_sample.unwrap();
                let graph = median_ms(rounds, || {
                    std::hint::black_box(graph_of(&at_sample, &rules, &options));
                });
                let doc = graph_of(&at_sample, &rules, &options);
                let json = median_ms(rounds, || {
                    std::hint::black_box(serde_json::to_vec(&doc).unwrap());
                });
                let med = |mut v: Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                println!(
                    "{:<40} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                    format!("  {bi}, {i}"),
                    med(cold),
                    med(warm),
                    graph,
                    json
                );
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--from") {
        let rounds = std::env::var("ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5);
        let dir = args.get(i + 1).expect("--from DIR");
        return from_recording(std::path::Path::new(dir), rounds);
    }
    let conns: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let samples: Vec<Snapshot> = (0..60).map(|t| machine(conns, t)).collect();
    let frames: Vec<Frame> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| Frame {
            meta: SampleMeta {
                at_ms: s.taken_at_ms,
                seq: i as u64,
                edges: 1,
                bytes_total: 0,
            },
            containers: None,
            body: if i == 0 {
                FrameBody::Key(Box::new(s.clone()))
            } else {
                FrameBody::Delta(Box::new(delta(&samples[i - 1], s)))
            },
        })
        .collect();
    let mut strings = Interner::default();
    let v2: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| encode_frame(&f.borrowed(), &mut strings))
        .collect();
    let v1: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| encode_frame_json(&f.borrowed()))
        .collect();
    let block2 = compress_block(v2.iter().map(|l| l.as_slice()));
    let block1 = compress_block_json(v1.iter().map(|l| l.as_slice()));
    assert_eq!(decompress_block(&block2).unwrap(), frames);
    assert_eq!(decompress_block(&block1).unwrap(), frames);
    println!(
        "sockets {}; keyframe v1 {} B (JSON), v2 {} B (postcard); block of 60 zstd: v1 {} B, v2 {} B",
        samples[0].sockets.len(),
        v1[0].len(),
        v2[0].len(),
        block1.len(),
        block2.len()
    );
    let step = |name: &str, ms: f64| println!("{name:<52} {ms:>8.2} ms");
    step(
        "encode keyframe, v1 (JSON)",
        median_ms(rounds, || {
            std::hint::black_box(encode_frame_json(&frames[0].borrowed()));
        }),
    );
    step(
        "encode keyframe, v2 (postcard)",
        median_ms(rounds, || {
            std::hint::black_box(encode_frame(
                &frames[0].borrowed(),
                &mut Interner::default(),
            ));
        }),
    );
    step(
        "decompress + decode block, v1",
        median_ms(rounds, || {
            std::hint::black_box(decompress_block(&block1).unwrap());
        }),
    );
    step(
        "decompress + decode block, v2",
        median_ms(rounds, || {
            std::hint::black_box(decompress_block(&block2).unwrap());
        }),
    );
    let old_chain = || {
        // As before: every step copies the sample it applies to.
        let FrameBody::Key(k) = &frames[0].body else {
            unreachable!()
        };
        let mut cur: Snapshot = (**k).clone();
        let mut prev = None;
        for f in &frames[1..] {
            let FrameBody::Delta(d) = &f.body else {
                unreachable!()
            };
            let next = apply(&cur, d).unwrap();
            prev = Some(std::mem::replace(&mut cur, next));
        }
        (prev, cur)
    };
    step(
        "59 deltas, each applied to a copy (before)",
        median_ms(rounds, || {
            std::hint::black_box(old_chain());
        }),
    );
    step(
        "59 deltas as a chain of references (now)",
        median_ms(rounds, || {
            std::hint::black_box(rebuild_upto(&frames, 59).unwrap());
        }),
    );
    let (prev, snapshot) = rebuild_upto(&frames, 59).unwrap();
    assert_eq!(snapshot, samples[59]);
    let at = AtSample {
        meta: frames[59].meta,
        snapshot,
        prev,
        containers: ContainerLabels::default(),
    };
    let (rules, options) = (RuleSet::default(), GraphOptions::default());
    step(
        "graph of the sample (rates from the one before)",
        median_ms(rounds, || {
            std::hint::black_box(graph_of(&at, &rules, &options));
        }),
    );
    let doc = graph_of(&at, &rules, &options);
    step(
        "the graph's JSON",
        median_ms(rounds, || {
            std::hint::black_box(serde_json::to_vec(&doc).unwrap());
        }),
    );
}
