//! Fuzzing the client's response decoders (issue 11, part 1).
//!
//! [`check_input`] is the one per-input check: it decodes a body every way the client can
//! (one-shot, streaming under random chunkings, into a caller's buffer, the metadata and
//! error decoders, the client's body decoders with their request checks, the remote objects
//! and the table core fed by them) and reports a [`Defect`] where the ways disagree. Both
//! drivers call it: the seeded structure-aware mutation fuzzer `fuzz_decoders` (stable Rust,
//! [`mutate`], [`corpus`]) and the optional cargo-fuzz targets in `fuzz/` (nightly).
//!
//! Every input must also stay within [`allocation_bound`], measured with the counting
//! allocator of [`alloc`].

pub mod alloc;
pub mod corpus;
pub mod harness;
pub mod mutate;
pub mod scan;
pub mod walk;

pub use harness::{Defect, Outcome, check_input, input_hash};

/// Bytes an input may have live at once, per byte of input (see [`allocation_bound`]).
pub const BOUND_PER_INPUT_BYTE: u64 = 64;

/// Bytes an input may have live at once whatever its size (see [`allocation_bound`]).
pub const BOUND_CONSTANT: u64 = 1 << 20;

/// The most an input of `len` bytes may allocate, both as the largest single allocation
/// and as the peak of live bytes: `64 × len + 1 MiB` (see [`bound_for`] for the walks,
/// which answer several requests with the input).
///
/// The decoders' rule is that nothing is allocated from a declared length before the bytes
/// are there, so what a body costs grows with the body, never with what it claims. The
/// factor covers the decoded representation (a one-byte vlen entry becomes a ~100-byte
/// element, but entries are rare) and the walk's reads converted to `f64`; the constant
/// covers fixed buffers (the client's 64 KiB read buffer, the walk's small reads).
pub fn allocation_bound(len: usize) -> u64 {
    BOUND_PER_INPUT_BYTE
        .saturating_mul(len as u64)
        .saturating_add(BOUND_CONSTANT)
}

/// The bound of an input that was checked: [`allocation_bound`] of the input, or of
/// what one walk answered with in all when that was more (a walk answers every request
/// with the input, and the objects it opens keep what they received).
pub fn bound_for(input_len: usize, outcome: Option<&Outcome>) -> u64 {
    let served = outcome.map_or(0, |o| usize::try_from(o.served_bytes).unwrap_or(usize::MAX));
    allocation_bound(input_len.max(served))
}

/// Lower-case hex of `bytes` (for replaying an input with `--replay`).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string (whitespace ignored); `None` if it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}
