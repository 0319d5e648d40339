//! User names for uids, from `/etc/passwd`, parsed once and re-read only
//! when the file changes.

use std::collections::HashMap;
use std::time::SystemTime;

const PASSWD: &str = "/etc/passwd";

/// Parses `/etc/passwd` text into uid → name. Malformed lines are skipped;
/// the first entry for a uid wins (as `getpwuid` does).
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut f = line.split(':');
        let (Some(name), Some(_pw), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        if let Ok(uid) = uid.trim().parse::<u32>() {
            map.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    map
}

/// Cached uid → user name table.
#[derive(Default)]
pub struct UserNames {
    map: HashMap<u32, String>,
    mtime: Option<SystemTime>,
    loaded: bool,
}

impl UserNames {
    /// Re-reads `/etc/passwd` if it changed since the last call. Returns a
    /// warning when it cannot be read.
    pub fn refresh(&mut self) -> Option<String> {
        let mtime = std::fs::metadata(PASSWD).and_then(|m| m.modified()).ok();
        if self.loaded && mtime.is_some() && mtime == self.mtime {
            return None;
        }
        self.loaded = true;
        self.mtime = mtime;
        match std::fs::read(PASSWD) {
            Ok(bytes) => {
                self.map = parse_passwd(&String::from_utf8_lossy(&bytes));
                None
            }
            Err(e) => {
                self.map.clear();
                Some(format!("cannot read {PASSWD}: {e}; user names are missing"))
            }
        }
    }

    /// The name of `uid`, if known.
    pub fn name(&self, uid: u32) -> Option<&str> {
        self.map.get(&uid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_entries() {
        let m = parse_passwd("root:x:0:0:root:/root:/bin/bash\n#c\nbad\nnobody:x:65534:65534::/:/x\nroot2:x:0:0::/:/x\n");
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(m.len(), 2);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse_passwd(&s);
        }
    }
}
