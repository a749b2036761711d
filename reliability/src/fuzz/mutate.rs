//! Structure-aware mutations of msgpack bodies: length and count fields set to huge or
//! off-by-one values, integers (shapes, `nbytes`, sizes) set to values that overflow,
//! type markers changed, dtype descriptors and keys swapped, values spliced between
//! inputs, duplicated or removed, bins split, truncation, bit flips and random bytes.

use super::scan::{Kind, Token, encode_head, encode_i64, encode_str, encode_uint, head, scan};
use crate::Rng;

/// Integers that make sizes overflow or sit on encoding boundaries.
const INTERESTING: [u64; 30] = [
    0,
    1,
    2,
    3,
    7,
    8,
    15,
    16,
    31,
    32,
    127,
    128,
    255,
    256,
    65_535,
    65_536,
    (1 << 31) - 1,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    1 << 40,
    1 << 53,
    1 << 60,
    (1 << 61) + 1,
    1 << 62,
    (1 << 63) - 1,
    1 << 63,
    u64::MAX - 7,
    u64::MAX - 1,
    u64::MAX,
];

/// Map keys of the protocol's messages (and a stranger).
const KEYS: [&str; 26] = [
    "nd",
    "vlen",
    "type",
    "kind",
    "shape",
    "nbytes",
    "data",
    "hdf5_object",
    "attributes",
    "members",
    "target",
    "files",
    "directories",
    "labels",
    "description",
    "size",
    "last_modified",
    "error",
    "group",
    "dataset",
    "soft_link",
    "unknown",
    "directory",
    "application/x-hdf5",
    "V",
    "x",
];

/// Atomic type descriptors, good and bad.
const DTYPES: [&str; 48] = [
    "<f8",
    ">f8",
    "<f4",
    ">f4",
    "<f2",
    ">f2",
    "<f16",
    ">f16",
    "<i1",
    "|i1",
    "<i2",
    ">i2",
    "<i4",
    ">i4",
    "<i8",
    ">i8",
    "|u1",
    "<u1",
    "<u2",
    ">u2",
    "<u4",
    ">u4",
    "<u8",
    ">u8",
    "=u2",
    "=f8",
    "S1",
    "S10",
    "|S10",
    "S0",
    "S4294967296",
    "S18446744073709551615",
    "S99999999999999999999",
    "str",
    "<c16",
    "<i3",
    "<f3",
    "i4",
    "f8",
    "<",
    "",
    "S",
    "<f08",
    "|b1",
    "<U10",
    "V8",
    "O",
    "<f8\u{0}",
];

/// Marker bytes worth trying in place of another.
const MARKERS: [u8; 24] = [
    0xc0, 0xc1, 0xc2, 0xc3, 0x90, 0x91, 0x80, 0x81, 0xa0, 0xa1, 0xc4, 0xc5, 0xc6, 0xca, 0xcb, 0xcf,
    0xd3, 0xdc, 0xdd, 0xde, 0xdf, 0xdb, 0xd4, 0xc7,
];

/// An ARRAY or compound descriptor (msgpack bytes), good and bad.
fn compound_descriptor(rng: &mut Rng) -> Vec<u8> {
    let s = |t: &str| encode_str(t.as_bytes());
    let arr = |items: &[Vec<u8>]| {
        let mut v = encode_head(Kind::Array, items.len() as u64, false);
        for i in items {
            v.extend_from_slice(i);
        }
        v
    };
    let dims = |d: &[u64]| arr(&d.iter().map(|&n| encode_uint(n, 0)).collect::<Vec<_>>());
    let base = s(DTYPES[rng.below(DTYPES.len() as u64) as usize]);
    match rng.below(9) {
        0 => arr(&[base, dims(&[3])]),
        1 => arr(&[base, dims(&[0])]),
        2 => arr(&[base, dims(&[1 << 32, 1 << 32])]),
        3 => arr(&[arr(&[s("a"), base]), arr(&[s("b"), s("<i4")])]),
        4 => arr(&[arr(&[s("a"), arr(&[s("a"), base]), dims(&[2, 3])])]),
        5 => arr(&[arr(&[s("x"), arr(&[arr(&[s("y"), s("<f8")])])])]),
        6 => arr(&[]),
        7 => arr(&[arr(&[s("a"), s("str")])]),
        _ => arr(&[s("str"), dims(&[2])]),
    }
}

