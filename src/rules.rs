//! Typing rules: a YAML or JSON list that gives processes a `type` (which
//! icon, which colour) and a `label`. Parsing is strict — an unknown key, a
//! rule with no matcher or an invalid regex is an error that names the file,
//! the rule's index and the field — because a silently ignored rule is worse
//! than a refused file. Matching is pure.
//!
//! ```yaml
//! - match_name: "/^postgres/i"   # exact name, or /regex/ or /regex/i
//!   match_cmd: "-D /var/lib"     # substring, or /regex/ or /regex/i
//!   match_pid: 1234              # exact pid
//!   type: database               # required
//!   label: Local Postgres        # optional
//! ```

use crate::user_file::{read_text, UserFileError};
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// The keys a rule may have.
const RULE_KEYS: &[&str] = &["match_pid", "match_name", "match_cmd", "type", "label"];

/// The largest rules file read: typing rules are a few kilobytes, and a
/// cap keeps a mistaken path (a log file, a disk image) from being parsed.
pub const MAX_RULES_BYTES: u64 = 1 << 20;

/// The most rules a file may hold: each process is matched against every
/// rule each sample, so a huge list would cost every sample.
pub const MAX_RULES: usize = 10_000;

/// Default type when no rule matches.
pub const DEFAULT_TYPE: &str = "app";

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("rules file {path}: cannot read it: {source} (check the path given to --rules)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The path is not a plain file of a sensible size, or not text.
    #[error(
        "rules file {path}: {reason}; give --rules a plain YAML or JSON file of at most 1 MiB"
    )]
    Refused {
        path: String,
        #[source]
        reason: UserFileError,
    },
    /// More rules than [`MAX_RULES`].
    #[error("rules file {path}: {count} rules, more than the limit of {MAX_RULES}; merge rules with regexes such as '/^(nginx|haproxy)$/'")]
    TooManyRules { path: String, count: usize },
    /// The file is not valid YAML / JSON.
    #[error("rules file {path}: not valid {format}: {message}")]
    Syntax {
        path: String,
        format: &'static str,
        message: String,
    },
    /// The document is not a list of rules.
    #[error(
        "rules file {path}: expected a list of rules (or {{\"rules\": [...]}}), found {found}"
    )]
    NotAList { path: String, found: &'static str },
    /// One rule is wrong.
    #[error("rules file {path}: rule {index}: field `{field}`: {problem}")]
    Rule {
        path: String,
        /// Zero-based position of the rule in the list.
        index: usize,
        field: String,
        problem: String,
    },
}

/// How a rule matches a text field.
#[derive(Debug, Clone)]
pub enum TextMatcher {
    /// The whole text equals this (`match_name`).
    Exact(String),
    /// The text contains this (`match_cmd`).
    Substring(String),
    /// Written `/re/` or `/re/i`.
    Regex(Regex),
}

impl TextMatcher {
    fn is_match(&self, text: &str) -> bool {
        match self {
            TextMatcher::Exact(s) => text == s,
            TextMatcher::Substring(s) => text.contains(s.as_str()),
            TextMatcher::Regex(re) => re.is_match(text),
        }
    }
}

/// One typing rule. All given matchers must hold.
#[derive(Debug, Clone)]
pub struct Rule {
    pub match_pid: Option<u32>,
    pub match_name: Option<TextMatcher>,
    pub match_cmd: Option<TextMatcher>,
    pub node_type: String,
    pub label: Option<String>,
}

/// What a process is matched on.
#[derive(Debug, Clone, Copy)]
pub struct ProcessFacts<'a> {
    pub pid: u32,
    pub name: &'a str,
    /// Arguments joined by single spaces.
    pub cmdline: &'a str,
}

/// The outcome of classifying a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification<'a> {
    pub node_type: &'a str,
    /// The rule's label, if the matching rule has one.
    pub label: Option<&'a str>,
    /// Index of the rule that matched; `None` for the default.
    pub rule_index: Option<usize>,
}

