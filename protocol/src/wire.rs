//! Minimal msgpack reader and writer over byte slices.
//!
//! The reader never allocates from a declared length: every length is checked against the
//! bytes that remain before anything is read or reserved, so hostile input costs at most
//! its own size. Nesting is limited to [`MAX_DEPTH`] levels so recursion cannot overflow
//! the stack.

use crate::DecodeError;

/// Deepest nesting of arrays and maps the reader accepts.
pub(crate) const MAX_DEPTH: u32 = 128;

/// A position in a msgpack byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        what,
        detail: detail.into(),
    }
}

/// Characters of a name or value an error message quotes at most.
const QUOTE_CHARS: usize = 64;

/// `s` as an error message quotes it: escaped like `{:?}`, cut after [`QUOTE_CHARS`]
/// characters (a hostile body cannot make messages, or logs, as long as itself).
pub(crate) fn quoted(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// `v` as an error message shows it: cut after a few hundred characters, without
/// formatting the rest (a descriptor can be as long as the body).
pub(crate) fn shortened(v: &impl std::fmt::Display) -> String {
    use std::fmt::Write;
    struct Limited(String, usize);
    impl Write for Limited {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.1 == 0 {
                    self.0.push('…');
                    return Err(std::fmt::Error);
                }
                self.0.push(c);
                self.1 -= 1;
            }
            Ok(())
        }
    }
    let mut out = Limited(String::new(), 4 * QUOTE_CHARS);
    let _ = write!(out, "{v}");
    out.0
}

