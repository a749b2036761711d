//! Simple (hyperslab) selections: one step-1 range or one index per dimension, numpy style.

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo};

use hdfstream_protocol::{DimSelection, SliceSpec};

use crate::Error;

/// What to select along one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DimIndex {
    /// `start..stop` with numpy semantics: negative bounds count from the end, out-of-range
    /// bounds are clamped, `None` means "from the beginning" / "to the end".
    Range {
        /// First index (inclusive).
        start: Option<i64>,
        /// Last index (exclusive).
        stop: Option<i64>,
    },
    /// A single index (negative counts from the end); the dimension is dropped from the result.
    Index(i64),
    /// A range with an explicit step; only step 1 is supported (the protocol has no strides),
    /// any other step is rejected when the selection is resolved.
    Stepped {
        /// First index (inclusive).
        start: Option<i64>,
        /// Last index (exclusive).
        stop: Option<i64>,
        /// Step between selected indices.
        step: i64,
    },
}

impl DimIndex {
    /// The whole dimension (`..`).
    pub const ALL: DimIndex = DimIndex::Range {
        start: None,
        stop: None,
    };
}

impl From<Range<i64>> for DimIndex {
    fn from(r: Range<i64>) -> Self {
        DimIndex::Range {
            start: Some(r.start),
            stop: Some(r.end),
        }
    }
}

impl From<RangeInclusive<i64>> for DimIndex {
    fn from(r: RangeInclusive<i64>) -> Self {
        let stop = r.end().checked_add(1);
        DimIndex::Range {
            start: Some(*r.start()),
            stop: if *r.end() == -1 { None } else { stop },
        }
    }
}

impl From<RangeFrom<i64>> for DimIndex {
    fn from(r: RangeFrom<i64>) -> Self {
        DimIndex::Range {
            start: Some(r.start),
            stop: None,
        }
    }
}

impl From<RangeTo<i64>> for DimIndex {
    fn from(r: RangeTo<i64>) -> Self {
        DimIndex::Range {
            start: None,
            stop: Some(r.end),
        }
    }
}

impl From<RangeFull> for DimIndex {
    fn from(_: RangeFull) -> Self {
        DimIndex::ALL
    }
}

impl From<i64> for DimIndex {
    fn from(i: i64) -> Self {
        DimIndex::Index(i)
    }
}

/// A simple selection: one [`DimIndex`] per leading dimension; missing trailing dimensions are
/// selected whole (like numpy's implicit `...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    dims: Vec<DimIndex>,
}

/// Builds a [`Selection`] numpy style: `sel![10..20, .., 1]`.
///
/// Every argument is anything convertible into [`DimIndex`] (`i64` ranges and indices, `..`).
#[macro_export]
macro_rules! sel {
    ($($d:expr),* $(,)?) => {
        $crate::selection::Selection::new()$(.dim($d))*
    };
}

impl Selection {
    /// Selects everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects everything (alias of [`Selection::new`]).
    pub fn all() -> Self {
        Self::default()
    }

    /// Appends the selection for the next dimension.
    pub fn dim(mut self, d: impl Into<DimIndex>) -> Self {
        self.dims.push(d.into());
        self
    }

    /// Appends a range with a step for the next dimension (numpy `start:stop:step`); only a
    /// step of 1 can be read, others make [`Selection::resolve`] fail.
    pub fn dim_step(self, d: impl Into<DimIndex>, step: i64) -> Self {
        let (start, stop) = match d.into() {
            DimIndex::Range { start, stop } | DimIndex::Stepped { start, stop, .. } => {
                (start, stop)
            }
            DimIndex::Index(i) => (Some(i), i.checked_add(1)),
        };
        self.dim(DimIndex::Stepped { start, stop, step })
    }

    /// The per-dimension selections given so far.
    pub fn dims(&self) -> &[DimIndex] {
        &self.dims
    }

    /// Resolves the selection against a dataset `shape`: wraps negatives, clamps ranges,
    /// bounds-checks indices and fills missing trailing dimensions.
    pub fn resolve(&self, shape: &[u64]) -> Result<ResolvedSelection, Error> {
        if self.dims.len() > shape.len() {
            return Err(Error::InvalidSelection {
                reason: format!(
                    "too many indices: {} given for a dataset of rank {}",
                    self.dims.len(),
                    shape.len()
                ),
            });
        }
        let mut ranges = Vec::with_capacity(shape.len());
        let mut dropped = Vec::with_capacity(shape.len());
        for (dim, &len) in shape.iter().enumerate() {
            let d = self.dims.get(dim).copied().unwrap_or(DimIndex::ALL);
            let (range, drop) = resolve_dim(d, len, dim)?;
            ranges.push(range);
            dropped.push(drop);
        }
        Ok(ResolvedSelection { ranges, dropped })
    }
}

/// Wraps a possibly negative index numpy style and checks it against `len`.
pub(crate) fn wrap_index(index: i64, len: u64, dim: usize) -> Result<u64, Error> {
    let wrapped = if index < 0 {
        i128::from(len) + i128::from(index)
    } else {
        i128::from(index)
    };
    let oob = || Error::InvalidSelection {
        reason: format!("index {index} is out of bounds for dimension {dim} with length {len}"),
    };
    if wrapped < 0 || wrapped >= i128::from(len) {
        return Err(oob());
    }
    u64::try_from(wrapped).map_err(|_| oob())
}

