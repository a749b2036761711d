//! Property tests of `RowRanges` against a `Vec<bool>` oracle.

use std::ops::Range;

use hdfstream::selection::RowRanges;
use proptest::prelude::*;

const N: u64 = 64;

fn oracle(ranges: &[Range<u64>]) -> Vec<bool> {
    let mut v = vec![false; N as usize];
    for r in ranges {
        for i in r.clone() {
            v[i as usize] = true;
        }
    }
    v
}

fn to_bits(rr: &RowRanges) -> Vec<bool> {
    let mut v = vec![false; N as usize];
    for r in rr.iter() {
        for i in r {
            assert!(!v[i as usize], "runs overlap at row {i}");
            v[i as usize] = true;
        }
    }
    v
}

/// Checks the private-representation invariants through the public iterator.
fn assert_normalised(rr: &RowRanges) {
    let runs: Vec<_> = rr.iter().collect();
    for r in &runs {
        assert!(r.start < r.end, "empty run {r:?}");
    }
    for w in runs.windows(2) {
        assert!(
            w[0].end < w[1].start,
            "runs not ascending/disjoint/merged: {w:?}"
        );
    }
}

fn ranges_strategy() -> impl Strategy<Value = Vec<Range<u64>>> {
    prop::collection::vec((0..N, 0..N).prop_map(|(a, b)| a.min(b)..a.max(b)), 0..12)
}

proptest! {
    #[test]
    fn from_ranges_matches_oracle(ranges in ranges_strategy()) {
        let rr = RowRanges::from_ranges(ranges.clone());
        assert_normalised(&rr);
        let bits = oracle(&ranges);
        prop_assert_eq!(to_bits(&rr), bits.clone());
        prop_assert_eq!(rr.row_count(), bits.iter().filter(|b| **b).count() as u64);
        for i in 0..N {
            prop_assert_eq!(rr.contains(i), bits[i as usize]);
        }
        let collected: RowRanges = ranges.iter().cloned().collect();
        prop_assert_eq!(collected, rr);
    }

    #[test]
    fn union_and_intersection_match_oracle(a in ranges_strategy(), b in ranges_strategy()) {
        let (ra, rb) = (RowRanges::from_ranges(a.clone()), RowRanges::from_ranges(b.clone()));
        let (oa, ob) = (oracle(&a), oracle(&b));
        let u = ra.union(&rb);
        let i = ra.intersection(&rb);
        assert_normalised(&u);
        assert_normalised(&i);
        let ou: Vec<bool> = oa.iter().zip(&ob).map(|(x, y)| *x || *y).collect();
        let oi: Vec<bool> = oa.iter().zip(&ob).map(|(x, y)| *x && *y).collect();
        prop_assert_eq!(to_bits(&u), ou);
        prop_assert_eq!(to_bits(&i), oi);
    }

    #[test]
    fn from_rows_matches_oracle(rows in prop::collection::vec(0..N, 0..40)) {
        let rr = RowRanges::from_rows(rows.iter().copied());
        assert_normalised(&rr);
        let mut bits = vec![false; N as usize];
        for r in &rows { bits[*r as usize] = true; }
        prop_assert_eq!(to_bits(&rr), bits);
    }

    #[test]
    fn increasing_rows_build_the_same_set(rows in prop::collection::vec(0..N, 0..40)) {
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let strictly_increasing = rows.windows(2).all(|w| w[0] < w[1]);
        let fast = RowRanges::from_increasing_rows(rows.iter().copied());
        prop_assert_eq!(fast.is_some(), strictly_increasing);
        prop_assert_eq!(RowRanges::from_increasing_rows(sorted.iter().copied()), Some(RowRanges::from_rows(rows)));
        let rr = RowRanges::from_rows(sorted);
        let chunks: Vec<_> = rr.dim_selection_chunks(2).flatten().collect();
        prop_assert_eq!(chunks, rr.to_dim_selections());
    }

    #[test]
    fn first_keeps_the_n_smallest_rows(ranges in ranges_strategy(), n in 0..N + 5) {
        let rr = RowRanges::from_ranges(ranges.clone());
        let first = rr.first(n);
        assert_normalised(&first);
        let mut left = n;
        let bits: Vec<bool> = oracle(&ranges)
            .into_iter()
            .map(|b| {
                let keep = b && left > 0;
                if keep { left -= 1; }
                keep
            })
            .collect();
        prop_assert_eq!(to_bits(&first), bits);
        prop_assert_eq!(first.row_count(), n.min(rr.row_count()));
    }

    #[test]
    fn chunks_partition_the_runs(ranges in ranges_strategy(), max_runs in 0usize..5) {
        let rr = RowRanges::from_ranges(ranges);
        let chunks: Vec<RowRanges> = rr.chunks(max_runs).collect();
        let limit = max_runs.max(1);
        for c in &chunks {
            prop_assert!(c.run_count() >= 1 && c.run_count() <= limit);
        }
        let runs: Vec<_> = chunks.iter().flat_map(|c| c.iter()).collect();
        prop_assert_eq!(runs, rr.iter().collect::<Vec<_>>());
        prop_assert_eq!(chunks.len(), rr.run_count().div_ceil(limit));
    }
}

