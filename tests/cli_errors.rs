//! Bad input gets one clear message and exit status 2, never a panic: every
//! rules error, bad flags, a port in use, files that are not plain files or
//! are too big; run-time failures exit 1. Runs the real binary.

mod common;

use procnet::rules::RuleSet;
use proptest::prelude::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_procnet");

fn fixture() -> String {
    format!(
        "{}/tests/fixtures/directions.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Runs `procnet snapshot --from <fixture> --rules <file with text>`.
fn with_rules(name: &str, text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = Command::new(BIN)
        .args(["snapshot", "--from", &fixture(), "--rules"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

/// Asserts exit 2 and a one-line message that names everything in `needles`.
fn assert_refused(name: &str, text: &str, needles: &[&str]) {
    let (code, stderr, path) = with_rules(name, text);
    assert_eq!(code, 2, "{name}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
    assert!(stderr.contains(&path), "names the file: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    for n in needles {
        assert!(stderr.contains(n), "{name}: `{n}` missing in: {stderr}");
    }
}

#[test]
fn missing_file() {
    let out = Command::new(BIN)
        .args([
            "snapshot",
            "--from",
            &fixture(),
            "--rules",
            "/nonexistent/rules.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/rules.yaml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn unparsable_yaml_and_json() {
    assert_refused(
        "bad.yaml",
        "- match_name: [unclosed\n  type: x\n",
        &["not valid YAML"],
    );
    assert_refused(
        "bad.json",
        "[{\"match_name\": \"x\", }]",
        &["not valid JSON", "line 1"],
    );
    // Format by content, not extension: JSON in a .yaml file is fine.
    let (code, stderr, _) = with_rules("rules.yaml", r#"[{"match_name": "psql", "type": "app"}]"#);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn not_a_list() {
    assert_refused("r.yaml", "type: app\n", &["expected a list"]);
}

#[test]
fn invalid_regex() {
    assert_refused(
        "r.yaml",
        "- {match_name: ok, type: app}\n- {match_name: '/(unclosed/', type: app}\n",
        &["rule 1", "match_name", "invalid regex"],
    );
}

#[test]
fn rule_without_matcher() {
    assert_refused(
        "r.yaml",
        "- {type: app, label: x}\n",
        &["rule 0", "no matcher"],
    );
}

#[test]
fn rule_without_type() {
    assert_refused(
        "r.yaml",
        "- {match_name: x}\n",
        &["rule 0", "`type`", "missing"],
    );
}

#[test]
fn unknown_key() {
    assert_refused(
        "r.yaml",
        "- {match_name: x, type: app}\n- {match_name: y, typo: app, type: app}\n",
        &["rule 1", "`typo`", "unknown key"],
    );
}

#[test]
fn wrong_value_types() {
    assert_refused(
        "r.yaml",
        "- {match_pid: -3, type: app}\n",
        &["rule 0", "match_pid"],
    );
    assert_refused(
        "r.yaml",
        "- {match_name: 5, type: app}\n",
        &["rule 0", "match_name", "expected a string"],
    );
    assert_refused("r.json", "[\"just a string\"]", &["rule 0", "mapping"]);
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        vec!["snapshot", "--format", "xml"],
        vec!["snapshot", "--svc-ports", "80,http"],
        vec!["serve", "--interval", "0"],
        vec!["serve", "--interval", "-1"],
        vec!["serve", "--port", "99999"],
        vec!["serve", "--bind", "not-an-ip"],
        vec!["--no-such-flag"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn off_loopback_needs_a_token() {
    let out = Command::new(BIN)
        .args(["serve", "--bind", "0.0.0.0", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}

#[test]
fn port_in_use_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--port", &port])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("already in use") && err.contains(&port),
        "{err}"
    );
}

/// How a bounded run of the binary ended.
#[derive(Debug)]
struct Outcome {
    /// `None` when killed (timed out) or ended by a signal.
    code: Option<i32>,
    stderr: String,
    timed_out: bool,
}

/// Runs the binary with at most 4 GiB of address space and 20 s of time,
/// so a version that reads `/dev/zero`, expands an alias bomb, blocks on
/// a FIFO or just starts serving fails the test instead of taking the
/// machine's memory or hanging it. `stdout` is where its output goes.
fn run_bounded(args: &[&str], stdout: Stdio, nofile: Option<u64>) -> Outcome {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe setrlimit calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let set = |resource, n: u64| {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(resource, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                };
                set(libc::RLIMIT_AS, 4 << 30)?;
                if let Some(n) = nofile {
                    set(libc::RLIMIT_NOFILE, n)?;
                }
                Ok(())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = nofile; // no resource limits to set there
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code: status.code(),
        stderr: reader.join().unwrap(),
        timed_out,
    }
}

/// Asserts a bounded run exits 2 with one message (its first line; clap
/// adds a "try --help" line) holding every needle.
fn assert_exit_2(args: &[&str], needles: &[&str]) {
    let out = run_bounded(args, Stdio::null(), None);
    assert!(
        !out.timed_out,
        "{args:?}: still running after 20 s: {out:?}"
    );
    assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
    assert!(!out.stderr.contains("panicked"), "{args:?}: {out:?}");
    let first = out.stderr.lines().next().unwrap_or("");
    for n in needles {
        assert!(
            first.contains(n),
            "{args:?}: `{n}` missing in: {}",
            out.stderr
        );
    }
}

/// Item 10: every interval outside 0.05–3600 s is refused with the range
/// named; before, `1e19` was accepted (and stalled the sampler), `1e20`,
/// `1e300` and 2^64 panicked, `1e-9` burnt a core.
#[test]
fn interval_out_of_range_exits_2_naming_the_range() {
    for bad in [
        "1e19",
        "1e20",
        "1e300",
        "18446744073709551616",
        "1e-9",
        "0.049",
        "3600.5",
        "nan",
        "inf",
        "-0.1",
    ] {
        assert_exit_2(
            &["serve", "--port", "0", "--interval", bad],
            &["--interval", bad, "from 0.05 to 3600 seconds"],
        );
    }
}

#[test]
fn interval_at_the_bounds_is_accepted() {
    for ok in ["0.05", "3600"] {
        let s = common::Server::start_with_interval(&[], ok);
        assert_eq!(s.get("/healthz").status, 200, "--interval {ok}");
    }
}

/// Item 11: a FIFO, a device or a too-big file given as --rules,
/// --token-file or --from is refused at once, without reading it.
#[cfg(unix)]
#[test]
fn non_regular_or_huge_input_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    // 50 MB of rules: 900k regex rules took 3.8 GB before.
    let big = dir.path().join("big.yaml");
    let rule = "- {match_name: '/^x[0-9]+$/', type: app}\n";
    std::fs::write(&big, rule.repeat(50_000_000 / rule.len())).unwrap();
    let big = big.to_str().unwrap();
    // A sparse 257 MiB file: over the snapshot cap, without using the disk.
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(257 << 20)
        .unwrap();
    let huge = huge.to_str().unwrap();
    let fixture = fixture();
    let snap = |extra: [&'static str; 1], file: &str| {
        let mut a = vec!["snapshot".to_string(), "--from".into(), fixture.clone()];
        a.extend([extra[0].to_string(), file.to_string()]);
        a
    };
    let serve = |flag: &str, file: &str| -> Vec<String> {
        ["serve", "--port", "0", flag, file]
            .map(String::from)
            .to_vec()
    };
    let from =
        |file: &str| -> Vec<String> { ["snapshot", "--from", file].map(String::from).to_vec() };
    for (args, needles) in [
        (
            snap(["--rules"], "/dev/zero"),
            vec!["/dev/zero", "character device"],
        ),
        (snap(["--rules"], fifo), vec![fifo, "FIFO"]),
        (snap(["--rules"], big), vec![big, "larger than 1 MiB"]),
        (serve("--rules", fifo), vec![fifo, "FIFO"]),
        (
            serve("--token-file", "/dev/zero"),
            vec!["--token-file /dev/zero", "character device"],
        ),
        (serve("--token-file", fifo), vec!["--token-file", "FIFO"]),
        (
            serve("--token-file", big),
            vec!["--token-file", "larger than 64 KiB"],
        ),
        (
            from("/dev/zero"),
            vec!["snapshot file /dev/zero", "character device"],
        ),
        (from(fifo), vec!["snapshot file", "FIFO"]),
        (from(huge), vec!["snapshot file", "larger than 256 MiB"]),
        (from("/tmp"), vec!["snapshot file /tmp", "directory"]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_exit_2(&args, &needles);
    }
}

/// Item 11: at most 10,000 rules.
#[test]
fn too_many_rules_exit_2() {
    let rule = "- {match_pid: 1, type: app}\n";
    assert_refused(
        "many.yaml",
        &rule.repeat(10_001),
        &["10001 rules", "limit of 10000"],
    );
    let (code, stderr, _) = with_rules("ok.yaml", &rule.repeat(10_000));
    assert_eq!(code, 0, "{stderr}");
}

/// Item 12: --icons-dir must be a directory.
#[test]
fn icons_dir_missing_or_a_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("service.png");
    std::fs::write(&file, b"not a dir").unwrap();
    let file = file.to_str().unwrap();
    assert_exit_2(
        &["serve", "--port", "0", "--icons-dir", "/nonexistent/icons"],
        &["--icons-dir /nonexistent/icons", "existing directory"],
    );
    assert_exit_2(
        &["serve", "--port", "0", "--icons-dir", file],
        &["--icons-dir", file, "not a directory"],
    );
}

/// Item 13: the original tool's docs write regexes in double quotes; the
/// error keeps its position and says how to write it.
#[test]
fn double_quoted_regex_error_says_how_to_fix_it() {
    assert_refused(
        "r.yaml",
        "- match_cmd: \"/--port\\s+(3000|5173)/i\"\n  type: service\n",
        &[
            "not valid YAML",
            "unknown escape character at line 1, column 14",
            "single quotes ('/--port\\s+(3000|5173)/i')",
        ],
    );
    let (code, stderr, _) = with_rules(
        "r.yaml",
        "- match_cmd: '/--port\\s+(3000|5173)/i'\n  type: service\n",
    );
    assert_eq!(code, 0, "the single-quoted form works: {stderr}");
}

/// Item 16: one anchor of 20,000 values used 20,000 times (140 KB) would
/// expand to 400 million values; the old parser (serde_yaml, which only
/// counts alias jumps) ran out of memory on it. Refused in well under the
/// 20 s and 4 GiB the run is given.
#[test]
fn alias_bomb_is_refused_quickly() {
    let n = 20_000;
    let doc = format!("a: &a [{}x]\nb: [{}*a]\n", "x,".repeat(n), "*a,".repeat(n));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.yaml");
    std::fs::write(&path, doc).unwrap();
    let started = Instant::now();
    assert_exit_2(
        &[
            "snapshot",
            "--from",
            &fixture(),
            "--rules",
            path.to_str().unwrap(),
        ],
        &["bomb.yaml", "not valid YAML", "aliases expand too far"],
    );
    eprintln!("alias bomb refused in {:?}", started.elapsed());
}

/// Item 16: YAML errors still carry line and column, the file's own
/// (leading blank lines were once trimmed off before parsing, which
/// shifted every line number).
#[test]
fn yaml_errors_name_line_and_column() {
    assert_refused(
        "bad.yaml",
        "\n\n# typing rules\n- match_name: [unclosed\n  type: x\n",
        &["not valid YAML", "at line 5, column 7"],
    );
}

/// Item 17: the exit codes are documented in --help.
#[test]
fn help_documents_exit_codes() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["snapshot", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Exit status:")
                && help.contains("  1  a run-time failure")
                && help.contains("  2  a usage or input error"),
            "{args:?}: {help}"
        );
    }
}

/// Item 17: failing to write the output is not a usage error: exit 1.
#[cfg(target_os = "linux")]
#[test]
fn output_write_failure_exits_1() {
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = run_bounded(&["snapshot", "--from", &fixture()], Stdio::from(full), None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("cannot write to stdout"), "{out:?}");
}

/// Item 17: the OS refusing the server's sockets (here: no file
/// descriptors left after the listening socket) is a run-time failure.
#[cfg(target_os = "linux")]
#[test]
fn os_refusing_sockets_exits_1() {
    let out = run_bounded(&["serve", "--port", "0"], Stdio::null(), Some(4));
    assert!(!out.timed_out, "{out:?}");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Too many open files") && !out.stderr.contains("panicked"),
        "{out:?}"
    );
}

/// Item 11: a reload never blocks or bloats the sampler: the rules file
/// replaced by a FIFO or a 2 MiB file is refused (reported in /healthz),
/// the last good rules stay, and samples keep coming.
#[cfg(unix)]
#[test]
fn reload_refuses_fifo_and_oversized_files_and_keeps_sampling() {
    let (holder, _port) = common::tcp_server("127.0.0.1");
    let pid = holder.pid();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let good = format!("- {{match_pid: {pid}, type: database, label: Good}}\n");
    std::fs::write(&rules, good).unwrap();
    let s = common::Server::start(&["--rules", rules.to_str().unwrap()]);
    let label = || {
        let g = s.get("/api/graph").json();
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["pid"] == pid)
            .map(|n| n["label"].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while label() != Some(serde_json::json!("Good")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(label(), Some(serde_json::json!("Good")));
    let wait_error = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = s.get("/healthz").json();
            let e = h["rulesError"].as_str().unwrap_or("").to_string();
            if e.contains(needle) || Instant::now() > deadline {
                return (e, h["samples"].as_u64().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let samples_grow = |from: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if s.get("/healthz").json()["samples"].as_u64().unwrap() > from + 2 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let big = dir.path().join("big");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    std::fs::rename(&big, &rules).unwrap();
    let (e, n) = wait_error("larger than 1 MiB");
    assert!(e.contains("larger than 1 MiB"), "{e}");
    assert!(samples_grow(n), "sampling goes on");
    std::fs::remove_file(&rules).unwrap();
    let c = std::ffi::CString::new(rules.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (e, n) = wait_error("FIFO");
    assert!(e.contains("FIFO"), "{e}");
    assert!(samples_grow(n), "sampling goes on: a FIFO never blocks it");
    assert_eq!(
        label(),
        Some(serde_json::json!("Good")),
        "the last good rules stay"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary text never panics the loader.
    #[test]
    fn loader_never_panics_on_text(text in "\\PC{0,200}") {
        let _ = RuleSet::parse(&text, "prop");
    }

    /// Arbitrary rule-shaped documents: either rules or a typed error.
    #[test]
    fn loader_never_panics_on_documents(
        keys in proptest::collection::vec(
            ("(match_pid|match_name|match_cmd|type|label|other)", "[ -~]{0,12}"), 0..6),
        n in 0usize..4,
    ) {
        let rule: String = keys.iter().map(|(k, v)| format!("\"{k}\": {}", serde_json::Value::String(v.clone()))).collect::<Vec<_>>().join(", ");
        let doc = format!("[{}]", vec![format!("{{{rule}}}"); n].join(","));
        match RuleSet::parse(&doc, "prop") {
            Ok(rules) => prop_assert_eq!(rules.rules.len(), n),
            Err(e) => prop_assert!(e.to_string().contains("prop")),
        }
    }
}
