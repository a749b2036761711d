//! The identity of one version of a file on disk, to notice a file truncated, rewritten,
//! replaced (renamed over) or deleted while it is open or being sent.
//!
//! A [`FileStamp`] holds the device, inode, size, and modification and status-change times.
//! While a file is held open its inode cannot be reused, so a replacement always shows as
//! another inode; a truncation as another size; a rewrite in place or a deletion (which
//! changes the status-change time) as other times, unless it happens within the file
//! system's timestamp granularity (a few milliseconds on Linux) of the stamp being taken.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// One version of a file (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file `path` names now (symbolic links followed).
    pub(crate) fn of_path(path: &Path) -> io::Result<Self> {
        std::fs::metadata(path).map(|m| Self::of(&m))
    }

    /// The stamp of an open file.
    pub(crate) fn of_file(file: &File) -> io::Result<Self> {
        file.metadata().map(|m| Self::of(&m))
    }

    #[cfg(unix)]
    fn of(meta: &Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(meta: &Metadata) -> Self {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| {
                (d.as_secs() as i64, i64::from(d.subsec_nanos()))
            });
        Self {
            dev: 0,
            ino: 0,
            len: meta.len(),
            mtime,
            ctime: (0, 0),
        }
    }

    /// Whether both stamps are of the same file (device and inode), in any version.
    pub(crate) fn same_file(&self, other: &FileStamp) -> bool {
        self.dev == other.dev && self.ino == other.ino && (self.dev, self.ino) != (0, 0)
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// `Ok` if `path` still names this version of the file, else a [`FileChanged`] error.
    pub(crate) fn check(&self, path: &Path) -> io::Result<()> {
        match Self::of_path(path) {
            Ok(now) if now == *self => Ok(()),
            _ => Err(io::Error::other(FileChanged)),
        }
    }
}

/// A file changed (or went away) while it was being read.
#[derive(Debug)]
pub(crate) struct FileChanged;

impl std::fmt::Display for FileChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file changed while it was being read")
    }
}

impl std::error::Error for FileChanged {}

/// Whether `error` is (or wraps) [`FileChanged`].
pub(crate) fn is_changed(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<FileChanged>())
}

/// The error for a file that changed while it was being read: 503, since the same request
/// made again reads the new version (or gets a 404 if the file is gone).
pub(crate) fn changed_error() -> hdfstream_protocol::RequestError {
    hdfstream_protocol::RequestError {
        status: 503,
        message: "The file changed while it was being read; try again".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_sees_truncation_rewrite_replacement_and_deletion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let stamp = FileStamp::of_path(&path).expect("stamp");
        assert_eq!(stamp.len(), 10);
        stamp.check(&path).expect("unchanged");
        let open = File::open(&path).expect("open");
        assert_eq!(FileStamp::of_file(&open).expect("stamp"), stamp);

        let truncated = File::options().write(true).open(&path).expect("open");
        truncated.set_len(4).expect("truncate");
        assert!(is_changed(&stamp.check(&path).expect_err("truncated")));

        let stamp = FileStamp::of_path(&path).expect("stamp");
        let other = dir.path().join("g");
        std::fs::write(&other, b"abcd").expect("write");
        std::fs::rename(&other, &path).expect("replace");
        assert!(is_changed(&stamp.check(&path).expect_err("replaced")));

        let stamp = FileStamp::of_path(&path).expect("stamp");
        std::fs::remove_file(&path).expect("delete");
        assert!(is_changed(&stamp.check(&path).expect_err("deleted")));
        assert!(!is_changed(&io::Error::other("unrelated")));
    }
}
