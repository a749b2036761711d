//! HTTP connection to an hdfstream server: auth, configuration, retries, progress.
//!
//! Contract used by `crate::remote` (kept stable while layers are built in parallel):
//! ```text
//! Connection::request_path(&self, vpath: &str) -> Result<PathInfo>
//! Connection::request_object(&self, file: &str, object: &str, max_depth: u32, data_size_limit: u64) -> Result<Member>
//! Connection::request_slice(&self, file: &str, object: &str, slice: &SliceSpec) -> Result<ArrayData>
//! Connection::request_slice_into(&self, file: &str, object: &str, slice: &SliceSpec, dtype: &Dtype, dest: &mut [u8]) -> Result<()>
//! Connection::download(&self, vpath: &str, out: &mut dyn std::io::Write) -> Result<u64>
//! ```
