//! msgpack values as a tree, so that request bodies can be mutated by structure (a key
//! dropped, a number replaced, a type changed) before they are encoded, each number,
//! string, array and map in a randomly chosen (but always legal) width.

use hdfstream_reliability::Rng;

/// A msgpack value.
#[derive(Clone, Debug)]
pub(crate) enum Mp {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F64(f64),
    Str(Vec<u8>),
    Bin(Vec<u8>),
    Arr(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
    /// Bytes written as they are (a value that is not one, or several).
    Raw(Vec<u8>),
}

impl Mp {
    /// A string value.
    pub(crate) fn str(s: &str) -> Mp {
        Mp::Str(s.as_bytes().to_vec())
    }

    /// A signed number as the narrowest variant (non-negatives as `UInt`).
    pub(crate) fn int(v: i128) -> Mp {
        if v >= 0 {
            Mp::UInt(u64::try_from(v).unwrap_or(u64::MAX))
        } else {
            Mp::Int(i64::try_from(v).unwrap_or(i64::MIN))
        }
    }

    /// The encoding, in the narrowest form, or (with `rng`) in a random legal width.
    pub(crate) fn encode(&self, out: &mut Vec<u8>, rng: &mut Option<&mut Rng>) {
        let widen = |rng: &mut Option<&mut Rng>| rng.as_mut().is_some_and(|r| r.chance(0.2));
        match self {
            Mp::Nil => out.push(0xc0),
            Mp::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Mp::UInt(v) => put_uint(out, *v, widen(rng).then(|| pick_width(rng))),
            Mp::Int(v) => put_int(out, *v, widen(rng).then(|| pick_width(rng))),
            Mp::F64(v) => {
                out.push(0xcb);
                out.extend(v.to_be_bytes());
            }
            Mp::Str(s) => {
                put_len(out, s.len(), [0xa0, 0xd9, 0xda, 0xdb], 32, widen(rng));
                out.extend_from_slice(s);
            }
            Mp::Bin(b) => {
                put_len(out, b.len(), [0, 0xc4, 0xc5, 0xc6], 0, widen(rng));
                out.extend_from_slice(b);
            }
            Mp::Arr(items) => {
                put_len(out, items.len(), [0x90, 0, 0xdc, 0xdd], 16, widen(rng));
                for item in items {
                    item.encode(out, rng);
                }
            }
            Mp::Map(entries) => {
                put_len(out, entries.len(), [0x80, 0, 0xde, 0xdf], 16, widen(rng));
                for (k, v) in entries {
                    k.encode(out, rng);
                    v.encode(out, rng);
                }
            }
            Mp::Ext(ty, data) => {
                match data.len() {
                    1 => out.push(0xd4),
                    2 => out.push(0xd5),
                    4 => out.push(0xd6),
                    8 => out.push(0xd7),
                    16 => out.push(0xd8),
                    n if n < 256 => out.extend([0xc7, n as u8]),
                    n => {
                        out.push(0xc8);
                        out.extend((n.min(u16::MAX as usize) as u16).to_be_bytes());
                    }
                }
                out.push(*ty as u8);
                out.extend_from_slice(data);
            }
            Mp::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// The encoding in random legal widths.
    pub(crate) fn to_bytes(&self, rng: &mut Rng) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode(&mut out, &mut Some(rng));
        out
    }
}

/// A width in bytes for a number: 1, 2, 4 or 8.
fn pick_width(rng: &mut Option<&mut Rng>) -> u8 {
    rng.as_mut().map_or(8, |r| *r.pick(&[1u8, 2, 4, 8]))
}

/// `v` as a positive fixint or `uint N` (`width` bytes, widened until it fits); sometimes as
/// the signed form, which is legal for non-negative values too.
fn put_uint(out: &mut Vec<u8>, v: u64, width: Option<u8>) {
    let Some(width) = width else {
        match v {
            0..=0x7f => out.push(v as u8),
            0x80..=0xff => out.extend([0xcc, v as u8]),
            0x100..=0xffff => {
                out.push(0xcd);
                out.extend((v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(0xce);
                out.extend((v as u32).to_be_bytes());
            }
            _ => {
                out.push(0xcf);
                out.extend(v.to_be_bytes());
            }
        }
        return;
    };
    let fits = |w: u8| w == 8 || v < 1u64 << (8 * u32::from(w));
    let mut w = width;
    while !fits(w) {
        w *= 2;
    }
    match w {
        1 => out.extend([0xcc, v as u8]),
        2 => {
            out.push(0xcd);
            out.extend((v as u16).to_be_bytes());
        }
        4 => {
            out.push(0xce);
            out.extend((v as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcf);
            out.extend(v.to_be_bytes());
        }
    }
}

/// `v` as a negative fixint or `int N` (at least `width` bytes).
fn put_int(out: &mut Vec<u8>, v: i64, width: Option<u8>) {
    let mut w = match width {
        None if (-32..0).contains(&v) => {
            out.push(v as u8);
            return;
        }
        None => 1,
        Some(w) => w,
    };
    let fits = |w: u8| w == 8 || (v >= -(1i64 << (8 * w - 1)) && v < 1i64 << (8 * w - 1));
    while !fits(w) {
        w *= 2;
    }
    match w {
        1 => out.extend([0xd0, v as u8]),
        2 => {
            out.push(0xd1);
            out.extend((v as i16).to_be_bytes());
        }
        4 => {
            out.push(0xd2);
            out.extend((v as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend(v.to_be_bytes());
        }
    }
}

/// A length header: the fix form (`codes[0]`, below `fix_max`; 0 = none), else the 8-, 16- or
/// 32-bit form (`codes[1..]`, 0 = none); `widen` skips the narrowest forms.
fn put_len(out: &mut Vec<u8>, n: usize, codes: [u8; 4], fix_max: usize, widen: bool) {
    if !widen && n < fix_max {
        out.push(codes[0] | n as u8);
    } else if !widen && codes[1] != 0 && n < 256 {
        out.extend([codes[1], n as u8]);
    } else if n < 65536 && codes[2] != 0 && !(widen && n % 2 == 1) {
        out.push(codes[2]);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(codes[3]);
        out.extend((n as u32).to_be_bytes());
    }
}

/// Numbers at the edges of every width and of the protocol's ranges.
pub(crate) const INTERESTING: &[i128] = &[
    0,
    1,
    2,
    3,
    7,
    31,
    32,
    127,
    128,
    255,
    256,
    999,
    1000,
    1001,
    65535,
    65536,
    (1 << 24),
    (1 << 24) + 1,
    i32::MAX as i128,
    i32::MAX as i128 + 1,
    u32::MAX as i128,
    1 << 32,
    1 << 40,
    i64::MAX as i128,
    i64::MAX as i128 + 1,
    u64::MAX as i128,
    -1,
    -2,
    -31,
    -32,
    -33,
    -128,
    -129,
    i32::MIN as i128,
    i64::MIN as i128,
];

/// A random small value of any type (for type confusion), nested at most `depth` deep.
pub(crate) fn random_value(rng: &mut Rng, depth: u32) -> Mp {
    match rng.below(if depth == 0 { 8 } else { 10 }) {
        0 => Mp::Nil,
        1 => Mp::Bool(rng.chance(0.5)),
        2 => Mp::int(*rng.pick(INTERESTING)),
        3 => Mp::F64(*rng.pick(&[0.0, 1.0, -1.0, 1.5, f64::NAN, f64::INFINITY, 1e300])),
        4 => Mp::Str(random_bytes(rng, 12, true)),
        5 => Mp::Bin(random_bytes(rng, 8, false)),
        6 => Mp::Ext(rng.below(256) as u8 as i8, random_bytes(rng, 4, false)),
        7 => Mp::Raw(vec![*rng.pick(&[0xc1u8, 0xc0, 0xdd, 0xdf, 0xdb, 0xc6])]),
        8 => Mp::Arr(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Mp::Map(
            (0..rng.below(3))
                .map(|_| (random_value(rng, depth - 1), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// Up to `max` random bytes (printable ASCII when `text`).
pub(crate) fn random_bytes(rng: &mut Rng, max: u64, text: bool) -> Vec<u8> {
    (0..rng.below(max + 1))
        .map(|_| {
            if text {
                32 + rng.below(95) as u8
            } else {
                rng.below(256) as u8
            }
        })
        .collect()
}

/// Byte-level mutations of an encoded value: flips, interesting bytes, insertions,
/// deletions, duplications, truncation, trailing garbage.
pub(crate) fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) {
    const SPECIAL: &[u8] = &[
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xca,
        0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
    ];
    for _ in 0..1 + rng.below(3) {
        let len = bytes.len() as u64;
        let at = rng.below(len.max(1)) as usize;
        match rng.below(8) {
            0 if !bytes.is_empty() => bytes[at] ^= 1 << rng.below(8),
            1 if !bytes.is_empty() => bytes[at] = *rng.pick(SPECIAL),
            2 => bytes.insert(at.min(bytes.len()), *rng.pick(SPECIAL)),
            3 if !bytes.is_empty() => {
                let n = (1 + rng.below(4) as usize).min(bytes.len() - at);
                bytes.drain(at..at + n);
            }
            4 if !bytes.is_empty() => {
                let n = (1 + rng.below(8) as usize).min(bytes.len() - at);
                let copy = bytes[at..at + n].to_vec();
                bytes.splice(at..at, copy);
            }
            5 => bytes.truncate(at),
            6 => bytes.extend(random_bytes(rng, 4, false)),
            _ if !bytes.is_empty() => bytes[at] = rng.below(256) as u8,
            _ => bytes.push(rng.below(256) as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_decodes_to_the_same_request() {
        use hdfstream_protocol::{DimSelection, ObjectRequest, SliceSpec};
        let body = Mp::Map(vec![
            (Mp::str("object"), Mp::str("/PartType0/Coordinates")),
            (
                Mp::str("slice"),
                Mp::Arr(vec![
                    Mp::Arr(vec![
                        Mp::Arr(vec![Mp::UInt(5), Mp::UInt(300)]),
                        Mp::Arr(vec![Mp::UInt(2), Mp::UInt(70_000)]),
                    ]),
                    Mp::Arr(vec![Mp::UInt(0), Mp::UInt(3)]),
                ]),
            ),
        ]);
        let want = ObjectRequest::slice(
            "/PartType0/Coordinates",
            SliceSpec::new(
                vec![DimSelection::new(5, 2), DimSelection::new(300, 70_000)],
                vec![DimSelection::new(0, 3)],
            ),
        );
        let mut rng = Rng::new(1);
        for _ in 0..500 {
            let bytes = body.to_bytes(&mut rng);
            assert_eq!(ObjectRequest::decode_body(&bytes), Ok(want.clone()));
        }
    }
}