/// Replace `b[range]` with `with`.
fn splice(b: &mut Vec<u8>, start: usize, end: usize, with: &[u8]) {
    let end = end.min(b.len());
    let start = start.min(end);
    b.splice(start..end, with.iter().copied());
}

fn pick<'t>(rng: &mut Rng, toks: &'t [Token], f: impl Fn(&Token) -> bool) -> Option<&'t Token> {
    let n = toks.iter().filter(|t| f(t)).count();
    if n == 0 {
        return None;
    }
    toks.iter()
        .filter(|t| f(t))
        .nth(rng.below(n as u64) as usize)
}

/// Rewrite token `t`'s length or count to `n` (in place when its field is wide enough,
/// else with a new head).
fn set_count(b: &mut Vec<u8>, t: &Token, n: u64, widest: bool) {
    match (t.kind, t.len_field) {
        (Kind::Ext, Some((at, w))) => {
            let bytes = n.to_be_bytes();
            splice(b, at, at + w, &bytes[8 - w..]);
        }
        (Kind::Ext, None) => {}
        (kind, Some((at, w))) if !widest && (w == 8 || n < 1u64 << (8 * w)) => {
            let bytes = n.to_be_bytes();
            splice(b, at, at + w, &bytes[8 - w..]);
            let _ = kind;
        }
        (kind, _) => splice(
            b,
            t.start,
            t.start + t.head_len,
            &encode_head(kind, n, widest),
        ),
    }
}

/// A value a length field could be set to, relative to what the body holds.
fn length_value(rng: &mut Rng, t: &Token, len: usize) -> u64 {
    let rem = len.saturating_sub(t.start + t.head_len) as u64;
    match rng.below(10) {
        0 => u64::from(u32::MAX),
        1 => 1 << 31,
        2 => rem,
        3 => rem + 1,
        4 => rem.saturating_sub(1),
        5 => 0,
        6 => t.count + 1,
        7 => t.count.saturating_sub(1),
        8 => t.count.saturating_mul(2),
        _ => rng.below(rem + 2),
    }
}

