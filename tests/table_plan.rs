//! The table core's plan (columns, per-file rows, cross-file checks) against libhdf5 reading
//! the same files.

#[allow(dead_code)]
mod region_common;

use hdfstream::Error;
use hdfstream::table::{OnUnsupported, PlanOptions, TablePlan};
use region_common::Snapshot;

/// Names and first dimensions of the datasets of `group` in one file, from libhdf5.
fn h5_datasets(path: &std::path::Path, group: &str) -> Vec<(String, Vec<usize>)> {
    let f = hdf5_metno::File::open(path).unwrap();
    let g = f.group(group).unwrap();
    let mut out = Vec::new();
    for name in g.member_names().unwrap() {
        if let Ok(d) = g.dataset(&name) {
            out.push((name, d.shape()));
        }
    }
    out
}

#[test]
fn plan_of_a_multi_file_group_matches_libhdf5() {
    let s = Snapshot::new(30_000, 3);
    let backend = s.backend();
    let files = s.vpaths();
    // Every dataset maps; the adapter's mapping is kept per column.
    let plan = TablePlan::load(
        backend.as_ref(),
        &files,
        "PartType0",
        &PlanOptions::default(),
        |name, d| Ok::<_, String>((name.to_owned(), d.shape.len())),
    )
    .unwrap();
    assert_eq!(plan.group, "/PartType0");
    let first = h5_datasets(&s.summary.snapshot_files[0], "PartType0");
    let mut want: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    let mut got: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    for c in &plan.columns {
        assert_eq!(c.object, format!("/PartType0/{}", c.name));
        assert_eq!(c.mapped, (c.name.clone(), c.info.shape.len()));
        let h5 = &first.iter().find(|(n, _)| *n == c.name).unwrap().1;
        let h5: Vec<u64> = h5.iter().map(|&d| d as u64).collect();
        assert_eq!(c.info.shape, h5, "{}", c.name);
    }
    let mut total = 0;
    let (offsets, sum) = plan.offsets().unwrap();
    for ((f, path), offset) in plan
        .files
        .iter()
        .zip(&s.summary.snapshot_files)
        .zip(offsets)
    {
        let n = h5_datasets(path, "PartType0")[0].1[0] as u64;
        assert_eq!(f.rows, n, "{}", f.vpath);
        assert_eq!(offset, total);
        total += n;
    }
    assert_eq!(sum, total);
    assert_eq!(plan.total_rows(), total);

    // An explicit projection keeps its order; a name that is not there is NotFound.
    let opts = PlanOptions {
        columns: Some(vec!["Masses".into(), "Coordinates".into()]),
        ..PlanOptions::default()
    };
    let plan = TablePlan::load(backend.as_ref(), &files, "PartType0", &opts, |_, _| {
        Ok::<_, String>(())
    })
    .unwrap();
    let names: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Masses", "Coordinates"]);
    let opts = PlanOptions {
        columns: Some(vec!["NoSuchThing".into()]),
        ..PlanOptions::default()
    };
    let e = TablePlan::load(backend.as_ref(), &files, "PartType0", &opts, |_, _| {
        Ok::<_, String>(())
    })
    .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");

    // A dataset the adapter refuses is skipped, or named in the error.
    let refuse = |name: &str, _: &_| {
        if name == "Masses" {
            Err("no mapping".to_owned())
        } else {
            Ok(())
        }
    };
    let plan = TablePlan::load(
        backend.as_ref(),
        &files,
        "PartType0",
        &PlanOptions::default(),
        refuse,
    )
    .unwrap();
    assert!(plan.column("Masses").is_none() && plan.column("Coordinates").is_some());
    let opts = PlanOptions {
        on_unsupported: OnUnsupported::Error,
        ..PlanOptions::default()
    };
    let e = TablePlan::load(backend.as_ref(), &files, "PartType0", &opts, refuse).unwrap_err();
    assert!(
        matches!(e, Error::TypeMismatch { .. }) && e.to_string().contains("Masses"),
        "{e}"
    );
    // A group that is not in every file, and no file at all.
    let e = TablePlan::load(
        backend.as_ref(),
        &files,
        "NoGroup",
        &PlanOptions::default(),
        |_, _| Ok::<_, String>(()),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let e = TablePlan::load(
        backend.as_ref(),
        &[],
        "PartType0",
        &PlanOptions::default(),
        |_, _| Ok::<_, String>(()),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidPath { .. }), "{e}");
}

/// A file whose dataset differs in type, or lacks one, fails with the file named.
#[test]
fn cross_file_differences_are_errors() {
    let s = Snapshot::new(6_000, 2);
    let second = &s.summary.snapshot_files[1];
    {
        let f = hdf5_metno::File::open_rw(second).unwrap();
        f.unlink("PartType0/Masses").unwrap();
        f.new_dataset::<i32>()
            .shape([3usize])
            .create("PartType0/Masses")
            .unwrap();
        f.unlink("PartType1/ParticleIDs").unwrap();
    }
    let backend = s.backend();
    let files = s.vpaths();
    let ok = |_: &str, _: &_| Ok::<_, String>(());
    let e = TablePlan::load(
        backend.as_ref(),
        &files,
        "PartType0",
        &PlanOptions::default(),
        ok,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::TypeMismatch { .. }) && e.to_string().contains(&files[1]),
        "{e}"
    );
    let e = TablePlan::load(
        backend.as_ref(),
        &files,
        "PartType1",
        &PlanOptions::default(),
        ok,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }) && e.to_string().contains("ParticleIDs"),
        "{e}"
    );
}
