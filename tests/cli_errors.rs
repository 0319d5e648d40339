//! Bad input gets one clear message and exit status 2, never a panic: every
//! rules error, bad flags, a port in use. Runs the real binary.

use procnet::rules::RuleSet;
use proptest::prelude::*;
use std::io::Write;
use std::process::Command;

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
