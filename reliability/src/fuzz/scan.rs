//! A tolerant msgpack scanner: where each value of a (possibly broken) body starts and
//! ends, and where its length or count field is, so mutations can aim at structure.

/// What kind of value a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any integer.
    Int,
    /// nil.
    Nil,
    /// true or false.
    Bool,
    /// f32 or f64.
    Float,
    /// str (any width).
    Str,
    /// bin (any width).
    Bin,
    /// ext (any width).
    Ext,
    /// array (count = elements).
    Array,
    /// map (count = pairs).
    Map,
    /// The reserved marker 0xc1.
    Reserved,
}

/// One value of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// Offset of the marker byte.
    pub start: usize,
    /// Offset one past the value (children included); the body's end if it is cut short.
    pub end: usize,
    /// Marker plus length field (plus ext type byte): where the payload or children begin.
    pub head_len: usize,
    /// What it is.
    pub kind: Kind,
    /// Offset and width of an explicit length/count field (`None` for fix forms).
    pub len_field: Option<(usize, usize)>,
    /// The declared length (bytes) or count (elements, pairs).
    pub count: u64,
    /// Index of the enclosing array or map token.
    pub parent: Option<usize>,
    /// For a map entry: true for the key, false for the value.
    pub is_key: bool,
}

/// Deepest nesting scanned (deeper values are left as raw bytes).
const MAX_DEPTH: usize = 256;

fn be(b: &[u8], at: usize, w: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(w)?)?;
    Some(s.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
}

/// A value's head: kind, head length, explicit length field (offset, width), count.
pub type Head = (Kind, usize, Option<(usize, usize)>, u64);

/// The head of the value at `at`.
pub fn head(b: &[u8], at: usize) -> Option<Head> {
    let m = *b.get(at)?;
    let wide = |kind, w: usize, extra: usize| -> Option<Head> {
        Some((kind, 1 + w + extra, Some((at + 1, w)), be(b, at + 1, w)?))
    };
    Some(match m {
        0x00..=0x7f | 0xe0..=0xff => (Kind::Int, 1, None, 0),
        0x80..=0x8f => (Kind::Map, 1, None, u64::from(m & 0x0f)),
        0x90..=0x9f => (Kind::Array, 1, None, u64::from(m & 0x0f)),
        0xa0..=0xbf => (Kind::Str, 1, None, u64::from(m & 0x1f)),
        0xc0 => (Kind::Nil, 1, None, 0),
        0xc1 => (Kind::Reserved, 1, None, 0),
        0xc2 | 0xc3 => (Kind::Bool, 1, None, 0),
        0xc4 => wide(Kind::Bin, 1, 0)?,
        0xc5 => wide(Kind::Bin, 2, 0)?,
        0xc6 => wide(Kind::Bin, 4, 0)?,
        0xc7 => wide(Kind::Ext, 1, 1)?,
        0xc8 => wide(Kind::Ext, 2, 1)?,
        0xc9 => wide(Kind::Ext, 4, 1)?,
        0xca => (Kind::Float, 5, None, 0),
        0xcb => (Kind::Float, 9, None, 0),
        0xcc | 0xd0 => (Kind::Int, 2, None, 0),
        0xcd | 0xd1 => (Kind::Int, 3, None, 0),
        0xce | 0xd2 => (Kind::Int, 5, None, 0),
        0xcf | 0xd3 => (Kind::Int, 9, None, 0),
        0xd4..=0xd8 => (Kind::Ext, 2, None, 1u64 << (m - 0xd4)),
        0xd9 => wide(Kind::Str, 1, 0)?,
        0xda => wide(Kind::Str, 2, 0)?,
        0xdb => wide(Kind::Str, 4, 0)?,
        0xdc => wide(Kind::Array, 2, 0)?,
        0xdd => wide(Kind::Array, 4, 0)?,
        0xde => wide(Kind::Map, 2, 0)?,
        0xdf => wide(Kind::Map, 4, 0)?,
    })
}

/// Every value of `b` that can be scanned, in order (parents before children). Scanning
/// stops where the bytes stop making sense; what follows is not described.
pub fn scan(b: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() && out.len() < 1 << 16 {
        match value(b, at, None, false, 0, &mut out) {
            Some(end) if end > at => at = end,
            _ => break,
        }
    }
    out
}

