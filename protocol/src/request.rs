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

use crate::RequestError;
use crate::wire::{Reader, WriteExt};

/// Longest object name the reference configuration accepts (`max_hdf5_name_length`).
pub const MAX_OBJECT_NAME_LEN: usize = 4096;
/// Longest slice string accepted (8 MiB).
pub const MAX_SLICE_STRING_LEN: usize = 8 << 20;
/// Most entries a POST body map may have.
pub const MAX_PARAMS: usize = 4;

fn bad(message: impl Into<String>) -> RequestError {
    RequestError {
        status: 400,
        message: message.into(),
    }
}

fn not_found(message: impl Into<String>) -> RequestError {
    RequestError {
        status: 404,
        message: message.into(),
    }
}

fn undecodable(detail: impl std::fmt::Display) -> RequestError {
    bad(format!("Unable to decode request: {detail}"))
}

/// A msgpack decoding failure of the body, described for a request.
fn undecodable_msgpack(e: crate::DecodeError) -> RequestError {
    use crate::DecodeError as E;
    match e {
        E::Truncated { .. } => undecodable("unexpected end of input"),
        E::TrailingBytes { extra } => undecodable(format!("{extra} bytes after the request map")),
        E::Malformed { what, detail } => undecodable(format!("{what}: {detail}")),
        other => undecodable(other),
    }
}

impl DimSelection {
    /// `start .. start + count`.
    pub fn new(start: u64, count: u64) -> Self {
        DimSelection { start, count }
    }

    /// One past the last index, `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.start.checked_add(self.count)
    }
}

impl SliceSpec {
    /// A selection of `runs` along dimension 0 and one range in each of the `rest`.
    pub fn new(runs: Vec<DimSelection>, rest: Vec<DimSelection>) -> Self {
        SliceSpec { runs, rest }
    }

    /// The rank-0 selection of a scalar dataset.
    pub fn scalar() -> Self {
        SliceSpec {
            runs: Vec::new(),
            rest: Vec::new(),
        }
    }

    /// A single hyperslab: one range per dimension (empty for a scalar).
    pub fn hyperslab(ranges: &[DimSelection]) -> Self {
        match ranges.split_first() {
            Some((first, rest)) => SliceSpec {
                runs: vec![*first],
                rest: rest.to_vec(),
            },
            None => SliceSpec::scalar(),
        }
    }

    /// Number of dimensions (0 for a scalar selection).
    pub fn rank(&self) -> usize {
        if self.runs.is_empty() {
            0
        } else {
            1 + self.rest.len()
        }
    }

    /// Shape of the response: `[Σ run counts, count_1, ...]`, `[]` for a scalar.
    pub fn result_shape(&self) -> Vec<u64> {
        if self.runs.is_empty() {
            return Vec::new();
        }
        let first = self
            .runs
            .iter()
            .fold(0u64, |a, r| a.saturating_add(r.count));
        std::iter::once(first)
            .chain(self.rest.iter().map(|r| r.count))
            .collect()
    }

    /// Number of selected elements (saturating; 1 for a scalar).
    pub fn element_count(&self) -> u64 {
        self.result_shape()
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// The msgpack `slice` value the Python client sends (PROTOCOL.md §5.1): one run gives
    /// `[[start, count], [s1, c1], ...]`, several runs `[[[starts], [counts]], [s1, c1], ...]`,
    /// a scalar `[]`.
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put(&mut out);
        out
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.put_array_len(self.rank());
        match self.runs.as_slice() {
            [] => return,
            [one] => {
                out.put_array_len(2);
                out.put_uint(one.start);
                out.put_uint(one.count);
            }
            runs => {
                out.put_array_len(2);
                out.put_array_len(runs.len());
                runs.iter().for_each(|r| out.put_uint(r.start));
                out.put_array_len(runs.len());
                runs.iter().for_each(|r| out.put_uint(r.count));
            }
        }
        for r in &self.rest {
            out.put_array_len(2);
            out.put_uint(r.start);
            out.put_uint(r.count);
        }
    }

