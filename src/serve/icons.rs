//! `--icons-dir`: which file answers `/icons/<type>.png`, and the index of
//! the types that have one (`/api/icons`), so the page asks only for icons
//! that exist instead of collecting a 404 per type.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// The file that stands in for any type without its own icon.
pub const FALLBACK: &str = "service.png";

/// At most this many types are listed (a directory is the user's, but an
/// index of a huge one would be a huge response on every page load).
const MAX_TYPES: usize = 1024;

/// `GET /api/icons`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct IconIndex {
    /// Types whose `/icons/<type>.png` is a file of their own (or an alias).
    pub types: Vec<String>,
    /// `service.png` exists: every other type gets it.
    pub fallback: bool,
}

/// A type name that can be a file name here: never a path.
pub fn valid_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The original tool's icon files for these two types were `mq.png` and
/// `lb.png`; both spellings are accepted.
fn alias(kind: &str) -> Option<&'static str> {
    match kind {
        "message_broker" => Some("mq"),
        "load_balancer" => Some("lb"),
        "mq" => Some("message_broker"),
        "lb" => Some("load_balancer"),
        _ => None,
    }
}

/// The files tried for a type, in order: its own, its alias, the fallback.
pub fn candidates(kind: &str) -> Vec<String> {
    let mut out = vec![format!("{kind}.png")];
    out.extend(alias(kind).map(|a| format!("{a}.png")));
    out.push(FALLBACK.to_string());
    out
}

/// Which types `dir` has icons for. A missing or unreadable directory has none.
pub fn index(dir: &Path) -> IconIndex {
    let mut types: Vec<String> = Vec::new();
    let mut fallback = false;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten().take(16 * MAX_TYPES) {
            let name = entry.file_name();
            let Some(kind) = name.to_str().and_then(|n| n.strip_suffix(".png")) else {
                continue;
            };
            if !valid_type(kind) || !is_file(&entry.path()) {
                continue;
            }
            if kind == "service" {
                fallback = true;
            }
            types.push(kind.to_string());
            types.extend(alias(kind).map(String::from));
        }
    }
    types.sort();
    types.dedup();
    types.truncate(MAX_TYPES);
    IconIndex { types, fallback }
}

fn is_file(path: &PathBuf) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_files_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["database.png", "mq.png", "notes.txt", "bad name.png"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("cache.png")).unwrap();
        let i = index(dir.path());
        assert_eq!(i.types, ["database", "message_broker", "mq"]);
        assert!(!i.fallback);
        std::fs::write(dir.path().join("service.png"), b"x").unwrap();
        assert!(index(dir.path()).fallback);
        assert_eq!(index(&dir.path().join("missing")), IconIndex::default());
    }

    #[test]
    fn type_names_are_never_paths() {
        for bad in ["", "../x", "a/b", "a.b", "x\0"] {
            assert!(!valid_type(bad), "{bad:?}");
        }
        assert!(valid_type("message_broker"));
        assert_eq!(
            candidates("lb"),
            ["lb.png", "load_balancer.png", "service.png"]
        );
    }
}
