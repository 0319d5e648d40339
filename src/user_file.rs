//! Files named on the command line (`--rules`, `--token-file`, `snapshot
//! --from`): read as plain files with a size cap, never as whatever the path
//! happens to be. A FIFO would block the reader forever, `/dev/zero` or a
//! 50 MB file would exhaust memory, so only regular files are read, and at
//! most `cap + 1` bytes of them (one byte past the cap proves "too large"
//! without reading the rest).

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Why a user-named file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    /// Opening or reading failed (missing, permission, I/O).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A directory, FIFO, socket or device: reading it could block or never end.
    #[error("it is {kind}, not a regular file")]
    NotAFile { kind: &'static str },
    /// Bigger than the cap for this kind of file.
    #[error("it is larger than {}, the limit for {what}", human_size(*.cap))]
    TooLarge { cap: u64, what: &'static str },
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text (byte {valid_up_to} is not valid UTF-8)")]
    NotText { valid_up_to: usize },
}

/// Reads `path` as UTF-8 text if it is a regular file of at most `cap`
/// bytes. `what` names the kind of file in the too-large message ("a rules
/// file").
pub fn read_text(path: &Path, cap: u64, what: &'static str) -> Result<String, UserFileError> {
    let file = open_nonblocking(path)?;
    // The opened file's own metadata: no window in which the path could be
    // swapped for a FIFO between the check and the read.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(UserFileError::NotAFile {
            kind: kind_of(&meta.file_type()),
        });
    }
    if meta.len() > cap {
        return Err(UserFileError::TooLarge { cap, what });
    }
    let mut bytes = Vec::with_capacity(meta.len().min(cap) as usize);
    // The file may grow after the metadata was read: `take` bounds the read.
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(UserFileError::TooLarge { cap, what });
    }
    String::from_utf8(bytes).map_err(|e| UserFileError::NotText {
        valid_up_to: e.utf8_error().valid_up_to(),
    })
}

/// Opens for reading without blocking on a FIFO that has no writer (the
/// metadata check then refuses it).
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    "not a plain file"
}

/// `1 MiB`, `256 MiB`, `64 KiB`, or bytes.
pub fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read_text(&path, 5, "a test file").unwrap(), "hello");
        let e = read_text(&path, 4, "a test file").unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is larger than 4 bytes, the limit for a test file"
        );
    }

    #[test]
    fn refuses_directories_and_non_text() {
        let dir = tempfile::tempdir().unwrap();
        // Windows does not open a directory as a file at all (an I/O error).
        #[cfg(unix)]
        {
            let e = read_text(dir.path(), 10, "x").unwrap_err();
            assert_eq!(e.to_string(), "it is a directory, not a regular file");
        }
        let path = dir.path().join("bin");
        std::fs::write(&path, b"ab\xff").unwrap();
        assert!(matches!(
            read_text(&path, 10, "x"),
            Err(UserFileError::NotText { valid_up_to: 2 })
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn refuses_devices_without_reading_them() {
        let e = read_text(Path::new("/dev/zero"), 1 << 20, "x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "it is a character device, not a regular file"
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_size(256 << 20), "256 MiB");
        assert_eq!(human_size(64 << 10), "64 KiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}