    /// The string form (PROTOCOL.md §5.2): `start:stop` per dimension joined by `,`,
    /// slices joined by `;`; `""` for a scalar.
    pub fn to_query_string(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for (i, run) in self.runs.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            for (j, d) in std::iter::once(run).chain(&self.rest).enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{}:{}", d.start, d.start.saturating_add(d.count));
            }
        }
        s
    }

    /// Parse the string form with the reference server's rules and messages (400 errors).
    pub fn parse_str(s: &str) -> Result<SliceSpec, RequestError> {
        if s.len() > MAX_SLICE_STRING_LEN {
            return Err(bad("Slice string is too long"));
        }
        if s.trim().is_empty() {
            return Ok(SliceSpec::scalar());
        }
        let mut runs = Vec::new();
        let mut rest: Option<Vec<DimSelection>> = None;
        for (i, slice) in s.split(';').enumerate() {
            if i >= MAX_SLICES {
                return Err(bad("Too many slices"));
            }
            let mut dims = Vec::new();
            for (j, dim) in slice.split(',').enumerate() {
                if j >= MAX_SLICE_DIMS {
                    return Err(bad("Too many dimensions"));
                }
                dims.push(parse_dim(dim)?);
            }
            let (first, others) = dims.split_first().expect("split yields at least one item");
            match &rest {
                None => rest = Some(others.to_vec()),
                Some(r) if r.len() != others.len() => {
                    return Err(bad("All slices must have the same number of dimensions"));
                }
                Some(r) if r.as_slice() != others => {
                    return Err(bad("Slices may only differ in the first dimension"));
                }
                Some(_) => {}
            }
            runs.push(*first);
        }
        Ok(SliceSpec {
            runs,
            rest: rest.unwrap_or_default(),
        })
    }

    /// Check the selection against a dataset shape as the reference C library does
    /// (PROTOCOL.md §5.3): same rank, every range inside the dataset, runs ascending and
    /// not overlapping (touching is fine). Violations are `404`.
    pub fn check_against(&self, shape: &[u64]) -> Result<(), RequestError> {
        let fail = || not_found("Failed to open dataset slice");
        if self.rank() != shape.len() || (self.runs.is_empty() && !self.rest.is_empty()) {
            return Err(fail());
        }
        let Some((&dim0, dims)) = shape.split_first() else {
            return Ok(());
        };
        for (r, &d) in self.rest.iter().zip(dims) {
            if r.end().is_none_or(|e| e > d) {
                return Err(fail());
            }
        }
        let mut next = 0u64;
        for r in &self.runs {
            let end = r.end().ok_or_else(fail)?;
            if end > dim0 || r.start < next {
                return Err(fail());
            }
            next = end;
        }
        Ok(())
    }
}

/// Parse one `start:stop` or `i` of the string form.
fn parse_dim(dim: &str) -> Result<DimSelection, RequestError> {
    fn index(s: &str, which: &str) -> Result<u64, RequestError> {
        let t = s.trim();
        let digits = t.strip_prefix('+').unwrap_or(t);
        if let Some(neg) = digits.strip_prefix('-')
            && !neg.is_empty()
            && neg.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad("Slice indexes must not be negative"));
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("Unable to parse {which} index as integer")));
        }
        digits
            .parse::<i64>()
            .map(|v| v as u64)
            .map_err(|_| bad(format!("Unable to parse {which} index as integer")))
    }
    match dim.split_once(':') {
        Some((a, b)) => {
            let start = index(a, "start")?;
            let stop = index(b, "stop")?;
            if stop < start {
                return Err(bad("Slice stop index must not be less than start index"));
            }
            Ok(DimSelection {
                start,
                count: stop - start,
            })
        }
        None => {
            let i = index(dim, "start")?;
            Ok(DimSelection { start: i, count: 1 })
        }
    }
}

/// Check an object name as the reference servlet does.
pub fn validate_object_name(name: &str) -> Result<(), RequestError> {
    if name.encode_utf16().count() > MAX_OBJECT_NAME_LEN {
        return Err(bad("Object name is too long"));
    }
    if !name.encode_utf16().all(|u| (32..=127).contains(&u)) {
        return Err(bad(
            "Object names must contain printable ascii characters only",
        ));
    }
    Ok(())
}

impl ObjectRequest {
    /// A path request (directory listing or file metadata): body `{}`.
    pub fn path() -> Self {
        ObjectRequest::default()
    }