/// One mutation of `b` (corpus entries serve as donors for splices).
pub fn mutate_once(rng: &mut Rng, b: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let toks = scan(b);
    match rng.below(17) {
        // Length or count fields: huge, off by one, what remains.
        0 | 1 => {
            if let Some(t) = pick(rng, &toks, |t| {
                matches!(
                    t.kind,
                    Kind::Str | Kind::Bin | Kind::Array | Kind::Map | Kind::Ext
                )
            }) {
                let n = length_value(rng, t, b.len());
                let widest = rng.chance(0.3);
                set_count(b, t, n, widest);
            } else {
                random_bytes(rng, b);
            }
        }
        // Integers (shapes, nbytes, sizes): overflowing and boundary values.
        2 | 3 => {
            if let Some(t) = pick(rng, &toks, |t| t.kind == Kind::Int) {
                let v = match rng.below(4) {
                    0 => encode_i64(-(rng.below(1 << 40) as i64) - 1),
                    1 => encode_uint(rng.next_u64() >> rng.below(64), 0),
                    _ => {
                        let n = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                        encode_uint(n, [0, 1, 2, 4, 8][rng.below(5) as usize])
                    }
                };
                splice(b, t.start, t.end, &v);
            } else {
                random_bytes(rng, b);
            }
        }
        // Type markers.
        4 => {
            if let Some(t) = pick(rng, &toks, |_| true) {
                let m = if rng.chance(0.8) {
                    MARKERS[rng.below(MARKERS.len() as u64) as usize]
                } else {
                    rng.next_u64() as u8
                };
                b[t.start] = m;
            }
        }
        // Truncation, at a token boundary or anywhere.
        5 => {
            let at = match pick(rng, &toks, |_| true) {
                Some(t) if rng.chance(0.7) => {
                    let edge = [t.start, t.start + t.head_len, t.end][rng.below(3) as usize];
                    (edge as i64 + rng.below(3) as i64 - 1).max(0) as usize
                }
                _ => rng.below(b.len() as u64 + 1) as usize,
            };
            b.truncate(at);
        }
        // Splice a value from another input (or this one) in place of a value.
        6 | 7 => {
            let donor = if corpus.is_empty() || rng.chance(0.2) {
                b.clone()
            } else {
                corpus[rng.below(corpus.len() as u64) as usize].clone()
            };
            let dt = scan(&donor);
            if let (Some(t), Some(d)) = (pick(rng, &toks, |_| true), pick(rng, &dt, |_| true)) {
                let (t, d) = (*t, *d);
                splice(b, t.start, t.end, &donor[d.start..d.end.min(donor.len())]);
            }
        }
        // Duplicate or remove a value, with or without fixing the parent's count.
        8 => {
            if let Some(t) = pick(rng, &toks, |t| t.parent.is_some()) {
                let t = *t;
                let span = b[t.start..t.end.min(b.len())].to_vec();
                let parent = t.parent.map(|p| toks[p]);
                let dup = rng.chance(0.5);
                if dup {
                    splice(b, t.end, t.end, &span);
                } else {
                    splice(b, t.start, t.end, &[]);
                }
                if let Some(p) = parent.filter(|_| rng.chance(0.7)) {
                    let delta_pairs = p.kind == Kind::Map;
                    let n = if dup {
                        p.count + u64::from(!delta_pairs || rng.chance(0.5))
                    } else {
                        p.count.saturating_sub(1)
                    };
                    set_count(b, &p, n, false);
                }
            }
        }
        // Bit flips.
        9 => {
            for _ in 0..=rng.below(8) {
                if !b.is_empty() {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] ^= 1 << rng.below(8);
                }
            }
        }
        // Dtype descriptors in place of a str value or after a "type" key.
        10 => {
            if let Some(t) = pick(rng, &toks, |t| !t.is_key && t.kind == Kind::Str) {
                let t = *t;
                let v = if rng.chance(0.75) {
                    encode_str(DTYPES[rng.below(DTYPES.len() as u64) as usize].as_bytes())
                } else {
                    compound_descriptor(rng)
                };
                splice(b, t.start, t.end, &v);
            } else if let Some(t) = pick(rng, &toks, |t| !t.is_key) {
                let t = *t;
                let v = compound_descriptor(rng);
                splice(b, t.start, t.end, &v);
            }
        }
        // Map keys.
        11 => {
            if let Some(t) = pick(rng, &toks, |t| t.is_key) {
                let t = *t;
                let k = KEYS[rng.below(KEYS.len() as u64) as usize];
                splice(b, t.start, t.end, &encode_str(k.as_bytes()));
            }
        }
        // Bins: split one in two (its array's count + 1), or change its bytes.
        12 => {
            if let Some(t) = pick(rng, &toks, |t| t.kind == Kind::Bin && t.count > 1) {
                let t = *t;
                let body = t.start + t.head_len;
                let payload = b[body..t.end.min(b.len())].to_vec();
                let cut = 1 + rng.below(payload.len().max(2) as u64 - 1) as usize;
                let cut = cut.min(payload.len());
                let mut v = encode_head(Kind::Bin, cut as u64, rng.chance(0.3));
                v.extend_from_slice(&payload[..cut]);
                v.extend_from_slice(&encode_head(Kind::Bin, (payload.len() - cut) as u64, false));
                v.extend_from_slice(&payload[cut..]);
                let parent = t.parent.map(|p| toks[p]);
                splice(b, t.start, t.end, &v);
                if let Some(p) = parent.filter(|p| p.kind == Kind::Array) {
                    set_count(b, &p, p.count + 1, false);
                }
            } else {
                random_bytes(rng, b);
            }
        }
        // Shapes (arrays of integers): add, drop or zero a dimension.
        13 => {
            if let Some(p) = pick(rng, &toks, |t| t.kind == Kind::Array && t.count <= 8) {
                let p = *p;
                let body = p.start + p.head_len;
                match rng.below(3) {
                    0 => {
                        let d = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                        splice(b, body, body, &encode_uint(d, 0));
                        set_count(b, &p, p.count + 1, false);
                    }
                    1 if p.count > 0 => {
                        if let Some((_, hl, _, _)) = head(b, body) {
                            splice(b, body, body + hl, &[]);
                            set_count(b, &p, p.count - 1, false);
                        }
                    }
                    _ => splice(b, body, body, &[0x00]),
                }
            }
        }
        // An ndarray header that claims a huge (but consistent) payload.
        14 => {
            if !huge_header(rng, b, &toks) {
                random_bytes(rng, b);
            }
        }
        // Random bytes.
        _ => random_bytes(rng, b),
    }
}