#[test]
fn touching_ranges_merge_and_empty_ones_vanish() {
    let rr = RowRanges::from_ranges([5..7, 0..5, 9..9, 10..12]);
    assert_eq!(rr.iter().collect::<Vec<_>>(), vec![0..7, 10..12]);
    let ds = rr.to_dim_selections();
    assert_eq!(
        (ds[0].start, ds[0].count, ds[1].start, ds[1].count),
        (0, 7, 10, 2)
    );
    assert!(RowRanges::from_ranges(std::iter::once(3..3)).is_empty());
}

/// A seeded xorshift generator: `next(m)` is a pseudo-random value in `0..m`.
fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed;
    move |m| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    }
}

/// `split_by_files` and `join_files` against a row-by-row computation, on pseudo-random sets
/// and file sizes (including empty files and rows past the last file).
#[test]
fn split_by_files_and_join_files_match_row_by_row() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..200 {
        let files: Vec<u64> = (0..next(6)).map(|_| next(40)).collect();
        let total: u64 = files.iter().sum();
        let rows: Vec<u64> = (0..next(60)).map(|_| next(total + 10)).collect();
        let set = RowRanges::from_rows(rows.iter().copied());
        let split = set.split_by_files(&files);
        assert_eq!(split.len(), files.len());
        let mut offset = 0;
        for (n, local) in files.iter().zip(&split) {
            let want: Vec<u64> = (0..*n).filter(|r| set.contains(offset + r)).collect();
            let got: Vec<u64> = local.iter().flatten().collect();
            assert_eq!(got, want, "files {files:?}, rows {rows:?}");
            offset += n;
        }
        let joined = RowRanges::join_files(files.iter().copied().zip(&split));
        let inside = RowRanges::from_rows(rows.iter().copied().filter(|&r| r < total));
        assert_eq!(joined, inside);
    }
}

/// `take_positions` against indexing the set's rows as a vector.
#[test]
fn take_positions_matches_indexing_the_rows() {
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let set = RowRanges::from_rows((0..next(50)).map(|_| next(80)));
        let rows: Vec<u64> = set.iter().flatten().collect();
        let positions: Vec<u64> = (0..next(30)).map(|_| next(rows.len() as u64 + 5)).collect();
        let want = RowRanges::from_rows(
            positions
                .iter()
                .filter_map(|&p| rows.get(p as usize).copied()),
        );
        assert_eq!(set.take_positions(positions.iter().copied()), want);
    }
    let set = RowRanges::from_ranges([10..13, 20..22, 30..31]);
    assert_eq!(
        set.take_positions([0, 1, 2, 3, 5]),
        RowRanges::from_ranges([10..13, 20..21, 30..31])
    );
}