fn marker_name(m: u8) -> &'static str {
    match m {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "integer",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "str",
        0xc0 => "nil",
        0xc2 | 0xc3 => "bool",
        0xc4..=0xc6 => "bin",
        0xca | 0xcb => "float",
        0xc7..=0xc9 | 0xd4..=0xd8 => "ext",
        _ => "reserved marker 0xc1",
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Error unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                extra: extra as u64,
            }),
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                expected: (n - self.remaining()) as u64,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    pub(crate) fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated { expected: 1 })
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    fn wrong(&self, what: &'static str, expected: &str, m: u8) -> DecodeError {
        malformed(
            what,
            format!("expected {expected}, found {}", marker_name(m)),
        )
    }

    /// A length that promises at least `min_each` bytes per item: reject it early when the
    /// buffer cannot possibly hold that many.
    fn checked_len(&self, len: u64, min_each: u64) -> Result<usize, DecodeError> {
        let need = len.saturating_mul(min_each);
        let rem = self.remaining() as u64;
        if need > rem {
            return Err(DecodeError::Truncated {
                expected: need - rem,
            });
        }
        Ok(len as usize)
    }

    /// `true` (and consumed) when the next value is nil.
    pub(crate) fn try_nil(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(crate) fn read_bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(self.wrong(what, "bool", m)),
        }
    }

    pub(crate) fn read_map_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = match self.byte()? {
            m @ 0x80..=0x8f => u64::from(m & 0x0f),
            0xde => self.take_be(2)?,
            0xdf => self.take_be(4)?,
            m => return Err(self.wrong(what, "map", m)),
        };
        self.checked_len(len, 2)
    }

    pub(crate) fn read_array_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = match self.byte()? {
            m @ 0x90..=0x9f => u64::from(m & 0x0f),
            0xdc => self.take_be(2)?,
            0xdd => self.take_be(4)?,
            m => return Err(self.wrong(what, "array", m)),
        };
        self.checked_len(len, 1)
    }

    /// An array header without the plausibility check against the remaining bytes (for
    /// the streaming decoder, whose buffer ends before the payload).
    pub(crate) fn read_array_len_raw(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok(u64::from(m & 0x0f)),
            0xdc => self.take_be(2),
            0xdd => self.take_be(4),
            m => Err(self.wrong(what, "array", m)),
        }
    }

    pub(crate) fn read_str(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = match self.byte()? {
            m @ 0xa0..=0xbf => u64::from(m & 0x1f),
            0xd9 => self.take_be(1)?,
            0xda => self.take_be(2)?,
            0xdb => self.take_be(4)?,
            m => return Err(self.wrong(what, "str", m)),
        };
        let n = self.checked_len(len, 1)?;
        self.take(n)
    }

    /// A str decoded as UTF-8, invalid sequences replaced.
    pub(crate) fn read_string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.read_str(what)?).into_owned())
    }

    /// The length of a bin header; the payload follows.
    pub(crate) fn read_bin_len(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let len = match self.byte()? {
            0xc4 => self.take_be(1)?,
            0xc5 => self.take_be(2)?,
            0xc6 => self.take_be(4)?,
            m => return Err(self.wrong(what, "bin", m)),
        };
        self.checked_len(len, 1)
    }

    /// Any integer, as i128 so every width fits.
    pub(crate) fn read_int(&mut self, what: &'static str) -> Result<i128, DecodeError> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.take_be(1)?),
            0xcd => i128::from(self.take_be(2)?),
            0xce => i128::from(self.take_be(4)?),
            0xcf => i128::from(self.take_be(8)?),
            0xd0 => i128::from(self.take_be(1)? as u8 as i8),
            0xd1 => i128::from(self.take_be(2)? as u16 as i16),
            0xd2 => i128::from(self.take_be(4)? as u32 as i32),
            0xd3 => i128::from(self.take_be(8)? as i64),
            m => return Err(self.wrong(what, "integer", m)),
        })
    }

    pub(crate) fn read_u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let v = self.read_int(what)?;
        u64::try_from(v).map_err(|_| malformed(what, format!("{v} is out of range")))
    }

    pub(crate) fn read_i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.read_int(what)?;
        i64::try_from(v).map_err(|_| malformed(what, format!("{v} is out of range")))
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(malformed("msgpack value", "nesting is too deep"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Run `f` one nesting level deeper.
    pub(crate) fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.enter()?;
        let r = f(self);
        self.leave();
        r
    }

    /// Skip one complete value without allocating.
    pub(crate) fn skip_value(&mut self) -> Result<(), DecodeError> {
        let m = self.peek()?;
        match m {
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.read_map_len("map")?;
                self.nested(|r| (0..2 * n).try_for_each(|_| r.skip_value()))
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = self.read_array_len("array")?;
                self.nested(|r| (0..n).try_for_each(|_| r.skip_value()))
            }
            0xa0..=0xbf | 0xd9..=0xdb => self.read_str("str").map(drop),
            0xc4..=0xc6 => {
                let n = self.read_bin_len("bin")?;
                self.take(n).map(drop)
            }
            _ => self.read_value().map(drop),
        }
    }

    /// Any value as an `rmpv::Value` (used for type descriptors and generic fields).
    pub(crate) fn read_value(&mut self) -> Result<rmpv::Value, DecodeError> {
        use rmpv::Value;
        let m = self.peek()?;
        Ok(match m {
            0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => {
                let v = self.read_int("integer")?;
                match u64::try_from(v) {
                    Ok(u) => Value::from(u),
                    Err(_) => Value::from(v as i64),
                }
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = self.read_map_len("map")?;
                self.nested(|r| {
                    let mut v = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        let k = r.read_value()?;
                        let val = r.read_value()?;
                        v.push((k, val));
                    }
                    Ok(Value::Map(v))
                })?
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = self.read_array_len("array")?;
                self.nested(|r| {
                    let mut v = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        v.push(r.read_value()?);
                    }
                    Ok(Value::Array(v))
                })?
            }
            0xa0..=0xbf | 0xd9..=0xdb => {
                // Invalid UTF-8 is replaced: these values are descriptors and names.
                Value::from(String::from_utf8_lossy(self.read_str("str")?).into_owned())
            }
            0xc0 => {
                self.pos += 1;
                Value::Nil
            }
            0xc2 | 0xc3 => Value::Boolean(self.read_bool("bool")?),
            0xc4..=0xc6 => {
                let n = self.read_bin_len("bin")?;
                Value::Binary(self.take(n)?.to_vec())
            }
            0xca => {
                self.pos += 1;
                Value::F32(f32::from_bits(self.take_be(4)? as u32))
            }
            0xcb => {
                self.pos += 1;
                Value::F64(f64::from_bits(self.take_be(8)?))
            }
            0xd4..=0xd8 => {
                self.pos += 1;
                let n = 1usize << (m - 0xd4);
                let ty = self.byte()? as i8;
                Value::Ext(ty, self.take(n)?.to_vec())
            }
            0xc7..=0xc9 => {
                self.pos += 1;
                let len = self.take_be(1 << (m - 0xc7))?;
                let ty = self.byte()? as i8;
                let n = self.checked_len(len, 1)?;
                Value::Ext(ty, self.take(n)?.to_vec())
            }
            _ => return Err(malformed("msgpack value", "reserved marker 0xc1")),
        })
    }
}

