//! Tar archives of a directory, streamed with a `Content-Length` known in advance.
//!
//! Layout: for each file a GNU header (preceded by a `././@LongLink` entry when the name
//! exceeds 100 bytes), the file bytes, zero padding to 512; then two zero records, and zero
//! padding to a multiple of the 10240-byte blocking factor, like the reference server.

use std::io::{self, Write};

use tar::{EntryType, Header};

use super::stream::ChunkWriter;
use crate::vfs::TreeFile;

const RECORD: u64 = 512;
const BLOCKING: u64 = 10240;
const NAME_FIELD: usize = 100;

fn padding(len: u64) -> u64 {
    (RECORD - len % RECORD) % RECORD
}

fn set_name(header: &mut Header, name: &[u8]) {
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(NAME_FIELD);
    field[..n].copy_from_slice(&name[..n]);
}

/// Header records for one entry.
fn entry_header(name: &str, size: u64, mtime: u64) -> Vec<u8> {
    let name = name.as_bytes();
    let mut out = Vec::with_capacity(1024);
    if name.len() > NAME_FIELD {
        let mut long = Header::new_gnu();
        set_name(&mut long, b"././@LongLink");
        long.set_mode(0o644);
        long.set_size(name.len() as u64 + 1);
        long.set_entry_type(EntryType::GNULongName);
        long.set_mtime(0);
        long.set_cksum();
        out.extend_from_slice(long.as_bytes());
        out.extend_from_slice(name);
        out.push(0);
        out.resize(out.len() + padding(name.len() as u64 + 1) as usize, 0);
    }
    let mut header = Header::new_gnu();
    set_name(&mut header, name);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(mtime);
    header.set_entry_type(EntryType::Regular);
    header.set_cksum();
    out.extend_from_slice(header.as_bytes());
    out
}

/// A tar archive planned from a file list.
pub(crate) struct TarPlan {
    entries: Vec<(Vec<u8>, TreeFile)>,
    len: u64,
}

impl TarPlan {
    /// Plan an archive whose entry names are `<prefix>/<relative path>`.
    pub(crate) fn new(prefix: &str, files: Vec<TreeFile>) -> Self {
        let mut len = 0u64;
        let entries: Vec<(Vec<u8>, TreeFile)> = files
            .into_iter()
            .map(|file| {
                let header = entry_header(
                    &format!("{prefix}/{}", file.relative),
                    file.size,
                    file.mtime_s,
                );
                len += header.len() as u64 + file.size + padding(file.size);
                (header, file)
            })
            .collect();
        len += 2 * RECORD;
        len += (BLOCKING - len % BLOCKING) % BLOCKING;
        Self { entries, len }
    }

    /// Exact archive size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Write the archive; fails if a file changed since the plan was made or while it was
    /// copied ([`crate::stamp::FileChanged`]).
    pub(crate) fn write(&self, out: &mut ChunkWriter) -> io::Result<()> {
        let mut written = 0u64;
        let zeros = [0u8; RECORD as usize];
        for (header, file) in &self.entries {
            out.write_all(header)?;
            out.copy_file(&file.real, file.size)?;
            let pad = padding(file.size) as usize;
            out.write_all(&zeros[..pad])?;
            written += header.len() as u64 + file.size + pad as u64;
        }
        let mut rest = self.len - written;
        while rest > 0 {
            let n = rest.min(RECORD);
            out.write_all(&zeros[..n as usize])?;
            rest -= n;
        }
        Ok(())
    }
}
