//! Selections: row sets, numpy-style hyperslabs, fancy indexing and multi-slice planning.
//!
//! Everything here is pure logic (no I/O): it turns what a user asks for into the
//! [`SliceSpec`]s sent to the server and the shape of the result.

mod fancy;
mod hyperslab;
mod ranges;

pub use fancy::{FancyIndex, FancyPlan, apply_inverse, plan_fancy};
pub use hyperslab::{DimIndex, MultiSlice, ResolvedSelection, Selection, plan_multi_slice};
pub use ranges::RowRanges;

use hdfstream_protocol::SliceSpec;

use crate::Error;

/// Copies the elements `spec` selects out of a C-order array `src` of `shape`, locally.
///
/// This is what the server does for a slice request; it serves reads of inlined datasets.
pub fn gather<E: Clone>(src: &[E], shape: &[u64], spec: &SliceSpec) -> Result<Vec<E>, Error> {
    let expected = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
    if u64::try_from(src.len()).ok() != expected {
        return Err(Error::InvalidSelection {
            reason: format!(
                "array holds {} elements but its shape {shape:?} needs {}",
                src.len(),
                expected.map_or_else(|| "more than 2^64".into(), |e| e.to_string())
            ),
        });
    }
    let Some((&len0, rest_shape)) = shape.split_first() else {
        return Ok(src.to_vec());
    };
    if spec.rest.len() != rest_shape.len() {
        return Err(Error::InvalidSelection {
            reason: format!(
                "selection rank {} does not match dataset rank {}",
                spec.rest.len() + 1,
                shape.len()
            ),
        });
    }
    let oob = |dim: usize, start: u64, count: u64, len: u64| Error::InvalidSelection {
        reason: format!("slice {start}+{count} exceeds dimension {dim} of length {len}"),
    };
    for (k, (r, &len)) in spec.rest.iter().zip(rest_shape).enumerate() {
        if r.start.checked_add(r.count).is_none_or(|e| e > len) {
            return Err(oob(k + 1, r.start, r.count, len));
        }
    }
    // Strides in elements, C order.
    let mut strides = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        let next = usize::try_from(shape[k + 1]).unwrap_or(usize::MAX);
        strides[k] = strides[k + 1].saturating_mul(next);
    }
    let mut out = Vec::new();
    let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    for run in &spec.runs {
        if run.start.checked_add(run.count).is_none_or(|e| e > len0) {
            return Err(oob(0, run.start, run.count, len0));
        }
        for row in run.start..run.start + run.count {
            let base = to_usize(row).saturating_mul(strides[0]);
            gather_rec(src, &spec.rest, &strides[1..], base, &mut out, to_usize);
        }
    }
    Ok(out)
}

fn gather_rec<E: Clone>(
    src: &[E],
    rest: &[hdfstream_protocol::DimSelection],
    strides: &[usize],
    base: usize,
    out: &mut Vec<E>,
    to_usize: impl Fn(u64) -> usize + Copy,
) {
    match rest.split_first() {
        None => {
            if let Some(e) = src.get(base) {
                out.push(e.clone());
            }
        }
        Some((r, tail)) => {
            let stride = strides.first().copied().unwrap_or(1);
            if tail.is_empty() {
                let start = base.saturating_add(to_usize(r.start));
                if let Some(s) = src.get(start..start.saturating_add(to_usize(r.count))) {
                    out.extend_from_slice(s);
                }
            } else {
                for i in r.start..r.start + r.count {
                    let b = base.saturating_add(to_usize(i).saturating_mul(stride));
                    gather_rec(
                        src,
                        tail,
                        strides.get(1..).unwrap_or_default(),
                        b,
                        out,
                        to_usize,
                    );
                }
            }
        }
    }
}
