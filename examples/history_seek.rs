//! Where the time of a history `?at=` goes, step by step, on a synthetic
//! machine shaped like `bench/holdconns.py` (N loopback connections between
//! a client and a server process, 2N sockets): a block of a keyframe and 59
//! deltas (a few counters change, one connection opens and one closes each
//! second), in block format version 1 (JSON lines) and 2 (postcard).
//! Prints one line per step, the median of `ROUNDS` (default 15) runs.
//! Run by `bench/history.sh`; alone:
//! `cargo run --release --example history_seek -- 10000`.

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
use procnet::snapshot::{Process, Proto, Snapshot, Socket, SocketState};
use std::net::SocketAddr;
use std::time::Instant;

fn socket(local: SocketAddr, remote: Option<SocketAddr>, inode: u64, pid: u32) -> Socket {
    Socket {
        proto: Proto::Tcp,
        local,
        remote,
        state: if remote.is_some() {
            SocketState::Established
        } else {
            SocketState::Listen
        },
        inode,
        uid: Some(0),
        owners: smallvec::smallvec![pid],
        unowned_reason: None,
        bytes_sent: remote.map(|_| 0),
        bytes_received: remote.map(|_| 0),
        tcp_health: None,
        closed: false,
    }
}

/// The machine at second `t`: connection `i` exists for `t <= i + conns`
/// and `i >= t` (one opens and one closes a second); 1 % of them count
/// bytes each second.
fn machine(conns: u32, t: u32) -> Snapshot {
    let server: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let mut sockets = vec![socket(server, None, 1, 2)];
    for i in t..t + conns {
        let client = SocketAddr::from((
            [127, 0, 0, 2 + (i / 50_000) as u8],
            10_000 + (i % 50_000) as u16,
        ));
        let mut c = socket(client, Some(server), 10 + 2 * i as u64, 1);
        let mut s = socket(server, Some(client), 11 + 2 * i as u64, 2);
        if i % 100 == t % 100 {
            c.bytes_sent = Some(u64::from(t) * 1000);
            s.bytes_received = c.bytes_sent;
        }
        sockets.push(c);
        sockets.push(s);
    }
    let process = |pid: u32, role: &str| Process {
        pid,
        start_time: Some(1),
        name: "python3".into(),
        cmdline: vec!["python3".into(), "bench/holdconns.py".into(), role.into()],
        exe: Some("/usr/bin/python3.11".into()),
        uid: Some(0),
        user: Some("root".into()),
        ppid: Some(1),
        container_id: None,
    };
    Snapshot {
        taken_at_ms: 1_000 * u64::from(t),
        local_addresses: vec!["127.0.0.1".parse().unwrap()],
        processes: vec![process(1, "client"), process(2, "server")],
        sockets,
        ..Snapshot::default()
    }
}

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

fn main() {
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
