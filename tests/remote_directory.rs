//! Cassette tests for directories (`test_directory_listing/*`): lazy listings, nested lookup,
//! identity of objects reached by different routes, local KeyError-like failures.

#[allow(dead_code)]
mod remote_common;
#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::sync::Arc;

use hdfstream::{Directory, Error, Node};
use remote_common::{E0, Session, map_get, map_keys, session};

const RUN: &str = "EAGLE/Fiducial_models/RefL0012N0188";

/// Names of the subdirectories and files in the recorded listing at interaction `i`.
/// The directory at `path` below `dir` (one lookup, which must succeed and be a directory).
fn subdir(dir: &Arc<Directory>, path: &str) -> Arc<Directory> {
    dir.get(path)
        .and_then(Node::into_directory)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn recorded_listing(s: &Session, i: usize) -> (Vec<String>, Vec<String>) {
    let v = s.recorded_response(i);
    (
        map_keys(map_get(&v, "directories")),
        map_keys(map_get(&v, "files")),
    )
}

fn names<T>(v: &[(String, T)]) -> Vec<String> {
    v.iter().map(|(n, _)| n.clone()).collect()
}

#[test]
fn root_listing() {
    let Some(s) = session("test_directory_listing/test_root_listing") else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    assert!(root.is_loaded());
    assert_eq!(root.path(), "");
    let (dirs, files) = recorded_listing(&s, 0);
    assert_eq!(names(&root.directories().unwrap()), dirs);
    assert_eq!(names(&root.files().unwrap()), files);
    assert_eq!(root.keys().unwrap(), [dirs, files].concat());
    s.finish();
}

#[test]
fn eagle_dir_listing_with_files() {
    let Some(s) = session("test_directory_listing/test_eagle_dir_listing_with_files") else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    let snap = subdir(
        &eagle,
        "Fiducial_models/RefL0012N0188/snapshot_000_z020p000",
    );
    let files = snap.files().unwrap();
    let want: Vec<String> = (0..16)
        .map(|i| format!("snap_000_z020p000.{i}.hdf5"))
        .collect();
    assert_eq!(names(&files), want, "natural (server) order");
    assert_eq!(recorded_listing(&s, 1).1, want);
    assert!(snap.directories().unwrap().is_empty());
    let (_, f0) = &files[0];
    assert!(f0.is_hdf5());
    assert_eq!(f0.media_type(), "application/x-hdf5");
    assert_eq!(f0.size(), 35_752_375);
    assert_eq!(f0.last_modified_ms(), 1_495_808_965_000);
    assert_eq!(f0.path(), E0);
    s.finish();
}

#[test]
fn eagle_dir_listing_with_subdirs() {
    let Some(s) = session("test_directory_listing/test_eagle_dir_listing_with_subdirs") else {
        return;
    };
    let eagle = s.open("EAGLE").into_directory().unwrap();
    let fid = subdir(&eagle, "Fiducial_models");
    assert!(!fid.is_loaded());
    assert_eq!(
        s.request_count(),
        1,
        "lookup of a listed subdirectory makes no request"
    );
    let dirs = fid.directories().unwrap();
    assert_eq!(dirs.len(), 7);
    assert_eq!(names(&dirs), recorded_listing(&s, 1).0);
    assert!(fid.files().unwrap().is_empty());
    s.finish();
}

#[test]
fn eagle_file_listing() {
    let Some(s) = session("test_directory_listing/test_eagle_file_listing") else {
        return;
    };
    let d = s
        .open(&format!("{RUN}/snapshot_028_z000p000"))
        .into_directory()
        .unwrap();
    let (_, files) = recorded_listing(&s, 0);
    assert!(!files.is_empty());
    for name in &files {
        assert!(d.is_hdf5(name).unwrap(), "{name}");
    }
    assert!(!d.is_hdf5("no-such-file.hdf5").unwrap());
    s.finish();
}

#[test]
fn eagle_subdir() {
    let Some(s) = session("test_directory_listing/test_eagle_subdir") else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    let fid = subdir(&eagle, "Fiducial_models");
    let run = subdir(&eagle, "Fiducial_models/RefL0012N0188");
    let again = subdir(&fid, "RefL0012N0188");
    assert!(Arc::ptr_eq(&run, &again));
    assert_eq!(run.path(), RUN);
    s.finish();
}

#[test]
fn eagle_subdir_loaded() {
    let Some(s) = session("test_directory_listing/test_eagle_subdir_loaded") else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    let fid = subdir(&eagle, "Fiducial_models");
    assert_eq!(fid.len().unwrap(), 7);
    let run = subdir(&fid, "RefL0012N0188");
    let again = subdir(&eagle, "Fiducial_models/RefL0012N0188");
    assert!(Arc::ptr_eq(&run, &again));
    s.finish();
}

#[test]
fn implicit_directory() {
    let Some(s) = session("test_directory_listing/test_implicit_directory") else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    let snap = root
        .get(&format!("{RUN}/snapshot_028_z000p000"))
        .unwrap()
        .into_directory()
        .unwrap();
    assert!(snap.is_loaded());
    let eagle = subdir(&root, "EAGLE");
    assert!(!eagle.is_loaded(), "intermediate directories stay unloaded");
    let fid = subdir(&eagle, "Fiducial_models");
    assert!(!fid.is_loaded());
    assert_eq!(s.request_count(), 2);
    eagle.directories().unwrap();
    let dirs = fid.directories().unwrap();
    let (_, run) = dirs.iter().find(|(n, _)| n == "RefL0012N0188").unwrap();
    let snap_again = subdir(run, "snapshot_028_z000p000");
    assert!(
        Arc::ptr_eq(&snap, &snap_again),
        "listings reuse implicitly created objects"
    );
    s.finish();
}

fn assert_not_found(r: hdfstream::Result<Node>) {
    match r {
        Err(Error::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn non_existent_directory() {
    let Some(s) = session("test_directory_listing/test_non_existent_directory") else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    assert_not_found(eagle.get("invalid"));
    assert!(!eagle.contains("invalid").unwrap());
    s.finish();
}

#[test]
fn non_existent_directory_already_loaded() {
    let Some(s) = session("test_directory_listing/test_non_existent_directory_already_loaded")
    else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    let eagle = subdir(&root, "EAGLE");
    eagle.len().unwrap();
    assert_not_found(eagle.get("invalid"));
    s.finish();
}

#[test]
fn non_existent_subdir_in_directory_already_loaded() {
    let Some(s) =
        session("test_directory_listing/test_non_existent_subdir_in_directory_already_loaded")
    else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    let eagle = subdir(&root, "EAGLE");
    eagle.len().unwrap();
    assert_not_found(eagle.get("invalid1/invalid2"));
    s.finish();
}

#[test]
fn non_existent_subdir_in_directory_not_already_loaded() {
    let Some(s) =
        session("test_directory_listing/test_non_existent_subdir_in_directory_not_already_loaded")
    else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    assert_not_found(root.get("EAGLE/invalid1/invalid2"));
    s.finish();
}

#[test]
fn read_file() {
    let Some(s) = session("test_directory_listing/test_read_file") else {
        return;
    };
    let root = s.open("/").into_directory().unwrap();
    let f = root
        .get("Tests/SWIFT/IOExamples/ssio_ci_04_2025/README")
        .unwrap()
        .into_file()
        .unwrap();
    assert_eq!(f.media_type(), "text/plain;charset=UTF-8");
    assert_eq!(f.size(), 1729);
    assert!(!f.is_hdf5());
    assert!(f.root().is_err(), "a text file has no HDF5 root");
    let mut buf = Vec::new();
    assert_eq!(f.download(&mut buf).unwrap(), 1729);
    assert_eq!(buf, s.replay.cassette().interactions[2].response_body);
    assert!(buf.starts_with(b"This is a set of"));
    s.finish();
}

#[test]
fn request_dir_with_dir_already_loaded() {
    let Some(s) = session("test_directory_listing/test_request_dir_with_dir_already_loaded") else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    let snap = subdir(
        &eagle,
        "Fiducial_models/RefL0012N0188/snapshot_000_z020p000",
    );
    let run = subdir(&eagle, "Fiducial_models/RefL0012N0188");
    let dirs = run.directories().unwrap();
    let (_, listed) = dirs
        .iter()
        .find(|(n, _)| n == "snapshot_000_z020p000")
        .unwrap();
    assert!(Arc::ptr_eq(&snap, listed));
    s.finish();
}

#[test]
fn request_dir_with_file_already_loaded() {
    let Some(s) = session("test_directory_listing/test_request_dir_with_file_already_loaded")
    else {
        return;
    };
    let eagle = s.open("/EAGLE").into_directory().unwrap();
    let file = eagle
        .get(E0.trim_start_matches("EAGLE/"))
        .unwrap()
        .into_file()
        .unwrap();
    let snap = subdir(
        &eagle,
        "Fiducial_models/RefL0012N0188/snapshot_000_z020p000",
    );
    let files = snap.files().unwrap();
    let (_, listed) = files
        .iter()
        .find(|(n, _)| n == "snap_000_z020p000.0.hdf5")
        .unwrap();
    assert!(Arc::ptr_eq(&file, listed));
    assert_eq!(files.len(), 16);
    s.finish();
}
