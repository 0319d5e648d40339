//! Keeps `serve`'s typing rules current with the `--rules` file, on a
//! thread of its own: reading and parsing (up to 1 MiB and 10,000 rules) can
//! take a while, and the sampler must never wait for it. The thread looks
//! at the file's identity every [`POLL`]; when it changed it loads the file
//! and publishes the new [`RuleSet`], which the sampler picks up at its next
//! sample by cloning an `Arc`. A refused file is logged once and reported in
//! `/healthz` (`rulesError`) and the `status` event; the last good rules
//! stay in use.

use crate::rules::RuleSet;
use crate::serve::Shared;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the file's identity is looked at (one `stat`).
pub const POLL: Duration = Duration::from_millis(500);

/// What tells one version of the file from another. The mtime alone misses
/// an atomic replace (write a temporary file, rename it over) that keeps
/// the mtime, and an edit within the file system's mtime granularity: the
/// size, the inode and (on Unix) the ctime, which no program can set
/// back, catch those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    unix: (u64, u64, i64, i64),
}

impl FileIdentity {
    /// The identity of what `path` names now (following symlinks, so a
    /// swapped link target counts as a change); `None` when it cannot be
    /// seen.
    pub fn of(path: &std::path::Path) -> Option<FileIdentity> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileIdentity {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            unix: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
            },
        })
    }
}

/// The load decisions for one rules file, without the thread: what the
/// watcher thread does on each poll.
#[derive(Debug)]
pub struct RulesFile {
    path: PathBuf,
    /// The identity at the last load; `None` before the first poll, so the
    /// first poll loads the file (the start-up rules may be older: a
    /// restarted sampler, or an edit since start-up).
    seen: Option<Option<FileIdentity>>,
    /// The last refusal, cleared by a good load.
    error: Option<String>,
}

/// What a poll found.
#[derive(Debug)]
pub enum Change {
    /// The file changed and parsed: use these rules.
    Loaded(RuleSet),
    /// The file changed and was refused: keep the last good rules.
    Refused(String),
}

impl RulesFile {
    pub fn new(path: PathBuf) -> RulesFile {
        RulesFile {
            path,
            seen: None,
            error: None,
        }
    }

    /// The last refusal, if the newest version of the file was refused.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Loads the file if its identity changed since the last load.
    pub fn poll(&mut self) -> Option<Change> {
        // Identity first, then read: a write between the two makes the next
        // poll see a new identity and load again, so no edit is missed.
        let identity = FileIdentity::of(&self.path);
        if self.seen.as_ref() == Some(&identity) {
            return None;
        }
        let first = self.seen.is_none();
        self.seen = Some(identity);
        match RuleSet::load(&self.path) {
            Ok(rules) => {
                if first {
                    log::debug!("rules read from {}", self.path.display());
                } else {
                    log::info!(
                        "rules reloaded from {} ({} rules)",
                        self.path.display(),
                        rules.rules.len()
                    );
                }
                self.error = None;
                Some(Change::Loaded(rules))
            }
            Err(e) => {
                let msg = e.to_string();
                log::error!("{msg}; keeping the last good rules");
                self.error = Some(msg.clone());
                Some(Change::Refused(msg))
            }
        }
    }
}

/// The sampler's handle on the current rules. Dropping it stops the
/// watcher thread (also when the sampler unwinds from a panic, so a
/// restarted sampler does not leave a second watcher behind).
pub struct RulesWatcher {
    current: Arc<RwLock<Arc<RuleSet>>>,
    stop: Arc<AtomicBool>,
}

impl RulesWatcher {
    /// Starts watching `path` (no thread without one); `initial` serves
    /// until the first load.
    pub fn spawn(shared: Arc<Shared>, path: Option<PathBuf>, initial: RuleSet) -> RulesWatcher {
        let watcher = RulesWatcher {
            current: Arc::new(RwLock::new(Arc::new(initial))),
            stop: Arc::new(AtomicBool::new(false)),
        };
        if let Some(path) = path {
            let current = watcher.current.clone();
            let stop = watcher.stop.clone();
            let spawned = std::thread::Builder::new()
                .name("procnet-rules".into())
                .spawn(move || watch(RulesFile::new(path), &shared, &current, &stop));
            if let Err(e) = spawned {
                log::error!(
                    "cannot start the rules watcher: {e}; the rules file will not be reloaded"
                );
            }
        }
        watcher
    }

    /// The rules to use now. The lock is only ever held to swap or clone
    /// an `Arc`, so this does not wait for a load.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for RulesWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The watcher thread: poll, publish, report changes of the error state.
fn watch(mut file: RulesFile, shared: &Shared, current: &RwLock<Arc<RuleSet>>, stop: &AtomicBool) {
    let mut reported: Option<String> = None;
    while !stop.load(Ordering::Relaxed) && !shared.stopping.load(Ordering::Relaxed) {
        if let Some(Change::Loaded(rules)) = file.poll() {
            let rules = Arc::new(rules);
            *current.write().unwrap_or_else(|e| e.into_inner()) = rules;
        }
        if file.error() != reported.as_deref() {
            reported = file.error().map(str::to_string);
            shared.set_rules_error(reported.clone());
        }
        sleep(POLL, stop, shared);
    }
}

/// Sleeps `total`, waking early when told to stop.
fn sleep(total: Duration, stop: &AtomicBool, shared: &Shared) {
    let step = Duration::from_millis(50);
    let mut left = total;
    while !left.is_zero()
        && !stop.load(Ordering::Relaxed)
        && !shared.stopping.load(Ordering::Relaxed)
    {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &std::path::Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    fn label(change: Option<Change>) -> String {
        match change {
            Some(Change::Loaded(r)) => r.rules[0].label.clone().unwrap_or_default(),
            Some(Change::Refused(e)) => format!("refused: {e}"),
            None => "unchanged".into(),
        }
    }

    #[test]
    fn first_poll_loads_then_only_changes_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        write(&path, "- {match_pid: 1, type: a, label: One}\n");
        let mut file = RulesFile::new(path.clone());
        assert_eq!(label(file.poll()), "One");
        assert_eq!(label(file.poll()), "unchanged");
        // An edit in place, maybe within the same mtime tick.
        write(&path, "- {match_pid: 1, type: a, label: Second}\n");
        assert_eq!(label(file.poll()), "Second");
    }

    /// An atomic replace that keeps the mtime and the size: a new inode.
    /// (Unix: Windows has no inode number in stable std.)
    #[cfg(unix)]
    #[test]
    fn atomic_replace_with_the_same_mtime_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        write(&path, "- {match_pid: 1, type: a, label: One}\n");
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut file = RulesFile::new(path.clone());
        assert_eq!(label(file.poll()), "One");
        let tmp = dir.path().join("r.yaml.tmp");
        write(&tmp, "- {match_pid: 1, type: a, label: Two}\n");
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        assert_eq!(label(file.poll()), "Two");
    }

    #[test]
    fn a_refused_version_is_reported_once_and_cleared_by_a_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yaml");
        write(&path, "- {match_name: '/(/', type: a}\n");
        let mut file = RulesFile::new(path.clone());
        assert!(label(file.poll()).starts_with("refused: ") && file.error().is_some());
        assert_eq!(label(file.poll()), "unchanged", "logged once");
        assert!(file.error().unwrap().contains("invalid regex"));
        std::fs::remove_file(&path).unwrap();
        assert!(label(file.poll()).contains("cannot read it"));
        write(&path, "- {match_pid: 1, type: a, label: Good}\n");
        assert_eq!(label(file.poll()), "Good");
        assert_eq!(file.error(), None);
    }
}
