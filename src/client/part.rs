//! A local file written under a temporary name and renamed onto its destination once
//! complete, so an interrupted write never leaves a file that looks whole.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written at `.<name>.<pid>-<n>.part` next to its destination: renamed onto
/// the destination by [`PartFile::persist`], removed when dropped before that.
#[derive(Debug)]
pub(crate) struct PartFile {
    file: File,
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl PartFile {
    /// Creates the temporary file in `dest`'s directory (which must exist).
    pub(crate) fn create(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .ok_or_else(|| Error::InvalidPath {
                path: dest.display().to_string(),
                reason: "a file destination needs a file name".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    return Ok(PartFile {
                        file,
                        tmp,
                        dest: dest.to_path_buf(),
                        done: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        context: format!("creating {}", tmp.display()),
                        source,
                    });
                }
            }
        }
    }

    /// Where the bytes go.
    pub(crate) fn writer(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary path (tests).
    #[cfg(test)]
    pub(crate) fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// Empties the file to write it again from the start.
    pub(crate) fn truncate(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(drop))
            .map_err(|source| self.io_error("truncating", source))
    }

    /// Flushes the file to disk and renames it onto the destination.
    pub(crate) fn persist(mut self) -> Result<()> {
        self.file
            .flush()
            .and_then(|()| self.file.sync_all())
            .map_err(|source| self.io_error("writing", source))?;
        std::fs::rename(&self.tmp, &self.dest).map_err(|source| Error::Io {
            context: format!("renaming {} to {}", self.tmp.display(), self.dest.display()),
            source,
        })?;
        self.done = true;
        Ok(())
    }

    fn io_error(&self, doing: &str, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("{doing} {}", self.tmp.display()),
            source,
        }
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = std::fs::remove_file(&self.tmp)
        {
            tracing::warn!(path = %self.tmp.display(), error = %e, "could not remove a partial file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_file_replaces_destination_and_dropped_one_vanishes() {
        let dir = std::env::temp_dir().join(format!("hdfstream-part-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.bin");
        std::fs::write(&dest, b"old").unwrap();

        let mut part = PartFile::create(&dest).unwrap();
        let tmp = part.tmp_path().to_path_buf();
        assert_eq!(tmp.parent(), Some(dir.as_path()), "same directory");
        part.writer().write_all(b"partial").unwrap();
        drop(part);
        assert!(!tmp.exists(), "an unfinished file is removed");
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            b"old",
            "destination untouched"
        );

        let mut part = PartFile::create(&dest).unwrap();
        part.writer().write_all(b"first try").unwrap();
        part.truncate().unwrap();
        part.writer().write_all(b"new").unwrap();
        let tmp = part.tmp_path().to_path_buf();
        part.persist().unwrap();
        assert!(!tmp.exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
