//! Streaming (sans-IO) decoding of ndarray responses (PROTOCOL.md §4, §4.1); see [`ArrayDecoder`].

use std::io::{ErrorKind, Read};

use crate::codec::{alloc_error, check_nd_header, decode_array, read_shape};
use crate::wire::{Reader, malformed};
use crate::{ArrayData, DecodeError, Dtype, NdArray, ReadError, TypedBuffer};

/// The fast-path prefix: fixmap of 6, `"nd"`, `true`.
pub const NDARRAY_PREFIX: [u8; 5] = [0x86, 0xa2, 0x6e, 0x64, 0xc3];

/// Headers longer than this are decoded on the buffered path instead.
const HEADER_LIMIT: usize = 64 * 1024;

/// How many bytes the header parser asks for at a time.
const HEADER_READ: usize = 512;

/// Read size on the buffered path.
const FALLBACK_READ: usize = 64 * 1024;

/// Payloads up to this size are allocated whole when their header arrives, unless the
/// caller says otherwise ([`ArrayDecoder::with_preallocation_limit`]).
const DEFAULT_PREALLOCATION_LIMIT: u64 = 64 * 1024;

/// Smallest step, in bytes, by which a buffer that grows with its payload grows.
const MIN_GROWTH: usize = 64 * 1024;

/// What an ndarray header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayHeader {
    /// Element type as sent.
    pub dtype: Dtype,
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    /// Payload bytes.
    pub nbytes: u64,
}

/// A decoder that is pushed a body incrementally (implemented by [`ArrayDecoder`] and
/// [`ArrayIntoDecoder`]).
///
/// The fastest loop asks [`payload_slot`](Self::payload_slot) first and reads into it,
/// falling back to [`feed`](Self::feed) with at most [`wanted`](Self::wanted) bytes; see
/// [`decode_array_from_reader`].
pub trait PushDecoder {
    /// Consume a chunk of the body (any size, any boundary). Returns `chunk.len()`: the
    /// whole chunk is always consumed. Errors are final: later calls fail too.
    fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError>;

    /// Where the next payload bytes go, when the decoder is inside a bin: the caller may
    /// write up to `len()` body bytes there and then call [`advance`](Self::advance).
    /// `None` while the decoder expects header bytes (use [`feed`](Self::feed)).
    fn payload_slot(&mut self) -> Option<&mut [u8]>;

    /// Record that the first `n` bytes of the last [`payload_slot`](Self::payload_slot)
    /// were filled with body bytes.
    ///
    /// # Panics
    /// If there is no payload slot or `n` exceeds its length (a caller bug).
    fn advance(&mut self, n: usize) -> Result<(), DecodeError>;

    /// A good number of bytes to read next when there is no payload slot: the exact rest
    /// of a bin header, a small read (512 bytes) while the map header is parsed (payload
    /// bytes that come with it are copied by `feed`), 64 KiB on the buffered path, and 1
    /// after the end (any byte then is an error).
    fn wanted(&self) -> usize;

    /// The header, once parsed on the fast path.
    fn header(&self) -> Option<&ArrayHeader>;
}

enum State {
    /// Accumulating the map header in `head`.
    Header,
    /// Inside a bin header: `buf[..have]` read so far, `need` = full header length (0 until
    /// the marker is known).
    BinHeader { buf: [u8; 5], have: u8, need: u8 },
    /// Inside a bin with `left` bytes to go.
    Payload { left: u64 },
    /// All bins read; only end of input may follow.
    Done,
    /// Not the fast path: the whole body is buffered in `head`.
    Buffered,
    /// A previous error; every further call fails with it.
    Failed(DecodeError),
}

/// Where payload bytes go: [`ForwardFn`] receives the header and the next payload bytes.
type ForwardFn<'d> = dyn FnMut(&ArrayHeader, &[u8]) -> std::io::Result<()> + 'd;

enum Dest<'d> {
    /// The buffer once allocated, the hook to run on every fresh part of it, and the
    /// largest payload allocated whole before its bytes arrive.
    Owned {
        buf: Option<TypedBuffer>,
        hook: Option<fn(&mut [u8])>,
        limit: u64,
    },
    Borrowed {
        expected: Dtype,
        buf: &'d mut [u8],
    },
    /// A window the payload passes through: handed to `out` whenever it is full and at the
    /// end; `base` is the payload offset of its first byte.
    Forward {
        window: Vec<u8>,
        base: u64,
        out: Box<ForwardFn<'d>>,
    },
}

