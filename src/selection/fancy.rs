//! Fancy indexing in dimension 0: integer lists or boolean masks turned into run requests.

use hdfstream_protocol::{MAX_SLICES, SliceSpec};

use super::hyperslab::{Selection, wrap_index};
use super::ranges::RowRanges;
use crate::Error;

/// An index array for dimension 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FancyIndex<'a> {
    /// Row numbers, any order, duplicates allowed, negatives count from the end.
    Ints(&'a [i64]),
    /// A boolean mask with exactly one entry per row.
    Mask(&'a [bool]),
}

impl<'a> From<&'a [i64]> for FancyIndex<'a> {
    fn from(v: &'a [i64]) -> Self {
        FancyIndex::Ints(v)
    }
}

impl<'a> From<&'a [bool]> for FancyIndex<'a> {
    fn from(v: &'a [bool]) -> Self {
        FancyIndex::Mask(v)
    }
}

impl<'a, const N: usize> From<&'a [i64; N]> for FancyIndex<'a> {
    fn from(v: &'a [i64; N]) -> Self {
        FancyIndex::Ints(v)
    }
}

impl<'a, const N: usize> From<&'a [bool; N]> for FancyIndex<'a> {
    fn from(v: &'a [bool; N]) -> Self {
        FancyIndex::Mask(v)
    }
}

impl<'a> From<&'a Vec<i64>> for FancyIndex<'a> {
    fn from(v: &'a Vec<i64>) -> Self {
        FancyIndex::Ints(v)
    }
}

impl<'a> From<&'a Vec<bool>> for FancyIndex<'a> {
    fn from(v: &'a Vec<bool>) -> Self {
        FancyIndex::Mask(v)
    }
}

/// How to read a fancy selection: which rows to fetch and how to reorder them afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FancyPlan {
    /// Distinct rows to read, in ascending order, as runs.
    pub rows: RowRanges,
    /// For each output row, its position among the rows read; `None` when the index was
    /// strictly increasing (rows come back already in output order).
    pub inverse: Option<Vec<usize>>,
    /// Ranges in dimensions 1.. shared by every run.
    pub rest: Vec<hdfstream_protocol::DimSelection>,
    /// Whether each of dimensions 1.. is dropped from the result.
    pub rest_dropped: Vec<bool>,
    /// Shape of the final (reordered) result.
    pub result_shape: Vec<u64>,
}

impl FancyPlan {
    /// Number of output rows (after duplication/reordering).
    pub fn output_rows(&self) -> u64 {
        self.result_shape.first().copied().unwrap_or(0)
    }

    /// Elements in one row of the read (product of the counts in dimensions 1..).
    pub fn row_elements(&self) -> u64 {
        self.rest
            .iter()
            .fold(1u64, |acc, r| acc.saturating_mul(r.count))
    }

    /// The requests to send, each with at most `max_runs` runs (clamped to 1..=2^24).
    pub fn requests(&self, max_runs: usize) -> Vec<SliceSpec> {
        let max_runs = max_runs.clamp(1, MAX_SLICES);
        self.rows
            .dim_selection_chunks(max_runs)
            .map(|runs| SliceSpec {
                runs,
                rest: self.rest.clone(),
            })
            .collect()
    }
}

/// Plans a fancy read: `index` applies to dimension 0, `rest` to dimensions 1.. of `shape`.
pub fn plan_fancy(
    index: FancyIndex<'_>,
    rest: &Selection,
    shape: &[u64],
) -> Result<FancyPlan, Error> {
    let Some((&len0, rest_shape)) = shape.split_first() else {
        return Err(Error::InvalidSelection {
            reason: "fancy indexing needs a dataset of rank >= 1".to_string(),
        });
    };
    let resolved_rest = rest.resolve(rest_shape)?;
    let rows: Vec<u64> = match index {
        FancyIndex::Mask(mask) => {
            if u64::try_from(mask.len()).ok() != Some(len0) {
                return Err(Error::InvalidSelection {
                    reason: format!(
                        "boolean mask has {} entries but dimension 0 has length {len0}",
                        mask.len()
                    ),
                });
            }
            (0u64..)
                .zip(mask)
                .filter(|(_, m)| **m)
                .map(|(i, _)| i)
                .collect()
        }
        FancyIndex::Ints(ints) => ints
            .iter()
            .map(|&i| wrap_index(i, len0, 0))
            .collect::<Result<_, _>>()?,
    };
    let out_rows = u64::try_from(rows.len()).map_err(|_| Error::InvalidSelection {
        reason: "index too long".to_string(),
    })?;
    let (rows, inverse) = match RowRanges::from_increasing_rows(rows.iter().copied()) {
        Some(set) => (set, None),
        None => {
            let mut unique = rows.clone();
            unique.sort_unstable();
            unique.dedup();
            // Every row is present in `unique`, so the search always succeeds.
            let inverse = rows
                .iter()
                .map(|r| unique.binary_search(r).unwrap_or_default())
                .collect();
            let set = RowRanges::from_increasing_rows(unique).unwrap_or_default();
            (set, Some(inverse))
        }
    };
    let mut result_shape = vec![out_rows];
    result_shape.extend(resolved_rest.result_shape());
    Ok(FancyPlan {
        rows,
        inverse,
        rest: resolved_rest.ranges,
        rest_dropped: resolved_rest.dropped,
        result_shape,
    })
}

/// Reorders rows read in ascending order into the requested order.
///
/// `read` holds the distinct rows (each `row_len` items long) in ascending order; the output
/// holds `inverse.len()` rows.
pub fn apply_inverse<T: Clone>(
    read: &[T],
    row_len: usize,
    inverse: &[usize],
) -> Result<Vec<T>, Error> {
    let mut out = Vec::with_capacity(inverse.len().saturating_mul(row_len));
    for &pos in inverse {
        let start = pos.saturating_mul(row_len);
        let row = read
            .get(start..start.saturating_add(row_len))
            .ok_or_else(|| Error::InvalidSelection {
                reason: format!("fancy reorder: row {pos} missing from the data read"),
            })?;
        out.extend_from_slice(row);
    }
    Ok(out)
}
