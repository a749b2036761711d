//! Shared set-up of the region tests: a generated SWIFT-like sample served on loopback, the
//! boxes every test runs, and the independent truths: libhdf5 (hdf5-metno) reading every
//! position and testing it against the box, and swiftsimio's cell selection
//! (`scripts/swift_mask.py` in the test venv).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hdfstream::RowRanges;
use hdfstream::remote::Backend;
use hdfstream_server::http::{RequestRecord, ServerHandle};
use hdfstream_server::sample::{SampleOptions, SampleSummary, write_sample};

/// A sample snapshot in a temporary directory, served on loopback.
pub(crate) struct Snapshot {
    pub(crate) server: ServerHandle,
    pub(crate) summary: SampleSummary,
    pub(crate) _dir: tempfile::TempDir,
}

impl Snapshot {
    /// `particles` gas particles over `files` files.
    pub(crate) fn new(particles: u64, files: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let summary = write_sample(
            dir.path(),
            &SampleOptions {
                particles,
                files,
                seed: 5,
            },
        )
        .expect("sample");
        if files > 1 {
            // swiftsimio masks a split snapshot through SWIFT's virtual file only.
            hdfstream_server::sample::write_virtual_snapshot(&summary).expect("virtual file");
        }
        let server = ServerHandle::start(dir.path()).expect("server");
        Self {
            server,
            summary,
            _dir: dir,
        }
    }

    /// A client connection (no retries, no progress bars).
    pub(crate) fn backend(&self) -> Arc<dyn Backend> {
        Arc::new(
            hdfstream::ClientBuilder::new()
                .with_url(self.server.base_url())
                .with_retry(hdfstream::RetryConfig::none())
                .with_progress(false)
                .build()
                .expect("connect"),
        )
    }

    /// Virtual paths of the snapshot files, in file order.
    pub(crate) fn vpaths(&self) -> Vec<String> {
        self.summary
            .snapshot_files
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    }

    /// The glob (or single file name) naming every snapshot file.
    pub(crate) fn glob(&self) -> String {
        if self.summary.snapshot_files.len() == 1 {
            self.vpaths().remove(0)
        } else {
            "snap_0000.*.hdf5".to_string()
        }
    }

    /// Slice requests for `object` since the server started.
    pub(crate) fn slices_of(&self, object: &str) -> Vec<RequestRecord> {
        self.server
            .request_log()
            .into_iter()
            .filter(|r| r.slice_runs.is_some() && r.object.as_deref() == Some(object))
            .collect()
    }
}

/// The boxes the tests run (box side 25): inside, across the boundary, wrapped, written
/// with a negative bound, a union, a zero-width box, and the whole volume.
pub(crate) const BOXES: &[(&str, &[&str])] = &[
    ("inside", &["3:7,10:14,15:19"]),
    ("across the boundary", &["23:27,4:9,12:14"]),
    ("wrapped", &["23:2,:,20:1"]),
    ("negative bound", &["-2:2,5:9,5:9"]),
    ("union", &["1:3,1:3,1:3", "20:24,12:16,2:5"]),
    ("zero width", &["12.5:12.5,12.5:12.5,12.5:12.5"]),
    ("everything", &["0:25,:,:"]),
];

/// The dataset `name` of every file of `paths`, concatenated, read with libhdf5.
pub(crate) fn h5<T: hdf5_metno::H5Type>(paths: &[PathBuf], name: &str) -> Vec<T> {
    let mut out = Vec::new();
    for p in paths {
        let f = hdf5_metno::File::open(p).expect("open");
        out.extend(f.dataset(name).expect(name).read_raw::<T>().expect("read"));
    }
    out
}

