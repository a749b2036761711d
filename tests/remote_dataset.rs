//! Cassette tests for dataset reads (`test_dataset/*`, `test_read_direct/*`): values are
//! compared with what h5py read from the same file (`eagle_expected.json`) and every slice
//! request body with the one the Python client sent.

#[allow(dead_code)]
mod remote_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::sync::Arc;

use hdfstream::{Dataset, Error, HasAttrs, Selection, sel};
use remote_common::{E0, Session, assert_attr_matches, expected_rows, pick, session};

/// The prefix of every cassette here: root listing, file, `/`, `/PartType1`.
fn open_dataset(s: &Session, name: &str) -> Arc<Dataset> {
    let root = s.open("/").into_directory().unwrap();
    root.file(E0)
        .unwrap()
        .dataset(&format!("PartType1/{name}"))
        .unwrap()
}

fn coords() -> Option<(Vec<f64>, usize)> {
    expected_rows("PartType1/Coordinates")
}

#[test]
fn dataset_attributes() {
    let Some(s) = session("test_dataset/test_dataset_attributes") else {
        return;
    };
    let Some(expected) = support::eagle_expected() else {
        return;
    };
    let d = open_dataset(&s, "Coordinates");
    let want = expected["PartType1/Coordinates"]["attributes"]
        .as_object()
        .unwrap();
    assert_eq!(
        d.attrs().keys().collect::<Vec<_>>(),
        want.keys().map(String::as_str).collect::<Vec<_>>()
    );
    for (name, w) in want {
        assert_attr_matches(name, d.attrs().get(name).unwrap(), w);
    }
    s.finish();
}

fn fancy_case(id: usize, index: Vec<i64>, rest: Selection, cols: std::ops::Range<usize>) {
    let Some(s) = session(&format!(
        "test_dataset/test_dataset_index_with_array[index{id}]"
    )) else {
        return;
    };
    let Some((vals, w)) = coords() else { return };
    let d = open_dataset(&s, "Coordinates");
    let got = d.read_fancy::<f64>(&index, &rest).unwrap();
    let rows: Vec<usize> = index.iter().map(|&i| i as usize).collect();
    assert_eq!(
        got.as_slice().unwrap(),
        pick(&vals, w, &rows, cols.clone()).as_slice()
    );
    let mut shape = vec![index.len()];
    if cols.len() > 1 {
        shape.push(cols.len());
    }
    assert_eq!(got.shape(), shape.as_slice());
    s.finish();
}

#[test]
fn index_with_array_0() {
    fancy_case(0, (0..1000).collect(), sel![..], 0..3);
}

#[test]
fn index_with_array_1() {
    fancy_case(1, (0..1000).collect(), sel![1], 1..2);
}

#[test]
fn index_with_array_2() {
    fancy_case(2, (0..1000).rev().collect(), sel![..], 0..3);
}

#[test]
fn index_with_array_3() {
    fancy_case(3, (0..1000).rev().collect(), sel![2], 2..3);
}

#[test]
fn index_with_array_4() {
    fancy_case(
        4,
        vec![5, 5, 5, 6, 7, 7, 8, 8, 8, 8, 100, 101, 102, 103, 19, 20, 17],
        sel![..],
        0..3,
    );
}

#[test]
fn multi_slice() {
    let Some(s) = session("test_dataset/test_dataset_multi_slice") else {
        return;
    };
    let Some((vals, w)) = coords() else { return };
    let d = open_dataset(&s, "Coordinates");
    for (a, b) in [((0, 500), (500, 1000)), ((300, 400), (600, 700))] {
        let sels = [sel![a.0..a.1, ..], sel![b.0..b.1, ..]];
        let rows: Vec<usize> = (a.0 as usize..a.1 as usize)
            .chain(b.0 as usize..b.1 as usize)
            .collect();
        let want = pick(&vals, w, &rows, 0..3);
        let got = d.request_slices::<f64>(&sels).unwrap();
        assert_eq!(got.shape(), &[rows.len(), 3]);
        assert_eq!(got.as_slice().unwrap(), want.as_slice());
        let mut dest = vec![0.0f64; want.len()];
        d.request_slices_into(&sels, &mut dest).unwrap();
        assert_eq!(dest, want);
    }
    s.finish();
}

#[test]
fn slice_then_read_into() {
    let Some(s) = session("test_dataset/test_dataset_slice") else {
        return;
    };
    let Some((vals, w)) = coords() else { return };
    let d = open_dataset(&s, "Coordinates");
    let ranges = [(0i64, 1000i64), (500, 501), (910, 920)];
    for (a, b) in ranges {
        let got = d.read_slice::<f64>(&sel![a..b, ..]).unwrap();
        let rows: Vec<usize> = (a as usize..b as usize).collect();
        assert_eq!(got.shape(), &[rows.len(), 3]);
        assert_eq!(
            got.as_slice().unwrap(),
            pick(&vals, w, &rows, 0..3).as_slice()
        );
    }
    for (a, b) in ranges {
        let rows: Vec<usize> = (a as usize..b as usize).collect();
        let mut dest = vec![0.0f64; rows.len() * 3];
        d.read_into(&sel![a..b, ..], &mut dest).unwrap();
        assert_eq!(dest, pick(&vals, w, &rows, 0..3));
    }
    s.finish();
}

