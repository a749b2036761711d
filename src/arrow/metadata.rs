//! HDF5 attributes as Arrow (and so Parquet) metadata strings.
//!
//! Each attribute becomes one `name → text` entry:
//!
//! * one number (a scalar or a one-element array, as SWIFT writes units): its shortest
//!   round-trip text (`3.085678e24`, `-1.0`, `42`);
//! * one string (fixed or variable length): the string, NUL padding stripped;
//! * several values: a JSON array (`[6.25, 6.25, 6.25]`, `["Gas", "DM"]`).
//!
//! Attributes of other types (compound, VLEN sequences) are left out.

use std::collections::HashMap;
use std::fmt::Write;

use hdfstream_protocol::{ArrayData, Dtype, TypedBuffer};

use crate::remote::{AttrValue, Attrs};

/// Appends `s` as a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON array of strings.
pub(crate) fn json_strings(items: &[String]) -> String {
    let mut out = String::from("[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_string(&mut out, s);
    }
    out.push(']');
    out
}

/// Joins already formatted items: the item alone when there is exactly one, else `[a, b]`.
fn join(items: Vec<String>) -> String {
    if let [one] = items.as_slice() {
        return one.clone();
    }
    format!("[{}]", items.join(", "))
}

fn numbers<T: Copy>(v: &[T], f: impl Fn(T) -> String) -> String {
    join(v.iter().map(|&x| f(x)).collect())
}

/// Text of one attribute value, `None` when the type has no text form here.
pub fn attr_text(value: &AttrValue) -> Option<String> {
    let data = value.data();
    let is_string = match data {
        ArrayData::Nd(nd) => matches!(nd.dtype, Dtype::FixedString { .. }),
        ArrayData::Vlen(_) => true,
    };
    if is_string {
        let strings = value.to_strings().ok()?;
        if let [one] = strings.as_slice() {
            return Some(one.clone());
        }
        return Some(json_strings(&strings));
    }
    let ArrayData::Nd(nd) = data else {
        return None;
    };
    // Debug formatting of floats is the shortest text that parses back to the same value.
    Some(match &nd.data {
        TypedBuffer::I8(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::I16(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::I32(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::I64(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::U8(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::U16(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::U32(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::U64(v) => numbers(v, |x| x.to_string()),
        TypedBuffer::F32(v) => numbers(v, |x| format!("{x:?}")),
        TypedBuffer::F64(v) => numbers(v, |x| format!("{x:?}")),
        TypedBuffer::Bytes { .. } => return None,
    })
}

/// Adds every attribute with a text form to `out`, keys prefixed with `prefix`.
pub(crate) fn add_attrs(out: &mut HashMap<String, String>, attrs: &Attrs, prefix: &str) {
    for (name, value) in attrs.iter() {
        match attr_text(value) {
            Some(text) => {
                out.insert(format!("{prefix}{name}"), text);
            }
            None => tracing::debug!(attribute = name, "attribute has no text form, left out"),
        }
    }
}
