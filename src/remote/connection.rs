//! The real HTTP [`Connection`] as a [`Backend`], and `open` by URL or alias.

use std::io::Write;
use std::sync::Arc;

use hdfstream_protocol::{ArrayData, Dtype, Member, PathInfo, SliceSpec};

use super::{Backend, Node, OpenOptions, open_with};
use crate::{Connection, Result};

impl Backend for Connection {
    fn request_path(&self, vpath: &str) -> Result<PathInfo> {
        Connection::request_path(self, vpath)
    }
    fn request_object(
        &self,
        file: &str,
        object: &str,
        max_depth: u32,
        data_size_limit: u64,
    ) -> Result<Member> {
        Connection::request_object(self, file, object, max_depth, data_size_limit)
    }
    fn request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData> {
        Connection::request_slice(self, file, object, slice)
    }
    fn request_slice_into(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
        dest: &mut [u8],
    ) -> Result<()> {
        Connection::request_slice_into(self, file, object, slice, dtype, dest)
    }
    fn download(&self, vpath: &str, out: &mut dyn Write) -> Result<u64> {
        Connection::download(self, vpath, out)
    }
    fn request_slice_typed(
        &self,
        file: &str,
        object: &str,
        slice: &SliceSpec,
        dtype: &Dtype,
    ) -> Result<ArrayData> {
        Connection::request_slice_typed(self, file, object, slice, dtype)
    }
    fn download_to_path(&self, vpath: &str, dest: &std::path::Path) -> Result<u64> {
        Connection::download_to_path(self, vpath, dest)
    }
}

/// Opens a virtual path on a server given by URL or configured alias, like `hdfstream.open`.
///
/// One path request is made; a directory comes back with its listing loaded.
pub fn open(url_or_alias: &str, path: &str, options: OpenOptions) -> Result<Node> {
    let conn = Connection::open(url_or_alias)?;
    open_with(Arc::new(conn), path, options)
}