#[test]
fn read_all_pos() {
    let Some(s) = session("test_read_direct/test_read_all_pos") else {
        return;
    };
    let Some((vals, _)) = coords() else { return };
    let d = open_dataset(&s, "Coordinates");
    let mut arr = ndarray::Array2::<f64>::zeros((1000, 3));
    d.read_into_view(&sel![..1000, ..], arr.view_mut()).unwrap();
    assert_eq!(arr.as_slice().unwrap(), vals.as_slice());
    s.finish();
}

#[test]
fn read_all_pos_as_float32_is_refused_without_request() {
    let Some(s) = session("test_read_direct/test_read_all_pos_as_float32") else {
        return;
    };
    let d = open_dataset(&s, "Coordinates");
    let before = s.request_count();
    let mut dest = vec![0.0f32; 3000];
    match d.read_into(&sel![..1000, ..], &mut dest) {
        Err(Error::TypeMismatch { .. }) => {}
        other => panic!("f8 -> f4 must be refused, got {other:?}"),
    }
    assert!(matches!(
        d.read_slice::<f32>(&sel![..1000]),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        d.read_slice::<i64>(&sel![..1000]),
        Err(Error::TypeMismatch { .. })
    ));
    assert_eq!(s.request_count(), before, "no data request");
    s.finish();
}

#[test]
fn read_all_vel_as_float64() {
    let Some(s) = session("test_read_direct/test_read_all_vel_as_float64") else {
        return;
    };
    let Some((vals, _)) = expected_rows("PartType1/Velocity") else {
        return;
    };
    let d = open_dataset(&s, "Velocity");
    let mut dest = vec![0.0f64; 3000];
    d.read_into(&sel![..1000, ..], &mut dest).unwrap();
    assert_eq!(dest, vals, "f4 -> f8 is exact");
    s.finish();
}

#[test]
fn read_axis_pos() {
    let Some(s) = session("test_read_direct/test_read_axis_pos") else {
        return;
    };
    let Some((vals, w)) = coords() else { return };
    let rows: Vec<usize> = (0..1000).collect();
    for col in 0..3i64 {
        // The Python fixture re-opens the file for every use; so do we.
        let d = open_dataset(&s, "Coordinates");
        let mut dest = vec![0.0f64; 1000];
        d.read_into(&sel![..1000, col], &mut dest).unwrap();
        assert_eq!(dest, pick(&vals, w, &rows, col as usize..col as usize + 1));
    }
    s.finish();
}

#[test]
fn read_axis_pos_into_2d_is_refused() {
    // A column of a 2-D array is not contiguous: refused before any data request (the
    // cassette holds only the three prefixes of the re-opened file).
    let Some(s) = session("test_read_direct/test_read_axis_pos_into_2d") else {
        return;
    };
    let mut arr = ndarray::Array2::<f64>::zeros((1000, 3));
    for col in 0..3i64 {
        let d = open_dataset(&s, "Coordinates");
        let r = d.read_into_view(&sel![..1000, col], arr.column_mut(col as usize));
        assert!(matches!(r, Err(Error::InvalidSelection { .. })), "{r:?}");
        // A wrong-length contiguous destination is refused too.
        let mut dest = vec![0.0f64; 3000];
        let r = d.read_into(&sel![..1000, col], &mut dest);
        assert!(matches!(r, Err(Error::InvalidSelection { .. })), "{r:?}");
    }
    assert!(arr.iter().all(|v| *v == 0.0));
    s.finish();
}

#[test]
fn read_partial_vel_no_conversion() {
    let Some(s) = session("test_read_direct/test_read_partial_vel_no_conversion") else {
        return;
    };
    let Some((vals, _)) = expected_rows("PartType1/Velocity") else {
        return;
    };
    let d = open_dataset(&s, "Velocity");
    let mut dest = vec![0.0f32; 3000];
    d.read_into(&sel![200..300, ..], &mut dest[600..900])
        .unwrap();
    for (i, v) in dest.iter().enumerate() {
        let want = if (600..900).contains(&i) {
            vals[i] as f32
        } else {
            0.0
        };
        assert_eq!(*v, want, "element {i}");
    }
    s.finish();
}

#[test]
fn read_partial_vel_with_conversion() {
    let Some(s) = session("test_read_direct/test_read_partial_vel_with_conversion") else {
        return;
    };
    let Some((vals, _)) = expected_rows("PartType1/Velocity") else {
        return;
    };
    let d = open_dataset(&s, "Velocity");
    let mut dest = vec![0.0f64; 3000];
    d.read_into(&sel![200..300, ..], &mut dest[600..900])
        .unwrap();
    assert_eq!(&dest[600..900], &vals[600..900]);
    assert!(dest[..600].iter().chain(&dest[900..]).all(|v| *v == 0.0));
    s.finish();
}