impl Dest<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        match self {
            Dest::Owned { buf: Some(b), .. } => b.as_bytes_mut(),
            Dest::Owned { buf: None, .. } => &mut [],
            Dest::Borrowed { buf, .. } => buf,
            Dest::Forward { window, .. } => window,
        }
    }

    /// Payload offset of `bytes()[0]`.
    fn base(&self) -> u64 {
        match self {
            Dest::Forward { base, .. } => *base,
            _ => 0,
        }
    }
}

struct Core<'d> {
    state: State,
    head: Vec<u8>,
    header: Option<ArrayHeader>,
    dest: Dest<'d>,
    written: u64,
    bins_left: u64,
    /// Elements of the array being decoded (fast path).
    count: usize,
    /// Length of `head` at which the header is worth parsing again.
    parse_at: usize,
}

enum HeaderParse {
    Incomplete,
    NotFastPath,
    Done {
        header: ArrayHeader,
        bins: u64,
        consumed: usize,
    },
}

/// Parse the fast-path header at the start of `buf`.
fn parse_header(buf: &[u8]) -> Result<HeaderParse, DecodeError> {
    let n = buf.len().min(NDARRAY_PREFIX.len());
    if buf[..n] != NDARRAY_PREFIX[..n] {
        return Ok(HeaderParse::NotFastPath);
    }
    if n < NDARRAY_PREFIX.len() {
        return Ok(HeaderParse::Incomplete);
    }
    let mut r = Reader::new(&buf[NDARRAY_PREFIX.len()..]);
    let parsed = (|| {
        let (mut ty, mut kind, mut shape, mut nbytes) = (None, None, None, None);
        for _ in 0..4 {
            match r.read_str("ndarray key")? {
                b"type" if ty.is_none() => ty = Some(r.read_value()?),
                b"kind" if kind.is_none() => kind = Some(r.read_string("kind")?),
                b"shape" if shape.is_none() => shape = Some(read_shape(&mut r)?),
                b"nbytes" if nbytes.is_none() => nbytes = Some(r.read_u64("nbytes")?),
                _ => return Ok(None),
            }
        }
        if r.read_str("ndarray key")? != b"data" {
            return Ok(None);
        }
        let bins = r.read_array_len_raw("data")?;
        Ok(Some((ty, kind, shape, nbytes, bins)))
    })();
    match parsed {
        Err(DecodeError::Truncated { .. }) => Ok(HeaderParse::Incomplete),
        Err(_) | Ok(None) => Ok(HeaderParse::NotFastPath),
        Ok(Some((Some(ty), Some(kind), Some(shape), Some(nbytes), bins))) => {
            let dtype = Dtype::from_wire(&ty, &kind)?;
            Ok(HeaderParse::Done {
                header: ArrayHeader {
                    dtype,
                    shape,
                    nbytes,
                },
                bins,
                consumed: NDARRAY_PREFIX.len() + r.pos(),
            })
        }
        Ok(Some(_)) => Ok(HeaderParse::NotFastPath),
    }
}

impl<'d> Core<'d> {
    fn new(dest: Dest<'d>) -> Self {
        Core {
            state: State::Header,
            head: Vec::new(),
            header: None,
            dest,
            written: 0,
            bins_left: 0,
            count: 0,
            parse_at: 0,
        }
    }