/// Append-only msgpack writer producing the compact encodings the reference server uses.
pub(crate) trait WriteExt {
    fn put_map_len(&mut self, n: usize);
    fn put_array_len(&mut self, n: usize);
    fn put_str(&mut self, s: &[u8]);
    fn put_bin_len(&mut self, n: u64);
    fn put_uint(&mut self, v: u64);
    fn put_int(&mut self, v: i64);
    fn put_nil(&mut self);
    fn put_bool(&mut self, b: bool);
    fn put_value(&mut self, v: &rmpv::Value);
}

impl WriteExt for Vec<u8> {
    fn put_map_len(&mut self, n: usize) {
        if n < 16 {
            self.push(0x80 | n as u8);
        } else if n <= 0xffff {
            self.push(0xde);
            self.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.push(0xdf);
            self.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn put_array_len(&mut self, n: usize) {
        if n < 16 {
            self.push(0x90 | n as u8);
        } else if n <= 0xffff {
            self.push(0xdc);
            self.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.push(0xdd);
            self.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn put_str(&mut self, s: &[u8]) {
        let n = s.len();
        if n < 32 {
            self.push(0xa0 | n as u8);
        } else if n < 256 {
            self.push(0xd9);
            self.push(n as u8);
        } else if n <= 0xffff {
            self.push(0xda);
            self.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.push(0xdb);
            self.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self.extend_from_slice(s);
    }

    fn put_bin_len(&mut self, n: u64) {
        if n < 256 {
            self.push(0xc4);
            self.push(n as u8);
        } else if n <= 0xffff {
            self.push(0xc5);
            self.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.push(0xc6);
            self.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }

    fn put_uint(&mut self, v: u64) {
        if v < 128 {
            self.push(v as u8);
        } else if v < 256 {
            self.push(0xcc);
            self.push(v as u8);
        } else if v <= 0xffff {
            self.push(0xcd);
            self.extend_from_slice(&(v as u16).to_be_bytes());
        } else if v <= 0xffff_ffff {
            self.push(0xce);
            self.extend_from_slice(&(v as u32).to_be_bytes());
        } else {
            self.push(0xcf);
            self.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn put_int(&mut self, v: i64) {
        if v >= 0 {
            self.put_uint(v as u64);
        } else if v >= -32 {
            self.push(v as i8 as u8);
        } else if v >= i64::from(i8::MIN) {
            self.push(0xd0);
            self.push(v as i8 as u8);
        } else if v >= i64::from(i16::MIN) {
            self.push(0xd1);
            self.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i64::from(i32::MIN) {
            self.push(0xd2);
            self.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            self.push(0xd3);
            self.extend_from_slice(&v.to_be_bytes());
        }
    }

    fn put_nil(&mut self) {
        self.push(0xc0);
    }

    fn put_bool(&mut self, b: bool) {
        self.push(if b { 0xc3 } else { 0xc2 });
    }

    fn put_value(&mut self, v: &rmpv::Value) {
        use rmpv::Value;
        match v {
            Value::Nil => self.put_nil(),
            Value::Boolean(b) => self.put_bool(*b),
            Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
                (Some(u), _) => self.put_uint(u),
                (None, Some(s)) => self.put_int(s),
                (None, None) => self.put_nil(),
            },
            Value::F32(f) => {
                self.push(0xca);
                self.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::F64(f) => {
                self.push(0xcb);
                self.extend_from_slice(&f.to_bits().to_be_bytes());
            }
            Value::String(s) => self.put_str(s.as_bytes()),
            Value::Binary(b) => {
                self.put_bin_len(b.len() as u64);
                self.extend_from_slice(b);
            }
            Value::Array(a) => {
                self.put_array_len(a.len());
                for x in a {
                    self.put_value(x);
                }
            }
            Value::Map(m) => {
                self.put_map_len(m.len());
                for (k, x) in m {
                    self.put_value(k);
                    self.put_value(x);
                }
            }
            Value::Ext(ty, data) => {
                match data.len() {
                    1 => self.push(0xd4),
                    2 => self.push(0xd5),
                    4 => self.push(0xd6),
                    8 => self.push(0xd7),
                    16 => self.push(0xd8),
                    n if n < 256 => {
                        self.push(0xc7);
                        self.push(n as u8);
                    }
                    n if n <= 0xffff => {
                        self.push(0xc8);
                        self.extend_from_slice(&(n as u16).to_be_bytes());
                    }
                    n => {
                        self.push(0xc9);
                        self.extend_from_slice(&(n as u32).to_be_bytes());
                    }
                }
                self.push(*ty as u8);
                self.extend_from_slice(data);
            }
        }
    }
}
