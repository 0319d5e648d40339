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

use regex::{Regex, RegexBuilder};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// The keys a rule may have.
const RULE_KEYS: &[&str] = &["match_pid", "match_name", "match_cmd", "type", "label"];

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
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: shown.clone(),
            source,
        })?;
        RuleSet::parse(&text, &shown)
    }

    /// Parses rules from text. The format is decided by content: a document
    /// that starts with `[` or `{` is JSON, anything else YAML. `origin`
    /// names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<RuleSet, RulesError> {
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        let doc: Value = if trimmed.starts_with('[') || trimmed.starts_with('{') {
            serde_json::from_str(trimmed).map_err(|e| RulesError::Syntax {
                path: origin.to_string(),
                format: "JSON",
                message: e.to_string(),
            })?
        } else if trimmed.is_empty() {
            Value::Array(Vec::new())
        } else {
            serde_yaml::from_str(trimmed).map_err(|e| RulesError::Syntax {
                path: origin.to_string(),
                format: "YAML",
                message: e.to_string(),
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
}