    fn fail<T>(&mut self, e: DecodeError) -> Result<T, DecodeError> {
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// Validate the header and set up the destination.
    fn start(&mut self, header: ArrayHeader, bins: u64) -> Result<(), DecodeError> {
        let count = check_nd_header(&header.dtype, &header.shape, header.nbytes)?;
        match &mut self.dest {
            Dest::Owned { buf, hook, limit } => {
                // A claim is not allocated beyond the limit: past it the buffer grows
                // with the payload that actually arrives.
                let item = header.nbytes.checked_div(count as u64).unwrap_or(1).max(1);
                let first = if header.nbytes <= *limit {
                    count
                } else {
                    usize::try_from(*limit / item).unwrap_or(count).min(count)
                };
                let mut fresh = TypedBuffer::try_zeroed(&header.dtype, first)
                    .ok_or_else(|| alloc_error(&header.dtype, first))?;
                if let Some(hook) = hook {
                    hook(fresh.as_bytes_mut());
                }
                *buf = Some(fresh);
            }
            Dest::Borrowed { expected, buf } => {
                check_destination(expected, buf.len(), &header.dtype, header.nbytes)?;
            }
            Dest::Forward { .. } => {}
        }
        self.bins_left = bins;
        self.count = count;
        self.header = Some(header);
        self.after_bin()
    }

    /// Make an owned buffer hold at least `need` bytes: at least double, by at least
    /// [`MIN_GROWTH`] bytes, never beyond the whole payload (counted in bytes, so an
    /// element type of gigabytes does not grow it by gigabytes).
    fn reserve(&mut self, need: usize) -> Result<(), DecodeError> {
        let Some(header) = self.header.as_ref() else {
            return Err(malformed("ndarray", "payload before the header"));
        };
        let Dest::Owned {
            buf: Some(b), hook, ..
        } = &mut self.dest
        else {
            return Ok(());
        };
        let have = b.as_bytes().len();
        if need <= have {
            return Ok(());
        }
        let total = usize::try_from(header.nbytes).unwrap_or(usize::MAX);
        let want = need.max(have.saturating_mul(2)).max(MIN_GROWTH).min(total);
        if want < need || b.try_grow_zeroed(want).is_none() {
            return Err(alloc_error(&header.dtype, self.count));
        }
        if let Some(hook) = hook {
            hook(&mut b.as_bytes_mut()[have..]);
        }
        Ok(())
    }

    /// Called when a bin is complete (or before the first): next bin header or done.
    fn after_bin(&mut self) -> Result<(), DecodeError> {
        if self.bins_left > 0 {
            self.state = State::BinHeader {
                buf: [0; 5],
                have: 0,
                need: 0,
            };
            return Ok(());
        }
        let nbytes = self.header.as_ref().map_or(0, |h| h.nbytes);
        if self.written != nbytes {
            return Err(malformed(
                "ndarray",
                format!("bins hold {} bytes, nbytes is {nbytes}", self.written),
            ));
        }
        self.forward()?;
        self.state = State::Done;
        Ok(())
    }

    /// Payload offset → index into `dest.bytes()`.
    fn at(&self) -> usize {
        (self.written - self.dest.base()) as usize
    }

    /// Hands the filled part of a forwarding window on and starts a new one.
    fn forward(&mut self) -> Result<(), DecodeError> {
        let written = self.written;
        if let (Dest::Forward { window, base, out }, Some(header)) =
            (&mut self.dest, self.header.as_ref())
        {
            let filled = (written - *base) as usize;
            if filled > 0 {
                out(header, &window[..filled]).map_err(|e| DecodeError::Forward {
                    detail: e.to_string(),
                })?;
            }
            *base = written;
        }
        Ok(())
    }

    fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        match self.feed_inner(chunk) {
            Ok(()) => Ok(chunk.len()),
            Err(e) => self.fail(e),
        }
    }