/// Positions of `ptype` in a file, read with libhdf5.
pub(crate) fn h5_positions(path: &Path, ptype: &str) -> Vec<[f64; 3]> {
    let f = hdf5_metno::File::open(path).expect("open");
    let ds = f
        .dataset(&format!("{ptype}/Coordinates"))
        .expect("Coordinates");
    let v: Vec<f64> = ds.read_raw().expect("read");
    v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

/// `Header/BoxSize` read with libhdf5.
pub(crate) fn h5_box_size(path: &Path) -> [f64; 3] {
    let f = hdf5_metno::File::open(path).expect("open");
    let v: Vec<f64> = f
        .group("Header")
        .expect("Header")
        .attr("BoxSize")
        .expect("BoxSize")
        .read_raw()
        .expect("read");
    match v.as_slice() {
        [x] => [*x; 3],
        [x, y, z] => [*x, *y, *z],
        other => panic!("BoxSize {other:?}"),
    }
}

/// Parses `lo:hi` per axis (`:` = unbounded) — independent of the library's parser.
fn axes(b: &str) -> [Option<(f64, f64)>; 3] {
    let mut out = [None; 3];
    for (k, part) in b.split(',').enumerate() {
        if let Some((lo, hi)) = part.split_once(':')
            && !lo.trim().is_empty()
        {
            out[k] = Some((lo.trim().parse().unwrap(), hi.trim().parse().unwrap()));
        }
    }
    out
}

/// Whether `x` lies in `[lo, hi)` taken modulo the box side (a range longer than the box
/// takes everything; `lo > hi` wraps).
fn in_axis(x: f64, lo: f64, hi: f64, side: f64) -> bool {
    if (hi - lo).abs() > side {
        return true;
    }
    let len = if hi >= lo { hi - lo } else { hi - lo + side };
    (x - lo).rem_euclid(side) < len
}

/// Whether `p` lies in one of `boxes`.
pub(crate) fn inside(boxes: &[&str], p: [f64; 3], side: [f64; 3]) -> bool {
    boxes.iter().any(|b| {
        axes(b)
            .iter()
            .enumerate()
            .all(|(k, a)| a.is_none_or(|(lo, hi)| in_axis(p[k], lo, hi, side[k])))
    })
}

/// File-local rows of `ptype` in `path` whose positions lie in `boxes` (libhdf5 truth).
pub(crate) fn exact_truth(path: &Path, ptype: &str, boxes: &[&str]) -> RowRanges {
    let side = h5_box_size(path);
    RowRanges::from_rows(
        h5_positions(path, ptype)
            .into_iter()
            .enumerate()
            .filter(|(_, p)| inside(boxes, *p, side))
            .map(|(i, _)| i as u64),
    )
}

/// The Python of the test venv, if there is one.
pub(crate) fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hdfstream-venv"))
        })?;
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// One swiftsimio query: the file, the particle type and the boxes of a union.
pub(crate) type MaskQuery<'a> = (&'a Path, &'a str, &'a [&'a str]);

/// swiftsimio's selection (file-local row ranges of the particle type) for every query, in
/// one run of `scripts/swift_mask.py --batch`; `None` (with a note) when swiftsimio is not
/// installed, which fails under `CI=true`.
pub(crate) fn swift_masks(queries: &[MaskQuery<'_>]) -> Option<Vec<RowRanges>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/swift_mask.py");
    let ci = std::env::var_os("CI").is_some();
    let python = match venv_python() {
        Some(p) if script.exists() => p,
        _ => {
            assert!(
                !ci,
                "CI must compare regions with swiftsimio: run scripts/setup.sh"
            );
            println!(
                "SKIP: no venv or {} (run scripts/setup.sh)",
                script.display()
            );
            return None;
        }
    };
    let has = Command::new(&python)
        .args(["-c", "import swiftsimio"])
        .env("NUMBA_DISABLE_JIT", "1")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            !ci,
            "CI must compare regions with swiftsimio: run scripts/setup.sh"
        );
        println!("SKIP: swiftsimio is not installed in the venv (run scripts/setup.sh)");
        return None;
    }
    let argvs: Vec<Vec<String>> = queries
        .iter()
        .map(|(path, ptype, boxes)| {
            let mut a = vec![
                path.display().to_string(),
                "--ptype".to_string(),
                ptype.trim_start_matches("PartType").to_string(),
            ];
            a.extend(boxes.iter().map(|b| format!("--box={b}")));
            a
        })
        .collect();
    let list = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(list.path(), serde_json::to_vec(&argvs).expect("json")).expect("write");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--batch")
        .arg(list.path())
        // Plain Python is faster than compiling swiftsimio's numba helpers for a few calls.
        .env("NUMBA_DISABLE_JIT", "1")
        .output()
        .expect("run swift_mask.py");
    assert!(
        out.status.success(),
        "swift_mask.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("JSON from swift_mask.py");
    let results = v.as_array().expect("a list");
    assert_eq!(results.len(), queries.len());
    Some(
        results
            .iter()
            .zip(queries)
            .map(|(r, q)| {
                let ranges = r["ranges"]
                    .as_array()
                    .unwrap_or_else(|| panic!("swift_mask.py failed on {q:?}: {r}"));
                RowRanges::from_ranges(
                    ranges
                        .iter()
                        .map(|x| x[0].as_u64().expect("start")..x[1].as_u64().expect("end")),
                )
            })
            .collect(),
    )
}