/// Scan the value at `at`; returns its end, or `None` if it is cut short.
fn value(
    b: &[u8],
    at: usize,
    parent: Option<usize>,
    is_key: bool,
    depth: usize,
    out: &mut Vec<Token>,
) -> Option<usize> {
    if depth > MAX_DEPTH || out.len() >= 1 << 16 {
        return None;
    }
    let (kind, head_len, len_field, count) = head(b, at)?;
    let idx = out.len();
    out.push(Token {
        start: at,
        end: b.len(),
        head_len,
        kind,
        len_field,
        count,
        parent,
        is_key,
    });
    let body = at + head_len;
    let end = match kind {
        Kind::Str | Kind::Bin | Kind::Ext => {
            let end = body.checked_add(usize::try_from(count).ok()?)?;
            if end > b.len() {
                return None;
            }
            end
        }
        Kind::Array | Kind::Map => {
            let per = if kind == Kind::Map { 2 } else { 1 };
            let mut cur = body;
            for i in 0..count.saturating_mul(per) {
                cur = value(b, cur, Some(idx), per == 2 && i % 2 == 0, depth + 1, out)?;
            }
            cur
        }
        _ => {
            let end = at + head_len;
            if end > b.len() {
                return None;
            }
            end
        }
    };
    out[idx].end = end;
    Some(end)
}

/// The bytes of a length/count header of `kind` for `n`, in the smallest form, or in the
/// widest when `widest`.
pub fn encode_head(kind: Kind, n: u64, widest: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    let n32 = n.min(u64::from(u32::MAX)) as u32;
    match kind {
        Kind::Array if !widest && n < 16 => v.push(0x90 | n as u8),
        Kind::Array if !widest && n <= 0xffff => {
            v.push(0xdc);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        Kind::Array => {
            v.push(0xdd);
            v.extend_from_slice(&n32.to_be_bytes());
        }
        Kind::Map if !widest && n < 16 => v.push(0x80 | n as u8),
        Kind::Map if !widest && n <= 0xffff => {
            v.push(0xde);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        Kind::Map => {
            v.push(0xdf);
            v.extend_from_slice(&n32.to_be_bytes());
        }
        Kind::Str if !widest && n < 32 => v.push(0xa0 | n as u8),
        Kind::Str if !widest && n < 256 => v.extend_from_slice(&[0xd9, n as u8]),
        Kind::Str if !widest && n <= 0xffff => {
            v.push(0xda);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        Kind::Str => {
            v.push(0xdb);
            v.extend_from_slice(&n32.to_be_bytes());
        }
        Kind::Bin if !widest && n < 256 => v.extend_from_slice(&[0xc4, n as u8]),
        Kind::Bin if !widest && n <= 0xffff => {
            v.push(0xc5);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        Kind::Bin => {
            v.push(0xc6);
            v.extend_from_slice(&n32.to_be_bytes());
        }
        _ => {}
    }
    v
}

/// An unsigned integer in the form `width` selects: 0 = smallest, 1/2/4/8 = `cc`..`cf`.
pub fn encode_uint(n: u64, width: usize) -> Vec<u8> {
    match width {
        1 => vec![0xcc, n as u8],
        2 => [&[0xcd][..], &(n as u16).to_be_bytes()].concat(),
        4 => [&[0xce][..], &(n as u32).to_be_bytes()].concat(),
        8 => [&[0xcf][..], &n.to_be_bytes()].concat(),
        _ if n < 128 => vec![n as u8],
        _ if n < 256 => vec![0xcc, n as u8],
        _ if n <= 0xffff => [&[0xcd][..], &(n as u16).to_be_bytes()].concat(),
        _ if n <= 0xffff_ffff => [&[0xce][..], &(n as u32).to_be_bytes()].concat(),
        _ => [&[0xcf][..], &n.to_be_bytes()].concat(),
    }
}

/// A signed integer as `d3` (8 bytes).
pub fn encode_i64(n: i64) -> Vec<u8> {
    [&[0xd3][..], &n.to_be_bytes()].concat()
}

/// A str value.
pub fn encode_str(s: &[u8]) -> Vec<u8> {
    let mut v = encode_head(Kind::Str, s.len() as u64, false);
    v.extend_from_slice(s);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_nested_values_with_their_spans() {
        // {"a": [1, "xy"], "b": bin(2)}
        let b = [
            0x82, 0xa1, b'a', 0x92, 0x01, 0xa2, b'x', b'y', 0xa1, b'b', 0xc4, 2, 9, 9,
        ];
        let t = scan(&b);
        assert_eq!(t.len(), 7);
        assert_eq!(
            (t[0].kind, t[0].start, t[0].end, t[0].count),
            (Kind::Map, 0, 14, 2)
        );
        assert_eq!(
            (t[2].kind, t[2].start, t[2].end, t[2].parent),
            (Kind::Array, 3, 8, Some(0))
        );
        assert!(t[1].is_key && !t[2].is_key);
        assert_eq!(t[6].len_field, Some((11, 1)));
        // Cut short: what can be scanned is kept.
        assert_eq!(scan(&b[..6]).len(), 5);
    }
}