    /// An object request with the client's expansion parameters.
    pub fn object(name: impl Into<String>, data_size_limit: u64, max_depth: u32) -> Self {
        ObjectRequest {
            object: Some(name.into()),
            max_depth: Some(max_depth),
            data_size_limit: Some(data_size_limit),
            slice: None,
        }
    }

    /// A slice request.
    pub fn slice(name: impl Into<String>, slice: SliceSpec) -> Self {
        ObjectRequest {
            object: Some(name.into()),
            max_depth: None,
            data_size_limit: None,
            slice: Some(slice),
        }
    }

    /// The POST body, byte for byte as the Python client writes it (PROTOCOL.md §2.4):
    /// present fields in the order `object`, `data_size_limit`, `max_depth`, `slice`, so an
    /// object request is `{"object", "data_size_limit", "max_depth"}`, a slice request
    /// `{"object", "slice"}` and a path request `{}` (`0x80`).
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let n = usize::from(self.object.is_some())
            + usize::from(self.data_size_limit.is_some())
            + usize::from(self.max_depth.is_some())
            + usize::from(self.slice.is_some());
        out.put_map_len(n);
        if let Some(o) = &self.object {
            out.put_str(b"object");
            out.put_str(o.as_bytes());
        }
        if let Some(l) = self.data_size_limit {
            out.put_str(b"data_size_limit");
            out.put_uint(l);
        }
        if let Some(d) = self.max_depth {
            out.put_str(b"max_depth");
            out.put_uint(u64::from(d));
        }
        if let Some(s) = &self.slice {
            out.put_str(b"slice");
            s.put(&mut out);
        }
        out
    }

    /// Parse and validate a POST body as the reference server does (PROTOCOL.md §2.2,
    /// §5.1), with its status codes and messages. Never allocates from declared lengths.
    pub fn decode_body(body: &[u8]) -> Result<ObjectRequest, RequestError> {
        let mut r = Reader::new(body);
        let n = r.read_map_len("request").map_err(undecodable_msgpack)?;
        if n > MAX_PARAMS {
            return Err(bad("Too many parameters in msgpack request"));
        }
        let mut req = ObjectRequest::default();
        let mut seen: Vec<&[u8]> = Vec::with_capacity(n);
        for _ in 0..n {
            let key = r.read_str("parameter name").map_err(undecodable_msgpack)?;
            if seen.contains(&key) {
                return Err(bad(format!(
                    "Duplicate parameter: {}",
                    String::from_utf8_lossy(key)
                )));
            }
            seen.push(key);
            match key {
                b"object" => {
                    req.object = Some(r.read_string("object").map_err(undecodable_msgpack)?)
                }
                b"max_depth" => {
                    let v = r.read_int("max_depth").map_err(undecodable_msgpack)?;
                    let v = i32::try_from(v).map_err(|_| undecodable("max_depth out of range"))?;
                    if v < 0 {
                        return Err(bad("max_depth must not be negative"));
                    }
                    req.max_depth = Some(v as u32);
                }
                b"data_size_limit" => {
                    let v = r.read_int("data_size_limit").map_err(undecodable_msgpack)?;
                    let v = i64::try_from(v)
                        .map_err(|_| undecodable("data_size_limit out of range"))?;
                    if v < 0 {
                        return Err(bad("data_size_limit must not be negative"));
                    }
                    req.data_size_limit = Some(v as u64);
                }
                b"slice" => {
                    req.slice = Some(match r.peek().map_err(undecodable_msgpack)? {
                        0xa0..=0xbf | 0xd9..=0xdb => {
                            let s = r.read_string("slice").map_err(undecodable_msgpack)?;
                            SliceSpec::parse_str(&s)?
                        }
                        _ => read_slice(&mut r)?,
                    })
                }
                other => {
                    return Err(bad(format!(
                        "Unrecognized parameter: {}",
                        String::from_utf8_lossy(other)
                    )));
                }
            }
        }
        r.finish().map_err(undecodable_msgpack)?;
        req.validate()?;
        Ok(req)
    }

    /// Parse a GET query string (without `?`) as the reference server does (PROTOCOL.md
    /// §2.3): `application/x-www-form-urlencoded` (`+` is a space, malformed escapes are kept
    /// literally), unknown parameters ignored, the first of repeated ones used.
    pub fn from_query(query: &str) -> Result<ObjectRequest, RequestError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if !params.iter().any(|(seen, _)| *seen == k) {
                params.push((k.into_owned(), v.into_owned()));
            }
        }
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let int = |name: &str| -> Result<Option<u32>, RequestError> {
            let Some(v) = get(name) else { return Ok(None) };
            let n = java_parse_int(v)
                .ok_or_else(|| bad(format!("Unable to interpret {name} parameter as integer")))?;
            if n < 0 {
                return Err(bad(format!("{name} must not be negative")));
            }
            Ok(Some(n as u32))
        };
        let req = ObjectRequest {
            object: get("object").map(str::to_owned),
            max_depth: int("max_depth")?,
            data_size_limit: int("data_size_limit")?.map(u64::from),
            slice: get("slice").map(SliceSpec::parse_str).transpose()?,
        };
        req.validate()?;
        Ok(req)
    }

    /// Rules shared by POST and GET: object name, `slice` needs `object`.
    fn validate(&self) -> Result<(), RequestError> {
        if let Some(o) = &self.object {
            validate_object_name(o)?;
        }
        if self.slice.is_some() && self.object.is_none() {
            return Err(bad("Can't specify slicing parameters without object name"));
        }
        Ok(())
    }
}