    fn feed_inner(&mut self, chunk: &[u8]) -> Result<(), DecodeError> {
        let mut i = 0;
        while i < chunk.len() {
            let rest = &chunk[i..];
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Buffered => {
                    self.head.extend_from_slice(rest);
                    i = chunk.len();
                }
                State::Done => {
                    return Err(DecodeError::TrailingBytes {
                        extra: rest.len() as u64,
                    });
                }
                State::Header => {
                    let take = rest.len().min(HEADER_LIMIT - self.head.len());
                    self.head.extend_from_slice(&rest[..take]);
                    i += take;
                    let len = self.head.len();
                    if len < self.parse_at && len < HEADER_LIMIT {
                        continue;
                    }
                    match parse_header(&self.head)? {
                        HeaderParse::Done {
                            header,
                            bins,
                            consumed,
                        } => {
                            // Bytes past the header that came with it: payload and bin headers.
                            let after = self.head.split_off(consumed.min(len));
                            self.head = Vec::new();
                            self.start(header, bins)?;
                            self.feed_inner(&after)?;
                        }
                        HeaderParse::NotFastPath => self.state = State::Buffered,
                        HeaderParse::Incomplete if len >= HEADER_LIMIT => {
                            self.state = State::Buffered;
                        }
                        // Parsed again only once half as many bytes again have come, so a
                        // header that arrives in small pieces costs linear time, not
                        // quadratic (each parse starts from its first byte).
                        HeaderParse::Incomplete => self.parse_at = len + len / 2,
                    }
                }
                State::BinHeader { buf, have, need } => {
                    buf[usize::from(*have)] = rest[0];
                    *have += 1;
                    i += 1;
                    if *need == 0 {
                        *need = match buf[0] {
                            0xc4 => 2,
                            0xc5 => 3,
                            0xc6 => 5,
                            m => {
                                return Err(malformed(
                                    "ndarray data",
                                    format!("expected a bin, found marker 0x{m:02x}"),
                                ));
                            }
                        };
                    }
                    if have == need {
                        let len = buf[1..usize::from(*need)]
                            .iter()
                            .fold(0u64, |a, &b| (a << 8) | u64::from(b));
                        self.begin_bin(len)?;
                    }
                }
                State::Payload { left } => {
                    let left = usize::try_from(*left).unwrap_or(usize::MAX);
                    let at = self.at();
                    let want = rest.len().min(left);
                    self.reserve(at + want)?;
                    let dest = self.dest.bytes();
                    let n = want.min(dest.len() - at);
                    dest[at..at + n].copy_from_slice(&rest[..n]);
                    i += n;
                    self.consume_payload(n)?;
                }
            }
        }
        Ok(())
    }

    fn begin_bin(&mut self, len: u64) -> Result<(), DecodeError> {
        let nbytes = self.header.as_ref().map_or(0, |h| h.nbytes);
        if self.written.saturating_add(len) > nbytes {
            return Err(malformed(
                "ndarray",
                format!("bins hold more than nbytes = {nbytes}"),
            ));
        }
        self.bins_left -= 1;
        if len == 0 {
            self.after_bin()
        } else {
            self.state = State::Payload { left: len };
            Ok(())
        }
    }

    fn consume_payload(&mut self, n: usize) -> Result<(), DecodeError> {
        let State::Payload { left } = &mut self.state else {
            panic!("advance() without a payload slot");
        };
        assert!(n as u64 <= *left, "advance() past the payload slot");
        *left -= n as u64;
        let bin_done = *left == 0;
        self.written += n as u64;
        if let Dest::Forward { window, base, .. } = &self.dest
            && self.written - *base == window.len() as u64
        {
            self.forward()?;
        }
        if bin_done { self.after_bin() } else { Ok(()) }
    }

    fn payload_slot(&mut self) -> Option<&mut [u8]> {
        let State::Payload { left } = self.state else {
            return None;
        };
        let n = usize::try_from(left).unwrap_or(usize::MAX);
        let at = self.at();
        if self.dest.bytes().len() <= at
            && let Err(e) = self.reserve(at.saturating_add(1))
        {
            self.state = State::Failed(e);
            return None;
        }
        let bytes = self.dest.bytes();
        let end = at + n.min(bytes.len() - at);
        Some(&mut bytes[at..end])
    }

    fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
        match self.consume_payload(n) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn wanted(&self) -> usize {
        match &self.state {
            State::Header => HEADER_READ,
            State::BinHeader { have, need, .. } => usize::from(need.saturating_sub(*have).max(1)),
            State::Payload { left } => usize::try_from(*left).unwrap_or(usize::MAX),
            State::Done | State::Failed(_) => 1,
            State::Buffered => FALLBACK_READ,
        }
    }

    /// End of input: the complete fast-path header or the buffered body's value.
    fn finish(&mut self) -> Result<Finished, DecodeError> {
        if matches!(self.state, State::Header) && self.head.len() < self.parse_at {
            // A parse put off until more bytes came: the body has ended, parse what there
            // is (so the outcome does not depend on how the body was cut).
            let head = std::mem::take(&mut self.head);
            self.parse_at = 0;
            self.feed_inner(&head)?;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Failed(e) => Err(e),
            State::Header | State::Buffered => {
                let head = std::mem::take(&mut self.head);
                decode_array(&head).map(Finished::Buffered)
            }
            State::BinHeader { have, need, .. } => Err(DecodeError::Truncated {
                expected: u64::from(need.saturating_sub(have).max(1)) + self.missing_payload(),
            }),
            State::Payload { .. } => Err(DecodeError::Truncated {
                expected: self.missing_payload(),
            }),
            State::Done => {
                let header = self
                    .header
                    .take()
                    .ok_or_else(|| malformed("ndarray", "no header"))?;
                if !matches!(self.dest, Dest::Forward { .. }) {
                    header.dtype.swap_in_place(self.dest.bytes());
                }
                Ok(Finished::Streamed(header))
            }
        }
    }

    fn missing_payload(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.nbytes - self.written)
    }
}