/// The str payload of token `t`.
fn text<'b>(b: &'b [u8], t: &Token) -> Option<&'b [u8]> {
    (t.kind == Kind::Str).then(|| b.get(t.start + t.head_len..t.end))?
}

/// Give the first map with `shape` and `nbytes` keys a new shape (up to 2^62 elements, or
/// one whose product overflows) and the `nbytes` that goes with it (or 2^60), so that the
/// header is consistent and claims far more than the body holds.
fn huge_header(rng: &mut Rng, b: &mut Vec<u8>, toks: &[Token]) -> bool {
    let value_of = |key: &[u8]| {
        toks.iter()
            .position(|t| t.is_key && text(b, t) == Some(key))
            .and_then(|i| toks.get(i + 1))
            .copied()
    };
    let (Some(shape), Some(nbytes)) = (value_of(b"shape"), value_of(b"nbytes")) else {
        return false;
    };
    let item = value_of(b"type")
        .and_then(|t| text(b, &t))
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| hdfstream_protocol::Dtype::parse(s).ok())
        .and_then(|d| d.item_size())
        .unwrap_or(8) as u64;
    let dims: Vec<u64> = match rng.below(4) {
        0 => vec![1 << (20 + rng.below(43))],
        1 => vec![1 << (10 + rng.below(20)), 1 << (10 + rng.below(20))],
        2 => vec![1 << 32, 1 << 32, 3],
        _ => vec![rng.next_u64() >> rng.below(64), 1 + rng.below(8)],
    };
    let product = dims.iter().try_fold(item, |a, &d| a.checked_mul(d));
    let n = match product {
        Some(p) if rng.chance(0.8) => p,
        _ => 1 << 60,
    };
    let mut shape_bytes = encode_head(Kind::Array, dims.len() as u64, false);
    for d in &dims {
        shape_bytes.extend_from_slice(&encode_uint(*d, 0));
    }
    let nbytes_bytes = encode_uint(n, 0);
    // The later value first, so the earlier one's offsets stay valid.
    let mut edits = [(shape, shape_bytes), (nbytes, nbytes_bytes)];
    edits.sort_by_key(|(t, _)| std::cmp::Reverse(t.start));
    for (t, with) in edits {
        splice(b, t.start, t.end, &with);
    }
    true
}

fn random_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    let at = rng.below(b.len() as u64 + 1) as usize;
    let n = 1 + rng.below(16) as usize;
    let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    match rng.below(3) {
        0 => splice(b, at, at + n, &bytes),
        1 => splice(b, at, at, &bytes),
        _ => splice(b, at, at + n, &[]),
    }
}

/// A mutant of `input`: 1 to 4 stacked mutations, at most `max_len` bytes; now and then
/// wholly random bytes instead.
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    if rng.chance(0.01) {
        let n = rng.below(64) as usize;
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut b = input.to_vec();
    let rounds = 1 + (rng.next_u64().trailing_zeros() as u64).min(3);
    for _ in 0..rounds {
        mutate_once(rng, &mut b, corpus);
        b.truncate(max_len);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_replay_from_the_seed_and_stay_bounded() {
        let seed = vec![
            0x82, 0xa1, b'a', 0x92, 0x01, 0xa2, b'x', b'y', 0xa1, b'b', 0xc4, 2, 9, 9,
        ];
        let corpus = vec![seed.clone()];
        let run = |s| {
            let mut rng = Rng::new(s);
            (0..2000)
                .map(|_| mutate(&mut rng, &seed, &corpus, 64))
                .collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert!(a.iter().all(|m| m.len() <= 64));
        assert!(a.iter().filter(|m| **m != seed).count() > 1900);
    }
}
