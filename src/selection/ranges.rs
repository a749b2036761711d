//! `RowRanges`: a normalised set of row indices stored as runs.

use std::ops::Range;

use hdfstream_protocol::DimSelection;

/// A set of rows along one dimension, stored as ascending, disjoint, non-empty runs.
///
/// Touching or overlapping input ranges are merged, empty ones dropped, so two values with the
/// same rows always have the same representation (and compare equal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RowRanges {
    /// Invariant: `runs[i].start < runs[i].end < runs[i + 1].start`.
    runs: Vec<Range<u64>>,
}

impl RowRanges {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the set covering every row of any of `ranges` (in any order, possibly overlapping).
    pub fn from_ranges<I: IntoIterator<Item = Range<u64>>>(ranges: I) -> Self {
        let mut runs: Vec<Range<u64>> = ranges.into_iter().filter(|r| r.start < r.end).collect();
        let sorted = runs.windows(2).all(|w| w[0].end < w[1].start);
        if !sorted {
            runs.sort_unstable_by_key(|r| r.start);
            let mut merged: Vec<Range<u64>> = Vec::with_capacity(runs.len());
            for r in runs {
                match merged.last_mut() {
                    Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                    _ => merged.push(r),
                }
            }
            runs = merged;
        }
        Self { runs }
    }

    /// Builds the set of rows listed in `rows` (any order, duplicates allowed).
    pub fn from_rows<I: IntoIterator<Item = u64>>(rows: I) -> Self {
        let mut rows: Vec<u64> = rows.into_iter().collect();
        rows.sort_unstable();
        rows.dedup();
        let mut runs: Vec<Range<u64>> = Vec::new();
        for row in rows {
            match runs.last_mut() {
                Some(last) if last.end == row => last.end = row.saturating_add(1),
                _ => runs.push(row..row.saturating_add(1)),
            }
        }
        Self::from_ranges(runs)
    }

    /// Total number of rows in the set.
    pub fn row_count(&self) -> u64 {
        self.runs.iter().map(|r| r.end - r.start).sum()
    }