/// An ordered list of rules; the first match wins.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Classifies a process: the first rule whose matchers all hold, else
    /// `type: app` with no label (the caller shows the process name).
    pub fn classify(&self, facts: ProcessFacts<'_>) -> Classification<'_> {
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.matches(facts) {
                return Classification {
                    node_type: &rule.node_type,
                    label: rule.label.as_deref(),
                    rule_index: Some(index),
                };
            }
        }
        Classification {
            node_type: DEFAULT_TYPE,
            label: None,
            rule_index: None,
        }
    }

    /// Reads and parses a rules file.
    pub fn load(path: &Path) -> Result<RuleSet, RulesError> {
        let shown = path.display().to_string();
        let text = read_text(path, MAX_RULES_BYTES, "a rules file").map_err(|e| match e {
            UserFileError::Io(source) => RulesError::Read {
                path: shown.clone(),
                source,
            },
            reason => RulesError::Refused {
                path: shown.clone(),
                reason,
            },
        })?;
        RuleSet::parse(&text, &shown)
    }

    /// Parses rules from text. The format is decided by content: a document
    /// that starts with `[` or `{` is JSON, anything else YAML. `origin`
    /// names the source in errors. Leading blank lines are kept for the
    /// parsers so that the lines and columns in their errors are the file's.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
        let body = text.trim_start_matches('\u{feff}');
        let trimmed = body.trim_start();
        let doc: Value = if trimmed.starts_with('[') || trimmed.starts_with('{') {
            serde_json::from_str(body).map_err(|e| RulesError::Syntax {
                path: origin.to_string(),
                format: "JSON",
                message: e.to_string(),
            })?
        } else if trimmed.is_empty() {
            Value::Array(Vec::new())
        } else {
            serde_saphyr::from_str_with_options(body, yaml_options()).map_err(|e| {
                RulesError::Syntax {
                    path: origin.to_string(),
                    format: "YAML",
                    message: yaml_message(&e.to_string()),
                }
            })?
        };
        let list = match doc {
            Value::Array(list) => list,
            Value::Object(mut map) if map.contains_key("rules") => match map.remove("rules") {
                Some(Value::Array(list)) => list,
                Some(other) => {
                    return Err(RulesError::NotAList {
                        path: origin.to_string(),
                        found: kind_of(&other),
                    })
                }
                None => Vec::new(),
            },
            Value::Null => Vec::new(),
            other => {
                return Err(RulesError::NotAList {
                    path: origin.to_string(),
                    found: kind_of(&other),
                })
            }
        };
        if list.len() > MAX_RULES {
            return Err(RulesError::TooManyRules {
                path: origin.to_string(),
                count: list.len(),
            });
        }
        let rules = list
            .iter()
            .enumerate()
            .map(|(index, value)| parse_rule(value, index, origin))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RuleSet { rules })
    }
}

impl Rule {
    fn matches(&self, facts: ProcessFacts<'_>) -> bool {
        self.match_pid.is_none_or(|pid| pid == facts.pid)
            && self
                .match_name
                .as_ref()
                .is_none_or(|m| m.is_match(facts.name))
            && self
                .match_cmd
                .as_ref()
                .is_none_or(|m| m.is_match(facts.cmdline))
    }
}

/// The YAML parser's limits. A document holds at most [`MAX_YAML_VALUES`]
/// values ([`MAX_RULES`] rules of five keys each are 11 values a rule);
/// rules files need aliases only to share a rule or two, so what aliases
/// replay is held to [`MAX_ALIAS_VALUES`]: an alias bomb ("billion laughs",
/// or one big anchor used many times) is refused after that many values
/// instead of expanding into gigabytes. Errors come as one line ("... at
/// line L, column C"), without a source snippet.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_YAML_VALUES,
            max_events: 4 * MAX_YAML_VALUES,
            max_recorded_anchor_events: MAX_ALIAS_VALUES,
            max_aliases: MAX_ALIAS_VALUES,
            max_depth: 64,
            max_documents: 1,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_ALIAS_VALUES,
        },
        with_snippet: false,
    }
}

/// The most values (mappings, lists, scalars, aliases replayed included)
/// a YAML rules document may hold.
const MAX_YAML_VALUES: usize = 150_000;

/// The most values that anchors may record and aliases replay.
const MAX_ALIAS_VALUES: usize = 20_000;