enum Finished {
    Streamed(ArrayHeader),
    Buffered(ArrayData),
}

fn check_destination(
    expected: &Dtype,
    len: usize,
    dtype: &Dtype,
    nbytes: u64,
) -> Result<(), DecodeError> {
    if expected.native() != dtype.native() {
        return Err(DecodeError::DestinationMismatch {
            detail: format!("response has type {dtype}, destination holds {expected}"),
        });
    }
    if len as u64 != nbytes {
        return Err(DecodeError::DestinationMismatch {
            detail: format!("response has {nbytes} bytes, destination holds {len}"),
        });
    }
    Ok(())
}

/// Streaming decoder of an ndarray or vlen array response into a newly allocated
/// [`TypedBuffer`].
///
/// [`ArrayDecoder`] is pushed the response body as it arrives. It parses the ndarray
/// header (fast path: the body starts `86 a2 6e 64 c3` and `"data"` is the last key),
/// allocates the final [`TypedBuffer`] (whole when the payload is at most the
/// [preallocation limit](ArrayDecoder::with_preallocation_limit), else in steps as the payload
/// arrives, so a header that claims 2^60 bytes allocates nothing of the kind), and then
/// lets the I/O layer put the payload straight into it: [`PushDecoder::payload_slot`] is
/// the exact destination of the next
/// payload bytes, so a [`Read`] can `read()` into the final buffer with no intermediate
/// copy, followed by [`PushDecoder::advance`]. Bytes that are not payload (the header, bin
/// headers) go through [`PushDecoder::feed`], which also accepts arbitrary chunks that mix
/// everything. Bins need not be aligned to elements, there may be any number of them, and
/// bin headers may be split across chunks. Big-endian (`>`) payloads are byte-swapped in
/// place once complete.
///
/// Bodies that do not start with the fast-path prefix (vlen arrays, or a map written in
/// another key order) are buffered whole and decoded with [`decode_array`].
///
/// [`ArrayIntoDecoder`] does the same into a caller-supplied byte buffer (`read_into`):
/// the incoming type must equal the expected one up to byte order and the sizes must match.
///
/// ```
/// use hdfstream_protocol::{
///     ArrayData, ArrayDecoder, Dtype, NdArray, PushDecoder, TypedBuffer, encode_array,
///     decode_array_from_reader,
/// };
///
/// let value = ArrayData::Nd(NdArray {
///     dtype: Dtype::parse("<f8")?,
///     shape: vec![2, 2],
///     data: TypedBuffer::F64(vec![1.0, 2.0, 3.0, 4.0]),
/// });
/// let body = encode_array(&value);
///
/// // Push chunks as they arrive ...
/// let mut dec = ArrayDecoder::new();
/// for chunk in body.chunks(7) {
///     dec.feed(chunk)?;
/// }
/// assert_eq!(dec.finish()?, value);
///
/// // ... or let the decoder read straight into its final buffer.
/// let decoded = decode_array_from_reader(&body[..])?;
/// assert_eq!(decoded, value);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayDecoder {
    core: Core<'static>,
}

impl Default for ArrayDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ArrayDecoder {
    /// A decoder waiting for the first byte of the body.
    pub fn new() -> Self {
        ArrayDecoder {
            core: Core::new(Dest::Owned {
                buf: None,
                hook: None,
                limit: DEFAULT_PREALLOCATION_LIMIT,
            }),
        }
    }

    /// Run `hook` on the freshly allocated (zeroed, not yet touched) element buffer, before
    /// any payload is written into it: once on the whole buffer when it is allocated at
    /// once (see [`with_preallocation_limit`](Self::with_preallocation_limit)), else on
    /// each part it grows by.
    ///
    /// Meant for memory advice the crate cannot give without OS bindings: on Linux with
    /// transparent huge pages in `madvise` mode, `madvise(ptr, len, MADV_HUGEPAGE)` here
    /// makes large reads several times faster, because faulting in a new buffer 4 KiB at a
    /// time costs more than copying into it (see `benches/decode.rs`). The hook must not
    /// rely on the contents and should not write to them.
    pub fn with_fresh_buffer_hook(mut self, hook: fn(&mut [u8])) -> Self {
        if let Dest::Owned { hook: h, .. } = &mut self.core.dest {
            *h = Some(hook);
        }
        self
    }

