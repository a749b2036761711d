//! The response writer: a buffered msgpack sink for object maps and streamed ndarrays
//! (PROTOCOL.md §4, §3.7), the counterpart of the decoders in this crate. The server writes
//! every response through it.

use std::io::{self, Write};

use crate::{Dtype, bin_header, encode_descriptor, ndarray_header_with_max_bin};
use rmp::encode;

/// Small writes are collected up to this size before being passed on.
const FLUSH_AT: usize = 64 * 1024;

/// Buffers small msgpack pieces and passes large payloads straight through.
pub struct Sink<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    /// Largest bin payload (normally [`MAX_BIN_LEN`](crate::MAX_BIN_LEN)).
    max_bin: u64,
    /// Bytes still expected in the currently open bin.
    bin_left: u64,
    /// Payload bytes still expected in the current ndarray.
    payload_left: u64,
}

impl<'a> Sink<'a> {
    /// A sink writing to `out`.
    pub fn new(out: &'a mut dyn Write, max_bin: u64) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(FLUSH_AT),
            max_bin: max_bin.max(1),
            bin_left: 0,
            payload_left: 0,
        }
    }

    /// Passes buffered bytes on when enough have been collected.
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Passes all buffered bytes on.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes a msgpack str.
    pub fn str(&mut self, s: &str) {
        self.str_bytes(s.as_bytes());
    }

    /// Writes raw bytes as a msgpack str.
    pub fn str_bytes(&mut self, s: &[u8]) {
        // Lengths above u32 cannot come from HDF5 names or strings we produce.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        let _ = encode::write_str_len(&mut self.buf, len);
        self.buf.extend_from_slice(&s[..len as usize]);
    }

    /// Writes an unsigned integer in its compact form.
    pub fn uint(&mut self, v: u64) {
        let _ = encode::write_uint(&mut self.buf, v);
    }

    /// Writes a map header.
    pub fn map(&mut self, n: u32) {
        let _ = encode::write_map_len(&mut self.buf, n);
    }

    /// Writes an array header.
    pub fn array(&mut self, n: u32) {
        let _ = encode::write_array_len(&mut self.buf, n);
    }

    /// Writes nil.
    pub fn nil(&mut self) {
        let _ = encode::write_nil(&mut self.buf);
    }

    /// Writes a boolean.
    pub fn bool(&mut self, v: bool) {
        let _ = encode::write_bool(&mut self.buf, v);
    }

    /// Writes pre-encoded msgpack bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.maybe_flush()
    }

    /// Writes the header of a fixed-size ndarray up to and including the `data` array
    /// header; the payload (`nbytes`) must follow through [`Sink::payload`].
    pub fn ndarray_header(&mut self, dtype: &Dtype, shape: &[u64], nbytes: u64) {
        let header = ndarray_header_with_max_bin(dtype, shape, nbytes, self.max_bin);
        self.buf.extend_from_slice(&header);
        self.payload_left = nbytes;
        self.bin_left = 0;
    }

    /// Writes the header of a vlen array; `n` elements must follow.
    pub fn vlen_header(&mut self, shape: &[u64], n: u32) {
        self.map(3);
        self.str("vlen");
        self.bool(true);
        self.str("shape");
        self.shape(shape);
        self.str("data");
        self.array(n);
    }

    /// Writes a shape array.
    pub fn shape(&mut self, shape: &[u64]) {
        self.array(shape.len() as u32);
        for &d in shape {
            self.uint(d);
        }
    }

    /// Streams payload bytes of the current ndarray, opening bins as needed.
    pub fn payload(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.bin_left == 0 {
                let len = self.payload_left.min(self.max_bin);
                if len == 0 {
                    return Err(io::Error::other("payload longer than announced"));
                }
                self.buf.extend_from_slice(&bin_header(len));
                self.bin_left = len;
            }
            let n = (data.len() as u64).min(self.bin_left) as usize;
            let (now, rest) = data.split_at(n);
            if n >= FLUSH_AT {
                self.flush()?;
                self.out.write_all(now)?;
            } else {
                self.buf.extend_from_slice(now);
                self.maybe_flush()?;
            }
            self.bin_left -= n as u64;
            self.payload_left -= n as u64;
            data = rest;
        }
        Ok(())
    }

    /// Writes the `"type"` descriptor of `dtype`.
    pub fn descriptor(&mut self, dtype: &Dtype) {
        self.buf.extend_from_slice(&encode_descriptor(dtype));
    }

    /// Payload bytes of the current ndarray not written yet.
    pub fn payload_left(&self) -> u64 {
        self.payload_left
    }
}