/// Java `Integer.parseInt`: optional sign, ASCII digits, int32 range.
fn java_parse_int(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An integer of a msgpack slice: 400 if not an integer, 404 if negative (as the reference
/// C library rejects negatives after the Java decoder let them through).
fn slice_int(r: &mut Reader<'_>, what: &str) -> Result<u64, RequestError> {
    match r.peek().map_err(undecodable_msgpack)? {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => {}
        _ => return Err(bad(format!("Slice {what} must be an integer"))),
    }
    let v = r.read_int("slice").map_err(undecodable_msgpack)?;
    let v = i64::try_from(v).map_err(|_| undecodable("slice index out of range"))?;
    u64::try_from(v)
        .map_err(|_| not_found(format!("Negative {what} parameter in openDatasetSlice")))
}

/// `int` or `[int, ...]` of a slice dimension; at most `MAX_SLICES` entries.
fn slice_ints(r: &mut Reader<'_>, what: &str) -> Result<Vec<u64>, RequestError> {
    match r.peek().map_err(undecodable_msgpack)? {
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = r.read_array_len("slice").map_err(undecodable_msgpack)?;
            if n == 0 {
                return Err(bad("Start and count arrays must not have zero length"));
            }
            if n > MAX_SLICES {
                return Err(bad("Too many slices"));
            }
            (0..n).map(|_| slice_int(r, what)).collect()
        }
        _ => Ok(vec![slice_int(r, what)?]),
    }
}

/// The msgpack form of `slice` (PROTOCOL.md §5.1).
fn read_slice(r: &mut Reader<'_>) -> Result<SliceSpec, RequestError> {
    let rank = match r.peek().map_err(undecodable_msgpack)? {
        0x90..=0x9f | 0xdc | 0xdd => r.read_array_len("slice").map_err(undecodable_msgpack)?,
        _ => return Err(undecodable("slice must be an array or a string")),
    };
    if rank > MAX_SLICE_DIMS {
        return Err(bad("Too many dimensions"));
    }
    let mut runs = Vec::new();
    let mut rest = Vec::with_capacity(rank);
    for dim in 0..rank {
        let two = match r.peek().map_err(undecodable_msgpack)? {
            0x90..=0x9f | 0xdc | 0xdd => r.read_array_len("slice").map_err(undecodable_msgpack)?,
            _ => 0,
        };
        if two != 2 {
            return Err(bad("Expected two element array for each slice dimension"));
        }
        let starts = slice_ints(r, "start")?;
        let counts = slice_ints(r, "count")?;
        if dim == 0 {
            if counts.len() > 1 && counts.len() != starts.len() {
                return Err(bad("Start and count arrays must have the same length"));
            }
            runs = starts
                .iter()
                .enumerate()
                .map(|(i, &start)| DimSelection {
                    start,
                    count: counts[if counts.len() > 1 { i } else { 0 }],
                })
                .collect();
        } else {
            if starts.len() > 1 || counts.len() > 1 {
                return Err(bad("Slices may only differ in the first dimension"));
            }
            rest.push(DimSelection {
                start: starts[0],
                count: counts[0],
            });
        }
    }
    Ok(SliceSpec { runs, rest })
}
