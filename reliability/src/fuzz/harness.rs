//! The per-input check both fuzz drivers call: decode one body every way the client can
//! and require that the ways agree.
//!
//! * The one-shot [`decode_array`] is the reference. [`ArrayDecoder`] fed the same bytes in
//!   several chunkings (whole, byte by byte, random sizes) and [`decode_array_from_reader`]
//!   (payload read in place, reads of random sizes, interrupted reads) must give the same
//!   value, or fail when it fails; the streaming runs must fail with the same error kind
//!   whatever the chunking, and keep failing after a first error. A reader error mid-body
//!   must be an error.
//! * [`ArrayIntoDecoder`] must fill a buffer of the right type and size with the same bytes
//!   and refuse a buffer of another size or type.
//! * [`decode_path`], [`decode_object`] and [`decode_error`] must not panic, accept no body
//!   that another of them (or [`decode_array`]) accepts, and re-read their own encoding of a
//!   value as the same value (as must [`decode_array`]).
//! * The client layers on top ([`super::walk`]): the client's body decoders with their
//!   request checks, and the remote objects and table core fed by them.
//!
//! Chunk sizes come from a generator seeded with a hash of the input, so an input alone
//! replays its check exactly.

use std::io::Read;

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayHeader, ArrayIntoDecoder, DecodeError, Dtype, PushDecoder,
    ReadError, decode_array, decode_array_from_reader, decode_array_into_from_reader, decode_error,
    decode_object, decode_path, encode_array, encode_error, encode_member, encode_path,
};

use crate::Rng;

/// A consistency failure: two ways of decoding the same input disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defect(pub String);

impl std::fmt::Display for Defect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which decoders accepted an input (for the run's figures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `decode_array` accepted it.
    pub array: bool,
    /// `decode_path` accepted it.
    pub path: bool,
    /// `decode_object` accepted it.
    pub object: bool,
    /// `decode_error` accepted it.
    pub error: bool,
    /// The streaming decoder parsed a fast-path header.
    pub fast_path: bool,
    /// The remote object walk ran past opening the file.
    pub walked: bool,
    /// The most bytes the answers of one walk added up to (the walks answer many
    /// requests with the input); see [`super::bound_for`].
    pub served_bytes: u64,
}

/// FNV-1a of the input: the seed of its chunkings.
pub fn input_hash(input: &[u8]) -> u64 {
    input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The error's kind, ignoring its details (counts differ with chunking).
pub(crate) fn kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated { .. } => "Truncated",
        DecodeError::TrailingBytes { .. } => "TrailingBytes",
        DecodeError::Malformed { .. } => "Malformed",
        DecodeError::DestinationMismatch { .. } => "DestinationMismatch",
        DecodeError::UnsupportedType { .. } => "UnsupportedType",
        _ => "other",
    }
}

/// Whether two arrays are the same value (bytes compared, so NaNs are equal to themselves).
pub(crate) fn same_array(a: &ArrayData, b: &ArrayData) -> bool {
    encode_array(a) == encode_array(b)
}

fn describe(r: &Result<ArrayData, DecodeError>) -> String {
    match r {
        Ok(ArrayData::Nd(a)) => format!("Ok(nd {} {:?})", a.dtype, a.shape),
        Ok(ArrayData::Vlen(v)) => format!("Ok(vlen {:?})", v.shape),
        Err(e) => format!("Err({e})"),
    }
}

/// Require that `got` (from `how`) agrees with the one-shot result `want`.
fn agree(
    how: &str,
    want: &Result<ArrayData, DecodeError>,
    got: &Result<ArrayData, DecodeError>,
) -> Result<(), Defect> {
    let same = match (want, got) {
        (Ok(a), Ok(b)) => same_array(a, b),
        (Err(_), Err(_)) => true,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(Defect(format!(
            "{how}: {} but decode_array gives {}",
            describe(got),
            describe(want)
        )))
    }
}

/// A reader that hands out the body in pieces of random size, now and then failing with
/// `Interrupted` (which must be retried), and optionally with a real error at `fail_at`.
pub(crate) struct ChunkReader<'a> {
    data: &'a [u8],
    pos: usize,
    rng: Rng,
    max: usize,
    interrupts: bool,
    fail_at: Option<usize>,
}

impl<'a> ChunkReader<'a> {
    /// Pieces of 1..=`max` bytes.
    pub(crate) fn new(data: &'a [u8], rng: &mut Rng, max: usize) -> Self {
        ChunkReader {
            data,
            pos: 0,
            rng: Rng::new(rng.next_u64()),
            max: max.max(1),
            interrupts: false,
            fail_at: None,
        }
    }

    fn with_interrupts(mut self) -> Self {
        self.interrupts = true;
        self
    }