/// The parser's message, with what to do where it speaks to programmers.
fn yaml_message(raw: &str) -> String {
    let mut message = one_line(raw)
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .replace(
            "; use from_str_multiple or from_str_multiple_with_options",
            "; a rules file is one document (remove the `---` separator)",
        );
    if message.contains("unknown escape character") {
        // The original tool's docs write regexes in double quotes, where
        // YAML reads `\s` as an escape.
        message.push_str(
            r#"; in a double-quoted YAML string a backslash starts an escape: write the regex in single quotes ('/--port\s+(3000|5173)/i') or double the backslash ("/--port\\s+(3000|5173)/i")"#,
        );
    } else if message.contains("budget breached") {
        message.push_str("; the document is too large or its aliases expand too far (at most 150000 values, 20000 of them from aliases, and 64 levels)");
    }
    message
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn parse_rule(value: &Value, index: usize, origin: &str) -> Result<Rule, RulesError> {
    let err = |field: &str, problem: String| RulesError::Rule {
        path: origin.to_string(),
        index,
        field: field.to_string(),
        problem,
    };
    let map = value.as_object().ok_or_else(|| {
        err(
            "-",
            format!(
                "a rule must be a mapping with `type` and at least one of match_pid, match_name, match_cmd; found {}",
                kind_of(value)
            ),
        )
    })?;
    if let Some(key) = map.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
        return Err(err(
            key,
            format!("unknown key; allowed keys are {}", RULE_KEYS.join(", ")),
        ));
    }
    let text_field = |field: &str| -> Result<Option<&str>, RulesError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Err(err(field, "must not be empty".into())),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(err(
                field,
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    };
    let match_pid = match map.get("match_pid") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| err("match_pid", format!("{n} is not a valid pid")))?,
        ),
        Some(Value::String(s)) => Some(s.trim().parse::<u32>().map_err(|_| {
            err(
                "match_pid",
                format!("expected a whole number, found \"{s}\""),
            )
        })?),
        Some(other) => {
            return Err(err(
                "match_pid",
                format!("expected a whole number, found {}", kind_of(other)),
            ))
        }
    };
    let match_name = text_field("match_name")?
        .map(|s| text_matcher(s, TextMatcher::Exact).map_err(|p| err("match_name", p)))
        .transpose()?;
    let match_cmd = text_field("match_cmd")?
        .map(|s| text_matcher(s, TextMatcher::Substring).map_err(|p| err("match_cmd", p)))
        .transpose()?;
    let node_type = text_field("type")?
        .ok_or_else(|| err("type", "missing; every rule needs a `type` such as app, service, database, message_broker, cache, load_balancer".into()))?
        .to_string();
    let label = text_field("label")?.map(str::to_string);
    if match_pid.is_none() && match_name.is_none() && match_cmd.is_none() {
        return Err(err(
            "match_*",
            "the rule has no matcher; give at least one of match_pid, match_name, match_cmd".into(),
        ));
    }
    Ok(Rule {
        match_pid,
        match_name,
        match_cmd,
        node_type,
        label,
    })
}

/// `/re/` or `/re/i` is a regex; anything else is literal text.
fn text_matcher(text: &str, literal: fn(String) -> TextMatcher) -> Result<TextMatcher, String> {
    let (pattern, case_insensitive) =
        if text.len() >= 3 && text.starts_with('/') && text.ends_with("/i") {
            (&text[1..text.len() - 2], true)
        } else if text.len() >= 2 && text.starts_with('/') && text.ends_with('/') {
            (&text[1..text.len() - 1], false)
        } else {
            return Ok(literal(text.to_string()));
        };
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 20)
        .build()
        .map(TextMatcher::Regex)
        .map_err(|e| format!("invalid regex {text}: {}", one_line(&e.to_string())))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where a `--rules` path points: a relative path is tried against the
/// current directory, then against the directory of the executable (so a
/// rules file shipped beside the binary is found from anywhere). Returns the
/// first that exists, else the path as given (so the error names it).
pub fn resolve_rules_path(given: &Path) -> PathBuf {
    if given.is_absolute() || given.exists() {
        return given.to_path_buf();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        let beside = dir.join(given);
        if beside.exists() {
            return beside;
        }
    }
    given.to_path_buf()
}

impl fmt::Display for TextMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextMatcher::Exact(s) | TextMatcher::Substring(s) => write!(f, "{s}"),
            TextMatcher::Regex(re) => write!(f, "/{}/", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(pid: u32, name: &'a str, cmdline: &'a str) -> ProcessFacts<'a> {
        ProcessFacts { pid, name, cmdline }
    }

    const SEED_RULES: &str = r#"
- match_pid: 1234
  type: database
  label: "Local Postgres"
- match_name: "redis-server.exe"
  type: cache
  label: "Redis"
- match_name: "/chrome/i"
  type: app
  label: "Chrome"
- match_cmd: "--listen 0.0.0.0:5432"
  type: database
  label: "DB (Public)"
- match_cmd: "/--port\\s+(3000|5173)/i"
  type: service
  label: "Dev Server"