    /// Allocate the element buffer whole when the header arrives if its payload is at most
    /// `bytes` (default 64 KiB); a larger one is allocated in steps as its bytes arrive (at
    /// most twice what arrived, or 64 KiB), so a header cannot make the decoder allocate
    /// more than the body holds.
    ///
    /// A caller that knows the size of what it asked for passes it here: an answer of
    /// that size goes into one buffer allocated once, whatever its size.
    pub fn with_preallocation_limit(mut self, bytes: u64) -> Self {
        if let Dest::Owned { limit, .. } = &mut self.core.dest {
            *limit = bytes;
        }
        self
    }

    /// Shorthand for [`PushDecoder::feed`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
        self.core.feed(chunk)
    }

    /// The decoded value, after the whole body was pushed. Fails if the body ended early.
    pub fn finish(mut self) -> Result<ArrayData, DecodeError> {
        match self.core.finish()? {
            Finished::Buffered(v) => Ok(v),
            Finished::Streamed(h) => {
                let Dest::Owned {
                    buf: Some(data), ..
                } = std::mem::replace(
                    &mut self.core.dest,
                    Dest::Owned {
                        buf: None,
                        hook: None,
                        limit: 0,
                    },
                )
                else {
                    return Err(malformed("ndarray", "no destination"));
                };
                Ok(ArrayData::Nd(NdArray {
                    dtype: h.dtype,
                    shape: h.shape,
                    data,
                }))
            }
        }
    }
}

/// Streaming decoder of an ndarray response into a caller-supplied buffer of packed,
/// native-order elements (see [`ArrayDecoder`] and [`PushDecoder`]).
pub struct ArrayIntoDecoder<'d> {
    core: Core<'d>,
}

impl<'d> ArrayIntoDecoder<'d> {
    /// Decode into `dest`, which holds elements of `dtype` (compared up to byte order with
    /// the response's type; `dest.len()` must equal the response's `nbytes`).
    pub fn new(dtype: &Dtype, dest: &'d mut [u8]) -> Self {
        ArrayIntoDecoder {
            core: Core::new(Dest::Borrowed {
                expected: dtype.clone(),
                buf: dest,
            }),
        }
    }

    /// Shorthand for [`PushDecoder::feed`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
        self.core.feed(chunk)
    }

    /// The header of the decoded array, after the whole body was pushed; the elements are
    /// in the destination. A body that was not on the fast path is decoded whole and copied
    /// in if it is a fixed-size array of the right type and size.
    pub fn finish(mut self) -> Result<ArrayHeader, DecodeError> {
        match self.core.finish()? {
            Finished::Streamed(h) => Ok(h),
            Finished::Buffered(ArrayData::Nd(a)) => {
                let Dest::Borrowed { expected, buf } = &mut self.core.dest else {
                    return Err(malformed("ndarray", "no destination"));
                };
                let src = a.data.as_bytes();
                check_destination(expected, buf.len(), &a.dtype, src.len() as u64)?;
                buf.copy_from_slice(src);
                Ok(ArrayHeader {
                    dtype: a.dtype,
                    shape: a.shape,
                    nbytes: src.len() as u64,
                })
            }
            Finished::Buffered(ArrayData::Vlen(_)) => Err(DecodeError::DestinationMismatch {
                detail: "a variable-length array cannot be decoded into a buffer".into(),
            }),
        }
    }
}

/// Streaming decoder of an ndarray response that hands the payload on as it arrives,
/// without holding the array: bytes pass through a window of a fixed size, given to `out`
/// with the header whenever it is full and at the end (see [`ArrayDecoder`] and
/// [`PushDecoder`]). The payload keeps the byte order of the response's type. Memory is the
/// window, whatever the array's size; a body that is not on the fast path is decoded whole
/// first, and a variable-length one is an error.
///
/// ```
/// use hdfstream_protocol::{ArrayData, ArrayForwardDecoder, Dtype, NdArray, TypedBuffer, encode_array};
///
/// let value = ArrayData::Nd(NdArray {
///     dtype: Dtype::parse("<u2")?,
///     shape: vec![3],
///     data: TypedBuffer::U16(vec![1, 2, 3]),
/// });
/// let mut got = Vec::new();
/// let mut dec = ArrayForwardDecoder::new(4, |_header, bytes: &[u8]| {
///     got.extend_from_slice(bytes);
///     Ok(())
/// });
/// for chunk in encode_array(&value).chunks(5) {
///     dec.feed(chunk)?;
/// }
/// assert_eq!(dec.finish()?.shape, [3]);
/// assert_eq!(got, [1, 0, 2, 0, 3, 0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArrayForwardDecoder<'d> {
    core: Core<'d>,
}

