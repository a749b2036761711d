//! Requests: the POST msgpack body and the GET query form (PROTOCOL.md §2, §5).

/// Most slices one request may carry (2^24).
pub const MAX_SLICES: usize = 1 << 24;
/// Most dimensions a slice may have.
pub const MAX_SLICE_DIMS: usize = 8;

/// A contiguous range `start .. start + count` along one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DimSelection {
    /// First index.
    pub start: u64,
    /// Number of indices (count, not stop).
    pub count: u64,
}

/// A multi-slice selection: several runs along dimension 0, one range in each other dimension.
///
/// `runs` is empty only for a rank-0 (scalar) selection. Rank = `1 + rest.len()` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SliceSpec {
    /// Runs along the first dimension, in request order.
    pub runs: Vec<DimSelection>,
    /// One range for each further dimension.
    pub rest: Vec<DimSelection>,
}

/// What a client asks of `/msgpack/<vpath>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRequest {
    /// HDF5 object path; `None` for directory and file requests.
    pub object: Option<String>,
    /// Group expansion depth.
    pub max_depth: Option<u32>,
    /// Inline datasets up to this many bytes.
    pub data_size_limit: Option<u64>,
    /// Selection to read.
    pub slice: Option<SliceSpec>,
}

/// Parameters as the server understood them, after validation (server side of `ObjectRequest`).
pub type RequestParams = ObjectRequest;