"#;

    #[test]
    fn first_match_wins_and_default_is_app() {
        let rules = RuleSet::parse(SEED_RULES, "t.yaml").unwrap();
        assert_eq!(rules.rules.len(), 5);
        let c = rules.classify(facts(1234, "chrome", ""));
        assert_eq!((c.node_type, c.label), ("database", Some("Local Postgres")));
        let c = rules.classify(facts(1, "Google-CHROME", ""));
        assert_eq!((c.node_type, c.label), ("app", Some("Chrome")));
        let c = rules.classify(facts(1, "redis-server", ""));
        assert_eq!((c.node_type, c.label, c.rule_index), ("app", None, None));
        let c = rules.classify(facts(1, "redis-server.exe", ""));
        assert_eq!(c.node_type, "cache");
        let c = rules.classify(facts(1, "pg", "pg --listen 0.0.0.0:5432 -x"));
        assert_eq!(c.label, Some("DB (Public)"));
        let c = rules.classify(facts(1, "vite", "node vite --PORT  5173"));
        assert_eq!(c.label, Some("Dev Server"));
    }

    #[test]
    fn all_matchers_must_hold() {
        let rules = RuleSet::parse(
            r#"[{"match_name":"nginx","match_cmd":"master","type":"lb"}]"#,
            "r.json",
        )
        .unwrap();
        assert_eq!(
            rules
                .classify(facts(1, "nginx", "nginx: master process"))
                .node_type,
            "lb"
        );
        assert_eq!(
            rules
                .classify(facts(1, "nginx", "nginx: worker process"))
                .node_type,
            "app"
        );
        assert_eq!(
            rules.classify(facts(1, "apache", "master")).node_type,
            "app"
        );
    }

    #[test]
    fn exact_name_is_not_substring() {
        let rules = RuleSet::parse("- {match_name: node, type: service}", "r").unwrap();
        assert_eq!(rules.classify(facts(1, "nodejs", "")).node_type, "app");
        assert_eq!(rules.classify(facts(1, "node", "")).node_type, "service");
    }

    /// "Billion laughs": nine levels of nine aliases would expand to 387
    /// million values. Refused by the node budget, in well under a second.
    #[test]
    fn alias_bomb_is_refused() {
        let mut doc = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let p = w[0];
            doc.push_str(&format!(
                "{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                w[1], w[1]
            ));
        }
        let e = RuleSet::parse(&doc, "bomb.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with("rules file bomb.yaml: not valid YAML: "),
            "{e}"
        );
        assert!(e.contains("aliases expand too far"), "{e}");
    }

    /// One anchor of 20,000 values used 20,000 times: 400 million values
    /// from 140 KB, which a parser that only counts alias jumps (the old
    /// serde_yaml) expands until memory runs out.
    #[test]
    fn wide_alias_bomb_is_refused() {
        let n = 20_000;
        let doc = format!("a: &a [{}x]\nb: [{}*a]\n", "x,".repeat(n), "*a,".repeat(n));
        let e = RuleSet::parse(&doc, "wide.yaml").unwrap_err().to_string();
        assert!(e.contains("not valid YAML") && e.contains("expand"), "{e}");
    }

    #[test]
    fn double_quoted_regex_error_says_how_to_fix_it() {
        let doc = "- match_cmd: \"/--port\\s+(3000|5173)/i\"\n  type: service\n";
        let e = RuleSet::parse(doc, "r.yaml").unwrap_err().to_string();
        assert!(
            e.starts_with("rules file r.yaml: not valid YAML: ")
                && e.contains("unknown escape character at line 1, column 14"),
            "{e}"
        );
        assert!(
            e.contains("single quotes ('/--port\\s+(3000|5173)/i')"),
            "{e}"
        );
        assert!(e.contains(r#"("/--port\\s+(3000|5173)/i")"#), "{e}");
        // Both fixes the message offers parse to the same working rule.
        for fixed in [
            "- match_cmd: '/--port\\s+(3000|5173)/i'\n  type: service\n",
            "- match_cmd: \"/--port\\\\s+(3000|5173)/i\"\n  type: service\n",
        ] {
            let rules = RuleSet::parse(fixed, "r.yaml").unwrap();
            let c = rules.classify(facts(1, "node", "vite --port 5173"));
            assert_eq!(c.node_type, "service", "{fixed}");
        }
    }

    #[test]
    fn error_positions_count_leading_blank_lines() {
        let e = RuleSet::parse("\n\n- match_name: [x\n  type: y\n", "r.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at line 4, column 7"), "{e}");
        let e = RuleSet::parse("\n[{\"type\": 1,}]", "r.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn rule_count_is_capped() {
        let one = r#"{"match_pid": 1, "type": "app"}"#;
        let doc = |n: usize| format!("[{}]", vec![one; n].join(","));
        assert_eq!(
            RuleSet::parse(&doc(MAX_RULES), "r").unwrap().rules.len(),
            MAX_RULES
        );
        let e = RuleSet::parse(&doc(MAX_RULES + 1), "r")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10001 rules, more than the limit of 10000"),
            "{e}"
        );
    }
}