    fn failing_at(mut self, at: usize) -> Self {
        self.fail_at = Some(at);
        self
    }
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.interrupts && self.rng.chance(0.05) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let mut end = self.data.len();
        if let Some(at) = self.fail_at {
            if self.pos >= at {
                return Err(std::io::Error::other("connection reset (injected)"));
            }
            end = end.min(at);
        }
        let want = 1 + self.rng.below(self.max as u64) as usize;
        let n = buf.len().min(want).min(end - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Cut `input` into pieces: whole, or random sizes up to `max`.
fn chunks(input: &[u8], rng: &mut Rng, max: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    while at < input.len() {
        let n = (1 + rng.below(max.max(1) as u64) as usize).min(input.len() - at);
        cuts.push(n);
        at += n;
    }
    cuts
}

/// Push `input` into a fresh decoder in pieces of the given sizes; after a first error
/// every further feed must fail too.
fn feed_in(
    input: &[u8],
    cuts: &[usize],
) -> Result<(Result<ArrayData, DecodeError>, Option<ArrayHeader>), Defect> {
    let mut dec = ArrayDecoder::new();
    let mut at = 0;
    for &n in cuts {
        let piece = &input[at..at + n];
        at += n;
        match dec.feed(piece) {
            Ok(used) if used == n => {}
            Ok(used) => {
                return Err(Defect(format!("feed of {n} bytes reported {used}")));
            }
            Err(e) => {
                if dec.feed(&[0]).is_ok() || dec.feed(&[]).is_ok() {
                    return Err(Defect(format!("feed accepted bytes after the error {e}")));
                }
                return Ok((Err(e), None));
            }
        }
    }
    let header = dec.header().cloned();
    Ok((dec.finish(), header))
}

fn read_error(e: ReadError) -> Result<DecodeError, Defect> {
    match e {
        ReadError::Decode(d) => Ok(d),
        ReadError::Io(io) => Err(Defect(format!(
            "a reader without errors gave an I/O error: {io}"
        ))),
        other => Err(Defect(format!("unexpected read error {other}"))),
    }
}

/// The whole check of one input; `Err` is a defect. Panics are the caller's to catch.
pub fn check_input(input: &[u8]) -> Result<Outcome, Defect> {
    let mut rng = Rng::new(input_hash(input));
    let mut out = Outcome::default();

    // The reference, and the streaming decoder under several chunkings.
    let one = decode_array(input);
    out.array = one.is_ok();
    let mut plans = vec![vec![input.len()], chunks(input, &mut rng, 16)];
    plans.push(chunks(input, &mut rng, 4096));
    if input.len() <= 2048 {
        plans.push(vec![1; input.len()]);
    }
    if input.is_empty() {
        plans[0].clear();
    }
    let mut stream_kind: Option<&'static str> = None;
    let mut header = None;
    for cuts in &plans {
        let (got, h) = feed_in(input, cuts)?;
        agree(
            &format!("ArrayDecoder fed {} pieces", cuts.len()),
            &one,
            &got,
        )?;
        if let Err(e) = &got {
            match stream_kind {
                None => stream_kind = Some(kind(e)),
                Some(k) if k != kind(e) => {
                    return Err(Defect(format!(
                        "ArrayDecoder fails with {} or {k} depending on the chunking",
                        kind(e)
                    )));
                }
                _ => {}
            }
        }
        if header.is_none() {
            header = h;
        }
    }
    out.fast_path = header.is_some();
    if let (Some(h), Ok(ArrayData::Nd(a))) = (&header, &one)
        && (h.dtype != a.dtype || h.shape != a.shape)
    {
        return Err(Defect(format!(
            "fast-path header {} {:?} differs from the value {} {:?}",
            h.dtype, h.shape, a.dtype, a.shape
        )));
    }

    // Reads of random sizes into the payload slot, with interrupted reads.
    let max = [7, 64, 4096, 1 << 20][rng.below(4) as usize];
    let got =
        match decode_array_from_reader(ChunkReader::new(input, &mut rng, max).with_interrupts()) {
            Ok(v) => Ok(v),
            Err(e) => Err(read_error(e)?),
        };
    agree("decode_array_from_reader", &one, &got)?;
    if !input.is_empty() {
        let at = rng.below(input.len() as u64) as usize;
        let r = ChunkReader::new(input, &mut rng, 64).failing_at(at);
        if decode_array_from_reader(r).is_ok() {
            return Err(Defect(format!(
                "decode_array_from_reader succeeded although the reader failed at byte {at}"
            )));
        }
    }

    check_into(input, &one, header.as_ref(), &mut rng)?;

    // Metadata and error decoders: no body accepted twice, own encodings re-read.
    let path = decode_path(input);
    let object = decode_object(input);
    let error = decode_error(input);
    out.path = path.is_ok();
    out.object = object.is_ok();
    out.error = error.is_some();
    let accepted = [out.array, out.path, out.object, out.error];
    if accepted.iter().filter(|&&a| a).count() > 1 {
        return Err(Defect(format!(
            "accepted by several decoders (array, path, object, error): {accepted:?}"
        )));
    }
    if let Ok(a) = &one {
        let enc = encode_array(a);
        if !matches!(decode_array(&enc), Ok(b) if same_array(a, &b)) {
            return Err(Defect(
                "decode_array does not re-read its own encoding".into(),
            ));
        }
    }
    if let Ok(p) = &path {
        let enc = encode_path(p);
        if !matches!(decode_path(&enc), Ok(q) if encode_path(&q) == enc) {
            return Err(Defect(
                "decode_path does not re-read its own encoding".into(),
            ));
        }
    }
    if let Ok(m) = &object {
        let enc = encode_member(m);
        if !matches!(decode_object(&enc), Ok(n) if encode_member(&n) == enc) {
            return Err(Defect(
                "decode_object does not re-read its own encoding".into(),
            ));
        }
    }
    if let Some(m) = &error
        && decode_error(&encode_error(m)).as_ref() != Some(m)
    {
        return Err(Defect(
            "decode_error does not re-read its own encoding".into(),
        ));
    }

    (out.walked, out.served_bytes) =
        super::walk::check_client(input, &one, header.as_ref(), &path, &object, &mut rng)?;
    Ok(out)
}

/// [`ArrayIntoDecoder`] against the reference: the same bytes into a buffer of the right
/// type and size, an error for any other buffer, and an error whenever the reference fails.
fn check_into(
    input: &[u8],
    one: &Result<ArrayData, DecodeError>,
    header: Option<&ArrayHeader>,
    rng: &mut Rng,
) -> Result<(), Defect> {
    let max = [16, 4096, 1 << 20][rng.below(3) as usize];
    match one {
        Ok(ArrayData::Nd(a)) => {
            let want = a.data.as_bytes();
            let mut dest = vec![0xa5u8; want.len()];
            match decode_array_into_from_reader(
                ChunkReader::new(input, rng, max),
                &a.dtype,
                &mut dest,
            ) {
                Ok(h) if h.shape == a.shape && h.nbytes == want.len() as u64 && dest == want => {}
                Ok(h) => {
                    return Err(Defect(format!(
                        "ArrayIntoDecoder gives {} {:?} ({} bytes{}) for {} {:?}",
                        h.dtype,
                        h.shape,
                        h.nbytes,
                        if dest == want { "" } else { ", other bytes" },
                        a.dtype,
                        a.shape
                    )));
                }
                Err(e) => {
                    return Err(Defect(format!(
                        "ArrayIntoDecoder fails with {e} where decode_array succeeds"
                    )));
                }
            }
            // Fed in pieces, as the client's pump does.
            dest.fill(0x5a);
            let mut dec = ArrayIntoDecoder::new(&a.dtype, &mut dest);
            let mut at = 0;
            for n in chunks(input, rng, max) {
                if let Err(e) = dec.feed(&input[at..at + n]) {
                    return Err(Defect(format!("ArrayIntoDecoder::feed fails with {e}")));
                }
                at += n;
            }
            if dec.finish().is_err() || dest != want {
                return Err(Defect("ArrayIntoDecoder fed in pieces differs".into()));
            }
            for len in [want.len().checked_sub(1), Some(want.len() + 1)]
                .into_iter()
                .flatten()
            {
                let mut other = vec![0u8; len];
                if decode_array_into_from_reader(input, &a.dtype, &mut other).is_ok() {
                    return Err(Defect(format!(
                        "ArrayIntoDecoder accepts {len} bytes for an array of {}",
                        want.len()
                    )));
                }
            }
            let other_type =
                if a.dtype.native() == Dtype::parse("<i8").ok().unwrap_or(Dtype::VlenString) {
                    "<f8"
                } else {
                    "<i8"
                };
            if let Ok(t) = Dtype::parse(other_type)
                && want.len() % 8 == 0
            {
                let mut other = vec![0u8; want.len()];
                if decode_array_into_from_reader(input, &t, &mut other).is_ok() {
                    return Err(Defect(format!(
                        "ArrayIntoDecoder accepts a {} array into a {t} buffer",
                        a.dtype
                    )));
                }
            }
        }
        Ok(ArrayData::Vlen(_)) => {
            let t = Dtype::parse("|u1").map_err(|e| Defect(e.to_string()))?;
            if decode_array_into_from_reader(input, &t, &mut []).is_ok() {
                return Err(Defect("ArrayIntoDecoder accepts a vlen array".into()));
            }
        }
        Err(_) => {
            let (t, len) = match header {
                Some(h) if h.nbytes <= input.len() as u64 => (h.dtype.clone(), h.nbytes as usize),
                _ => (
                    Dtype::parse("|u1").map_err(|e| Defect(e.to_string()))?,
                    input.len().min(16),
                ),
            };
            let mut dest = vec![0u8; len];
            if decode_array_into_from_reader(ChunkReader::new(input, rng, max), &t, &mut dest)
                .is_ok()
            {
                return Err(Defect(
                    "ArrayIntoDecoder succeeds where decode_array fails".into(),
                ));
            }
        }
    }
    Ok(())
}
