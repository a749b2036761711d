//! Simple selections, multi-slice validation, fancy planning and local gathering.
//!
//! The expected values come from numpy's indexing rules, re-implemented here by brute force on
//! explicit index lists, and from the request bodies recorded from the Python client
//! (PROTOCOL.md §5.1).

use hdfstream::sel;
use hdfstream::selection::{
    DimIndex, FancyIndex, Selection, apply_inverse, gather, plan_fancy, plan_multi_slice,
};
use hdfstream_protocol::{DimSelection, SliceSpec};
use proptest::prelude::*;

fn ds(start: u64, count: u64) -> DimSelection {
    DimSelection { start, count }
}

/// numpy `list(range(len))[start:stop]` computed by brute force (Python slice rules).
fn numpy_slice(len: u64, start: Option<i64>, stop: Option<i64>) -> Vec<u64> {
    let n = len as i64;
    let norm = |b: i64| if b < 0 { (b + n).max(0) } else { b.min(n) };
    let s = start.map_or(0, norm);
    let e = stop.map_or(n, norm);
    (0..n)
        .filter(|i| *i >= s && *i < e)
        .map(|i| i as u64)
        .collect()
}

proptest! {
    #[test]
    fn ranges_follow_numpy(len in 0u64..20, start in proptest::option::of(-25i64..25), stop in proptest::option::of(-25i64..25)) {
        let r = Selection::new().dim(DimIndex::Range { start, stop }).resolve(&[len]).unwrap();
        let expected = numpy_slice(len, start, stop);
        let got: Vec<u64> = (r.ranges[0].start..r.ranges[0].start + r.ranges[0].count).collect();
        prop_assert_eq!(got, expected.clone());
        prop_assert_eq!(r.result_shape(), vec![expected.len() as u64]);
    }

    #[test]
    fn indices_wrap_or_fail(len in 0u64..10, idx in -12i64..12) {
        let r = Selection::new().dim(idx).resolve(&[len, 4]);
        let n = len as i64;
        if idx >= n || idx < -n {
            prop_assert!(r.is_err());
        } else {
            let r = r.unwrap();
            let want = if idx < 0 { idx + n } else { idx } as u64;
            prop_assert_eq!(r.ranges.clone(), vec![ds(want, 1), ds(0, 4)]);
            prop_assert_eq!(r.result_shape(), vec![4]);
        }
    }

    #[test]
    fn gather_matches_brute_force(
        shape in prop::collection::vec(1u64..5, 1..4),
        seed in any::<u64>(),
    ) {
        // Pick a random in-bounds range per dimension from the seed.
        let mut x = seed;
        let mut next = |m: u64| { x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (x >> 33) % m };
        let ranges: Vec<DimSelection> = shape.iter().map(|&l| { let s = next(l); ds(s, next(l - s + 1)) }).collect();
        let total: u64 = shape.iter().product();
        let src: Vec<u64> = (0..total).collect();
        let spec = SliceSpec { runs: vec![ranges[0]], rest: ranges[1..].to_vec() };
        let got = gather(&src, &shape, &spec).unwrap();
        // Brute force: every flat index whose multi-index lies inside all ranges, in C order.
        let mut want = Vec::new();
        for flat in 0..total {
            let mut rem = flat;
            let mut inside = true;
            for (k, &l) in shape.iter().enumerate().rev() {
                let i = rem % l;
                rem /= l;
                if i < ranges[k].start || i >= ranges[k].start + ranges[k].count { inside = false; }
            }
            if inside { want.push(flat); }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn fancy_plan_reproduces_numpy_take(idx in prop::collection::vec(-30i64..30, 0..25)) {
        let len = 30u64;
        let plan = plan_fancy(FancyIndex::Ints(&idx), &Selection::new(), &[len, 2]).unwrap();
        // Simulate the server: rows in the runs, in order, each row [2r, 2r+1].
        let mut read = Vec::new();
        for run in plan.rows.iter() { for r in run { read.extend([2 * r, 2 * r + 1]); } }
        let out = match &plan.inverse { Some(inv) => apply_inverse(&read, 2, inv).unwrap(), None => read };
        let want: Vec<u64> = idx.iter().flat_map(|&i| { let r = if i < 0 { i + 30 } else { i } as u64; [2 * r, 2 * r + 1] }).collect();
        prop_assert_eq!(out, want);
        prop_assert_eq!(plan.result_shape.clone(), vec![idx.len() as u64, 2]);
    }
}

#[test]
fn builder_macro_and_dropped_dims() {
    let shape = [414_933u64, 3];
    let r = sel![0..1000, ..].resolve(&shape).unwrap();
    assert_eq!(
        r.to_slice_spec(),
        SliceSpec {
            runs: vec![ds(0, 1000)],
            rest: vec![ds(0, 3)]
        }
    );
    let r = sel![..1000, 1].resolve(&shape).unwrap();
    assert_eq!(
        r.to_slice_spec(),
        SliceSpec {
            runs: vec![ds(0, 1000)],
            rest: vec![ds(1, 1)]
        }
    );
    assert_eq!(r.result_shape(), vec![1000]);
    assert_eq!(r.read_shape(), vec![1000, 1]);
    let r = sel![-1].resolve(&shape).unwrap();
    assert_eq!(r.ranges, vec![ds(414_932, 1), ds(0, 3)]);
    assert_eq!(r.result_shape(), vec![3]);
    let r = sel![5..=6, -2..].resolve(&shape).unwrap();
    assert_eq!(r.ranges, vec![ds(5, 2), ds(1, 2)]);
    assert!(sel![0, 0, 0].resolve(&shape).is_err(), "too many indices");
    assert!(
        Selection::new().dim_step(0..10, 2).resolve(&shape).is_err(),
        "step 2"
    );
    assert!(
        Selection::new()
            .dim_step(0..10, -1)
            .resolve(&shape)
            .is_err(),
        "negative step"
    );
    let r = Selection::new().dim_step(-3.., 1).resolve(&shape).unwrap();
    assert_eq!(r.ranges, vec![ds(414_930, 3), ds(0, 3)]);
    // Scalar dataset: empty selection, empty spec, scalar result.
    let r = Selection::all().resolve(&[]).unwrap();
    assert_eq!(
        r.to_slice_spec(),
        SliceSpec {
            runs: vec![],
            rest: vec![]
        }
    );
    assert_eq!(r.result_shape(), Vec::<u64>::new());
}

#[test]
fn fancy_plans_match_recorded_requests() {
    let shape = [414_933u64, 3];
    // test_dataset_index_with_array[index4]
    let idx = [
        5i64, 5, 5, 6, 7, 7, 8, 8, 8, 8, 100, 101, 102, 103, 19, 20, 17,
    ];
    let plan = plan_fancy(FancyIndex::Ints(&idx), &Selection::new(), &shape).unwrap();
    let reqs = plan.requests(1 << 24);
    assert_eq!(
        reqs,
        vec![SliceSpec {
            runs: vec![ds(5, 4), ds(17, 1), ds(19, 2), ds(100, 4)],
            rest: vec![ds(0, 3)]
        }]
    );
    assert_eq!(plan.rows.row_count(), 11);
    assert_eq!(plan.result_shape, vec![17, 3]);
    // index0/index1/index3: arange and reversed arange with a column.
    let fwd: Vec<i64> = (0..1000).collect();
    let plan = plan_fancy((&fwd).into(), &sel![1], &shape).unwrap();
    assert_eq!(
        plan.requests(1 << 24),
        vec![SliceSpec {
            runs: vec![ds(0, 1000)],
            rest: vec![ds(1, 1)]
        }]
    );
    assert!(plan.inverse.is_none());
    assert_eq!(plan.result_shape, vec![1000]);
    let rev: Vec<i64> = (0..1000).rev().collect();
    let plan = plan_fancy((&rev).into(), &sel![2..3], &shape).unwrap();
    assert_eq!(
        plan.requests(1 << 24),
        vec![SliceSpec {
            runs: vec![ds(0, 1000)],
            rest: vec![ds(2, 1)]
        }]
    );
    assert_eq!(plan.inverse.as_ref().unwrap()[0], 999);
    // Chunking into requests of at most 2 runs.
    let plan = plan_fancy(FancyIndex::Ints(&[1, 3, 5, 7, 9]), &Selection::new(), &[10]).unwrap();
    let reqs = plan.requests(2);
    assert_eq!(
        reqs.iter().map(|r| r.runs.len()).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    // Masks: length must match dimension 0.
    let mask = [true, false, true, true];
    let plan = plan_fancy(FancyIndex::Mask(&mask), &Selection::new(), &[4]).unwrap();
    assert_eq!(plan.requests(8)[0].runs, vec![ds(0, 1), ds(2, 2)]);
    assert!(plan_fancy(FancyIndex::Mask(&mask), &Selection::new(), &[5]).is_err());
    assert!(plan_fancy(FancyIndex::Ints(&[10]), &Selection::new(), &[10]).is_err());
    assert!(plan_fancy(FancyIndex::Ints(&[-11]), &Selection::new(), &[10]).is_err());
    // Empty index: no runs, so no request.
    let plan = plan_fancy(FancyIndex::Ints(&[]), &Selection::new(), &[10, 3]).unwrap();
    assert!(plan.requests(8).is_empty());
    assert_eq!(plan.result_shape, vec![0, 3]);
}

#[test]
fn multi_slices_match_recorded_requests_and_are_validated() {
    let shape = [414_933u64, 3];
    let m = plan_multi_slice(&[sel![0..500, ..], sel![500..1000, ..]], &shape).unwrap();
    assert_eq!(
        m.spec,
        SliceSpec {
            runs: vec![ds(0, 500), ds(500, 500)],
            rest: vec![ds(0, 3)]
        }
    );
    assert_eq!(m.result_shape, vec![1000, 3]);
    let m = plan_multi_slice(&[sel![300..400], sel![600..700]], &shape).unwrap();
    assert_eq!(m.spec.runs, vec![ds(300, 100), ds(600, 100)]);
    assert_eq!(m.result_shape, vec![200, 3]);
    // An integer in dimension 0 keeps the dimension; one in dimension 1 drops it.
    let m = plan_multi_slice(&[sel![3, 1], sel![7, 1]], &shape).unwrap();
    assert_eq!(
        m.spec,
        SliceSpec {
            runs: vec![ds(3, 1), ds(7, 1)],
            rest: vec![ds(1, 1)]
        }
    );
    assert_eq!(m.result_shape, vec![2]);
    // Rejections: differing other dims, descending, overlapping, empty list.
    assert!(plan_multi_slice(&[sel![0..5, 0..2], sel![5..6, 0..3]], &shape).is_err());
    assert!(plan_multi_slice(&[sel![10..20], sel![0..5]], &shape).is_err());
    assert!(plan_multi_slice(&[sel![0..10], sel![5..15]], &shape).is_err());
    assert!(plan_multi_slice(&[], &shape).is_err());
    // Touching is fine.
    assert!(plan_multi_slice(&[sel![0..5], sel![5..10]], &shape).is_ok());
}

#[test]
fn gather_rejects_bad_input() {
    let src = [0u8; 6];
    let spec = SliceSpec {
        runs: vec![ds(1, 2)],
        rest: vec![ds(0, 3)],
    };
    assert!(
        gather(&src, &[2, 3], &spec).is_err(),
        "row 2 is out of bounds"
    );
    assert!(
        gather(&src, &[2, 4], &spec).is_err(),
        "shape does not match data"
    );
}