/// Clamps a slice bound numpy style into `0..=len`.
fn clamp_bound(bound: i64, len: u64) -> u64 {
    let v = if bound < 0 {
        i128::from(len) + i128::from(bound)
    } else {
        i128::from(bound)
    };
    // The clamped value lies in 0..=len, so it fits in u64.
    u64::try_from(v.clamp(0, i128::from(len))).unwrap_or(len)
}

fn resolve_dim(d: DimIndex, len: u64, dim: usize) -> Result<(DimSelection, bool), Error> {
    match d {
        DimIndex::Index(i) => {
            let start = wrap_index(i, len, dim)?;
            Ok((DimSelection { start, count: 1 }, true))
        }
        DimIndex::Stepped { start, stop, step } => {
            if step != 1 {
                return Err(Error::InvalidSelection {
                    reason: format!("step {step} in dimension {dim}: only step 1 is supported"),
                });
            }
            resolve_dim(DimIndex::Range { start, stop }, len, dim)
        }
        DimIndex::Range { start, stop } => {
            let start = start.map_or(0, |s| clamp_bound(s, len));
            let stop = stop.map_or(len, |s| clamp_bound(s, len));
            let count = stop.saturating_sub(start);
            Ok((DimSelection { start, count }, false))
        }
    }
}

/// A selection resolved against a shape: one `start`/`count` per dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResolvedSelection {
    /// One range per dataset dimension.
    pub ranges: Vec<DimSelection>,
    /// Whether each dimension was indexed by a single integer (and is dropped from the result).
    pub dropped: Vec<bool>,
}

impl ResolvedSelection {
    /// The request to send for this selection (a single run in dimension 0).
    pub fn to_slice_spec(&self) -> SliceSpec {
        let mut it = self.ranges.iter().copied();
        match it.next() {
            None => SliceSpec {
                runs: Vec::new(),
                rest: Vec::new(),
            },
            Some(first) => SliceSpec {
                runs: vec![first],
                rest: it.collect(),
            },
        }
    }

    /// Shape of the array the server returns (no dimension dropped).
    pub fn read_shape(&self) -> Vec<u64> {
        self.ranges.iter().map(|r| r.count).collect()
    }

    /// Shape of the result after dropping integer-indexed dimensions.
    pub fn result_shape(&self) -> Vec<u64> {
        self.ranges
            .iter()
            .zip(&self.dropped)
            .filter(|(_, d)| !**d)
            .map(|(r, _)| r.count)
            .collect()
    }

    /// Number of selected elements (saturating).
    pub fn element_count(&self) -> u64 {
        self.ranges
            .iter()
            .fold(1u64, |acc, r| acc.saturating_mul(r.count))
    }
}

/// A validated multi-slice read (`request_slices`): runs along dimension 0, shared ranges in
/// the other dimensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultiSlice {
    /// The request (dimension 0 runs in the given order).
    pub spec: SliceSpec,
    /// Shape of the concatenated result (dimension 0 kept, other integer-indexed dims dropped).
    pub result_shape: Vec<u64>,
}

/// Validates a list of selections for one multi-slice request (PROTOCOL.md §5).
///
/// All selections must agree in every dimension but the first; their first-dimension ranges
/// must be ascending and non-overlapping (touching is fine). Dimension 0 is never dropped.
pub fn plan_multi_slice(selections: &[Selection], shape: &[u64]) -> Result<MultiSlice, Error> {
    if shape.is_empty() {
        return Err(Error::InvalidSelection {
            reason: "multi-slice reads need a dataset of rank >= 1".to_string(),
        });
    }
    let mut first: Option<ResolvedSelection> = None;
    let mut runs = Vec::with_capacity(selections.len());
    for (i, sel) in selections.iter().enumerate() {
        let r = sel.resolve(shape)?;
        let Some((run0, rest)) = r.ranges.split_first() else {
            return Err(Error::InvalidSelection {
                reason: "empty selection".to_string(),
            });
        };
        if let Some(f) = &first
            && (f.ranges.get(1..) != Some(rest) || f.dropped.get(1..) != r.dropped.get(1..))
        {
            return Err(Error::InvalidSelection {
                reason: format!(
                    "selection {i} differs from selection 0 in a dimension other than the first"
                ),
            });
        }
        if let Some(prev) = runs.last() {
            let prev: &DimSelection = prev;
            let prev_end = prev.start.saturating_add(prev.count);
            if run0.start < prev_end {
                return Err(Error::InvalidSelection {
                    reason: format!(
                        "selection {i} (rows {}..{}) is not after the previous one (ends at {prev_end}); \
                         slices must be ascending and non-overlapping",
                        run0.start,
                        run0.start.saturating_add(run0.count)
                    ),
                });
            }
        }
        runs.push(*run0);
        if first.is_none() {
            first = Some(r);
        }
    }
    let Some(first) = first else {
        return Err(Error::InvalidSelection {
            reason: "at least one selection is required".to_string(),
        });
    };
    if runs.len() > hdfstream_protocol::MAX_SLICES {
        return Err(Error::InvalidSelection {
            reason: format!(
                "{} slices requested, at most {} are allowed",
                runs.len(),
                hdfstream_protocol::MAX_SLICES
            ),
        });
    }
    let total: u64 = runs.iter().map(|r| r.count).sum();
    let rest: Vec<DimSelection> = first.ranges.get(1..).unwrap_or_default().to_vec();
    let mut result_shape = vec![total];
    for (r, d) in rest.iter().zip(first.dropped.iter().skip(1)) {
        if !*d {
            result_shape.push(r.count);
        }
    }
    Ok(MultiSlice {
        spec: SliceSpec { runs, rest },
        result_shape,
    })
}