impl<'d> ArrayForwardDecoder<'d> {
    /// Hands the payload to `out` in pieces of `window` bytes (at least 1; the last may be
    /// shorter).
    pub fn new(
        window: usize,
        out: impl FnMut(&ArrayHeader, &[u8]) -> std::io::Result<()> + 'd,
    ) -> Self {
        ArrayForwardDecoder {
            core: Core::new(Dest::Forward {
                window: vec![0; window.max(1)],
                base: 0,
                out: Box::new(out),
            }),
        }
    }

    /// Shorthand for [`PushDecoder::feed`].
    pub fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
        self.core.feed(chunk)
    }

    /// The header, after the whole body was pushed and its payload handed on.
    pub fn finish(mut self) -> Result<ArrayHeader, DecodeError> {
        match self.core.finish()? {
            Finished::Streamed(h) => Ok(h),
            Finished::Buffered(ArrayData::Nd(a)) => {
                let header = ArrayHeader {
                    dtype: a.dtype.clone(),
                    shape: a.shape.clone(),
                    nbytes: a.data.as_bytes().len() as u64,
                };
                // Buffered values are in native order; the payload is handed on in the
                // order of the response's type, like a streamed one.
                let mut bytes = a.data.as_bytes().to_vec();
                a.dtype.swap_in_place(&mut bytes);
                let Dest::Forward { out, window, .. } = &mut self.core.dest else {
                    return Err(malformed("ndarray", "no destination"));
                };
                for piece in bytes.chunks(window.len().max(1)) {
                    out(&header, piece).map_err(|e| DecodeError::Forward {
                        detail: e.to_string(),
                    })?;
                }
                Ok(header)
            }
            Finished::Buffered(ArrayData::Vlen(_)) => Err(DecodeError::DestinationMismatch {
                detail: "a variable-length array cannot be forwarded as bytes".into(),
            }),
        }
    }
}

macro_rules! push_impl {
    ($t:ty) => {
        impl PushDecoder for $t {
            fn feed(&mut self, chunk: &[u8]) -> Result<usize, DecodeError> {
                self.core.feed(chunk)
            }
            fn payload_slot(&mut self) -> Option<&mut [u8]> {
                self.core.payload_slot()
            }
            fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
                self.core.advance(n)
            }
            fn wanted(&self) -> usize {
                self.core.wanted()
            }
            fn header(&self) -> Option<&ArrayHeader> {
                self.core.header.as_ref()
            }
        }
    };
}
push_impl!(ArrayDecoder);
push_impl!(ArrayIntoDecoder<'_>);
push_impl!(ArrayForwardDecoder<'_>);

fn read_retry(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, ReadError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Push everything `r` yields into `dec`, reading payload bytes straight into their final
/// place. Returns at end of input.
pub fn pump<D: PushDecoder + ?Sized>(mut r: impl Read, dec: &mut D) -> Result<(), ReadError> {
    let mut scratch = Vec::new();
    loop {
        if let Some(slot) = dec.payload_slot() {
            let n = read_retry(&mut r, slot)?;
            if n == 0 {
                return Ok(());
            }
            dec.advance(n)?;
        } else {
            let want = dec.wanted().clamp(1, FALLBACK_READ);
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            let n = read_retry(&mut r, &mut scratch[..want])?;
            if n == 0 {
                return Ok(());
            }
            dec.feed(&scratch[..n])?;
        }
    }
}

/// Decode a whole ndarray or vlen response from a reader (payload read in place).
pub fn decode_array_from_reader(r: impl Read) -> Result<ArrayData, ReadError> {
    let mut dec = ArrayDecoder::new();
    pump(r, &mut dec)?;
    Ok(dec.finish()?)
}

/// Decode an ndarray response from a reader into `dest` (elements of `dtype`, native order).
pub fn decode_array_into_from_reader(
    r: impl Read,
    dtype: &Dtype,
    dest: &mut [u8],
) -> Result<ArrayHeader, ReadError> {
    let mut dec = ArrayIntoDecoder::new(dtype, dest);
    pump(r, &mut dec)?;
    Ok(dec.finish()?)
}