    /// Number of runs (maximal contiguous ranges).
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// True when no row is selected.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The runs in ascending order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Range<u64>> + '_ {
        self.runs.iter().cloned()
    }

    /// True when `row` is in the set.
    pub fn contains(&self, row: u64) -> bool {
        let idx = self.runs.partition_point(|r| r.end <= row);
        self.runs.get(idx).is_some_and(|r| r.start <= row)
    }

    /// One past the largest row, or 0 for the empty set.
    pub fn end(&self) -> u64 {
        self.runs.last().map_or(0, |r| r.end)
    }

    /// The rows at `positions` of the set, where position 0 is its smallest row (positions
    /// in any order; those past the end are ignored).
    pub fn take_positions<I: IntoIterator<Item = u64>>(&self, positions: I) -> Self {
        // Position of the first row of each run.
        let mut firsts = Vec::with_capacity(self.runs.len());
        let mut at = 0u64;
        for r in &self.runs {
            firsts.push(at);
            at += r.end - r.start;
        }
        let mut out: Vec<Range<u64>> = Vec::new();
        for p in positions {
            if p >= at {
                continue;
            }
            // `firsts[0] == 0 <= p`, so the index is at least 1.
            let i = firsts.partition_point(|&f| f <= p).saturating_sub(1);
            let (Some(run), Some(first)) = (self.runs.get(i), firsts.get(i)) else {
                continue;
            };
            let row = run.start + (p - first);
            match out.last_mut() {
                Some(last) if last.end == row => last.end = row + 1,
                _ => out.push(row..row + 1),
            }
        }
        Self::from_ranges(out)
    }

    /// The `n` smallest rows of the set (all of them when it has fewer).
    pub fn first(&self, n: u64) -> Self {
        let mut left = n;
        let mut runs = Vec::new();
        for r in &self.runs {
            if left == 0 {
                break;
            }
            let take = (r.end - r.start).min(left);
            runs.push(r.start..r.start + take);
            left -= take;
        }
        // A prefix of disjoint, non-touching runs keeps both properties.
        Self { runs }
    }

    /// Rows present in both sets.
    pub fn intersection(&self, other: &Self) -> Self {
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while let (Some(a), Some(b)) = (self.runs.get(i), other.runs.get(j)) {
            let start = a.start.max(b.start);
            let end = a.end.min(b.end);
            if start < end {
                out.push(start..end);
            }
            if a.end <= b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        // Pieces of disjoint runs cut by disjoint runs stay disjoint and non-touching.
        Self { runs: out }
    }

    /// Rows present in either set.
    pub fn union(&self, other: &Self) -> Self {
        Self::from_ranges(self.iter().chain(other.iter()))
    }

    /// Splits global row numbers over files holding `file_rows[i]` consecutive rows each
    /// into one set of file-local rows per file (rows past the last file are dropped).
    pub fn split_by_files(&self, file_rows: &[u64]) -> Vec<RowRanges> {
        let mut out = Vec::with_capacity(file_rows.len());
        let mut runs = self.runs.iter().cloned().peekable();
        let mut offset = 0u64;
        for &n in file_rows {
            let end = offset.saturating_add(n);
            let mut local = Vec::new();
            while let Some(r) = runs.peek_mut() {
                if r.start >= end {
                    break;
                }
                let (a, b) = (r.start.max(offset), r.end.min(end));
                if a < b {
                    local.push(a - offset..b - offset);
                }
                if r.end <= end {
                    runs.next();
                } else {
                    r.start = end;
                    break;
                }
            }
            out.push(RowRanges { runs: local });
            offset = end;
        }
        out
    }

    /// The inverse of [`split_by_files`](Self::split_by_files): global rows from each
    /// file's row count and file-local rows, files in order.
    pub fn join_files<'a, I>(files: I) -> RowRanges
    where
        I: IntoIterator<Item = (u64, &'a RowRanges)>,
    {
        let mut offset = 0u64;
        let mut runs = Vec::new();
        for (n, local) in files {
            runs.extend(
                local
                    .iter()
                    .map(|r| r.start.saturating_add(offset)..r.end.saturating_add(offset)),
            );
            offset = offset.saturating_add(n);
        }
        Self::from_ranges(runs)
    }

    /// Splits the set into consecutive pieces of at most `max_runs` runs each (at least one).
    ///
    /// Used to respect the server's limit of 2^24 slices per request.
    pub fn chunks(&self, max_runs: usize) -> impl Iterator<Item = RowRanges> + '_ {
        self.runs
            .chunks(max_runs.max(1))
            .map(|c| RowRanges { runs: c.to_vec() })
    }

    /// Builds the set from rows given in strictly increasing order (one pass, no sorting);
    /// `None` if they are not strictly increasing.
    pub fn from_increasing_rows<I: IntoIterator<Item = u64>>(rows: I) -> Option<Self> {
        let mut runs: Vec<Range<u64>> = Vec::new();
        for row in rows {
            match runs.last_mut() {
                Some(last) if row < last.end => return None,
                Some(last) if row == last.end => last.end = row.checked_add(1)?,
                _ => runs.push(row..row.checked_add(1)?),
            }
        }
        Some(Self { runs })
    }

    /// The runs as wire `start`/`count` pairs, in pieces of at most `max_runs` runs (at least
    /// one), without building intermediate sets.
    pub fn dim_selection_chunks(
        &self,
        max_runs: usize,
    ) -> impl Iterator<Item = Vec<DimSelection>> + '_ {
        self.runs.chunks(max_runs.max(1)).map(|c| {
            c.iter()
                .map(|r| DimSelection {
                    start: r.start,
                    count: r.end - r.start,
                })
                .collect()
        })
    }

    /// The runs as wire `start`/`count` pairs.
    pub fn to_dim_selections(&self) -> Vec<DimSelection> {
        self.runs
            .iter()
            .map(|r| DimSelection {
                start: r.start,
                count: r.end - r.start,
            })
            .collect()
    }
}

impl FromIterator<Range<u64>> for RowRanges {
    fn from_iter<I: IntoIterator<Item = Range<u64>>>(iter: I) -> Self {
        Self::from_ranges(iter)
    }
}

impl<'a> IntoIterator for &'a RowRanges {
    type Item = Range<u64>;
    type IntoIter = std::iter::Cloned<std::slice::Iter<'a, Range<u64>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.runs.iter().cloned()
    }
}
