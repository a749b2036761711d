//! Response messages (PROTOCOL.md §3).

use crate::{ArrayData, Dtype};

/// Media type the server reports for HDF5 files.
pub const HDF5_MEDIA_TYPE: &str = "application/x-hdf5";

/// Attributes of a group or dataset, in the order the server sent them.
pub type Attributes = Vec<(String, ArrayData)>;

/// Metadata of one file in a directory listing (PROTOCOL.md §3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Media type from the server configuration, e.g. `application/x-hdf5`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// A directory listing (PROTOCOL.md §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryInfo {
    /// Total bytes of all visible files below this directory.
    pub size: u64,
    /// Optional Markdown description.
    pub description: Option<String>,
    /// Optional short labels keyed by entry name.
    pub labels: Option<Vec<(String, String)>>,
    /// Files in server order.
    pub files: Vec<(String, FileInfo)>,
    /// Subdirectories in server order; `None` when not expanded.
    pub directories: Vec<(String, Option<DirectoryInfo>)>,
}

/// An HDF5 group (PROTOCOL.md §3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    /// Attributes in server order.
    pub attributes: Attributes,
    /// Links in server order; `None` where the server did not expand the member.
    pub members: Vec<(String, Option<Member>)>,
}

/// An HDF5 dataset (PROTOCOL.md §3.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Attributes in server order.
    pub attributes: Attributes,
    /// Element type (from `type` and `kind`).
    pub dtype: Dtype,
    /// Dimensions; empty for a scalar dataspace.
    pub shape: Vec<u64>,
    /// Whole contents when the server inlined them under `data_size_limit`.
    pub data: Option<ArrayData>,
}

/// One HDF5 object as it appears in an object response or as a group member.
#[derive(Debug, Clone, PartialEq)]
pub enum Member {
    /// A group.
    Group(GroupInfo),
    /// A dataset.
    Dataset(DatasetInfo),
    /// A soft link, never dereferenced by the server.
    SoftLink {
        /// The link value (may be dangling).
        target: String,
    },
    /// A named datatype or unknown link class.
    Unknown,
}

/// Answer of a path request (`/msgpack/<vpath>` without `object`).
#[derive(Debug, Clone, PartialEq)]
pub enum PathInfo {
    /// The path is a directory.
    Directory(DirectoryInfo),
    /// The path is a file.
    File(FileInfo),
}

/// Any successful `/msgpack` response, decoded according to what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// Directory or file metadata.
    Path(PathInfo),
    /// An HDF5 object.
    Object(Member),
    /// Slice contents.
    Array(ArrayData),
}
