//! swiftsimio handed the real Python client's remote file on this server
//! (scripts/compat_swiftsimio.py) against swiftsimio on the local file, for a single-file
//! sample and the virtual file of a 3-file sample; and scripts/swift_mask.py, the region
//! truth, giving the same rows through the server as on disk.
//!
//! Skips with a message when the Python venv made by `scripts/setup.sh` is absent (fails
//! under `CI=true`).

mod http_common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use hdfstream_server::sample::{SampleOptions, write_sample, write_virtual_snapshot};
use hdfstream_server::{ServeConfig, ServerHandle};

/// The venv's python if it has swiftsimio; None (skip) otherwise, a failure under CI.
fn python_with_swiftsimio() -> Option<PathBuf> {
    http_common::venv_python_with("import swiftsimio, hdfstream", "swiftsimio and hdfstream")
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Runs a script; numba's JIT is off (swiftsimio's range readers then run as the plain Python
/// they are written in: the same results, without half a minute of compilation per process).
fn run(python: &Path, args: &[OsString]) -> (bool, String, String) {
    let out = Command::new(python)
        .args(args)
        .env("NUMBA_DISABLE_JIT", "1")
        .output()
        .expect("run python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The samples: `one/snap_0000.hdf5` (1 file) and `multi/` (3 files + the virtual file).
fn write_samples(root: &Path) -> (PathBuf, PathBuf) {
    let one = write_sample(
        &root.join("one"),
        &SampleOptions {
            particles: 20_000,
            files: 1,
            seed: 21,
        },
    )
    .expect("single-file sample");
    let multi = write_sample(
        &root.join("multi"),
        &SampleOptions {
            particles: 20_000,
            files: 3,
            seed: 22,
        },
    )
    .expect("multi-file sample");
    let virtual_file = write_virtual_snapshot(&multi).expect("virtual file");
    (one.snapshot_files[0].clone(), virtual_file)
}

fn serve(root: &Path) -> ServerHandle {
    let mut config = ServeConfig::new(root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    ServerHandle::start_with(config).expect("server")
}

/// One test (not several in parallel): HDF5's flock locks are inherited by the Python child
/// processes, so a file being written while another test forks Python stays locked.
#[test]
fn swiftsimio_through_the_server_matches_local_files() {
    let Some(python) = python_with_swiftsimio() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("data");
    let (one, virtual_file) = write_samples(&root);
    let srv = serve(&root);
    swiftsimio_reads_remote_files_like_local_ones(&python, &srv, &one, &virtual_file);
    swift_mask_script_agrees_through_the_server(&python, &srv, &one, &virtual_file);
    let log = srv.request_log();
    assert!(log.iter().all(|r| r.status < 500), "server errors: {log:?}");
}

/// compat_swiftsimio.py: swiftsimio on the remote files reads what it reads on disk.
fn swiftsimio_reads_remote_files_like_local_ones(
    python: &Path,
    srv: &ServerHandle,
    one: &Path,
    virtual_file: &Path,
) {
    let case = |local: &Path, vpath: &str| format!("--case={}={vpath}", local.display());
    let (ok, stdout, stderr) = run(
        python,
        &[
            script("compat_swiftsimio.py").into(),
            "--server".into(),
            srv.base_url().into(),
            case(one, "one/snap_0000.hdf5").into(),
            case(virtual_file, "multi/snap_0000.hdf5").into(),
        ],
    );
    println!("{stdout}");
    assert!(ok, "compat_swiftsimio failed:\n{stdout}\n{stderr}");
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("compat-swiftsimio: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    let count = |word: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(word))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {word:?} count in {summary:?}"))
    };
    assert_eq!(count(" failed"), 0, "{stdout}");
    // 2 snapshots x 7 boxes x 3 types, about 20 checks each.
    assert!(count(" passed") > 500, "too few checks ran: {summary}");
    let log = srv.request_log();
    assert!(
        log.iter().any(|r| r.slice_runs.is_some_and(|n| n > 1)),
        "swiftsimio never sent a multi-slice request"
    );
}

/// Parses a `[[start, end], ...]` JSON array.
fn pairs(v: &serde_json::Value) -> Vec<(u64, u64)> {
    v.as_array()
        .expect("array of ranges")
        .iter()
        .map(|r| (r[0].as_u64().expect("start"), r[1].as_u64().expect("end")))
        .collect()
}

/// Runs swift_mask.py and parses its JSON output.
fn swift_mask(
    python: &Path,
    local: &Path,
    remote: Option<(&ServerHandle, &str)>,
) -> serde_json::Value {
    let mut args: Vec<OsString> = vec![
        script("swift_mask.py").into(),
        local.into(),
        "--ptype".into(),
        "0".into(),
        // A box wrapping in y (lo > hi), and one with bounds outside [0, BoxSize) in x
        // (`--box=` because they start with '-'): a union.
        "--box=3:9,20:2,:".into(),
        "--box=-2:4,10:14,0:25".into(),
        "--exact".into(),
    ];
    if let Some((srv, vpath)) = remote {
        args.extend(["--url".into(), srv.base_url().into()]);
        args.extend(["--path".into(), vpath.into()]);
    }
    let (ok, out, err) = run(python, &args);
    assert!(ok, "swift_mask {local:?} {remote:?}: {err}");
    serde_json::from_str(out.trim()).expect("json")
}

/// Checks one output: rows = sum of the ranges, something selected, and every row whose
/// particle lies inside a box (`--exact`, h5py) is selected.
fn check_selection(v: &serde_json::Value, what: &str) -> Vec<(u64, u64)> {
    let ranges = pairs(&v["ranges"]);
    let rows = v["rows"].as_u64().expect("rows");
    assert_eq!(
        rows,
        ranges.iter().map(|(a, b)| b - a).sum::<u64>(),
        "{what}"
    );
    assert!(rows > 0, "{what}: nothing selected");
    let inside = pairs(&v["exact"]["ranges"]);
    assert!(!inside.is_empty(), "{what}: no particle inside");
    for (s, e) in inside {
        assert!(
            ranges.iter().any(|&(a, b)| a <= s && e <= b),
            "{what}: rows {s}..{e} inside the box not selected"
        );
    }
    ranges
}

/// swift_mask.py through the server (`--url/--path`) prints what it prints on the local file;
/// for a file of the split snapshot it prints that file's part of the virtual file's
/// selection, file-local; its rows contain every particle inside the boxes.
fn swift_mask_script_agrees_through_the_server(
    python: &Path,
    srv: &ServerHandle,
    one: &Path,
    virtual_file: &Path,
) {
    let local = swift_mask(python, one, None);
    let remote = swift_mask(python, one, Some((srv, "one/snap_0000.hdf5")));
    let ranges = check_selection(&local, "single file");
    assert_eq!(pairs(&remote["ranges"]), ranges, "through the server");
    assert_eq!(remote["cells"], local["cells"]);
    assert_eq!(remote["exact"], local["exact"]);

    let whole = swift_mask(python, virtual_file, None);
    check_selection(&whole, "virtual file");
    let files = whole["files"].as_array().expect("per-file ranges");
    assert_eq!(files.len(), 3);
    let part1 = virtual_file.with_file_name("snap_0000.1.hdf5");
    let one_file = swift_mask(python, &part1, Some((srv, "multi/snap_0000.hdf5")));
    let local_ranges = check_selection(&one_file, "file 1 of 3");
    assert_eq!(one_file["virtual"], "snap_0000.hdf5");
    assert_eq!(files[1]["file"], "snap_0000.1.hdf5");
    assert_eq!(pairs(&files[1]["ranges"]), local_ranges);
    // File 1's rows are the virtual rows after file 0's, shifted back.
    let start = files[1]["start"].as_u64().expect("start");
    let shifted: Vec<(u64, u64)> = local_ranges
        .iter()
        .map(|(a, b)| (a + start, b + start))
        .collect();
    let whole_ranges = pairs(&whole["ranges"]);
    for (a, b) in shifted {
        assert!(
            whole_ranges.iter().any(|&(s, e)| s <= a && b <= e),
            "file 1 rows {a}..{b} not in the virtual selection"
        );
    }
    assert_eq!(one_file["cells"], whole["cells"]);
    // ... which is, in that file's own index, its kept cells' [offset, offset + count).
    let f = hdf5_metno::File::open(&part1).expect("open file 1");
    let read = |name: &str| -> Vec<i64> {
        f.dataset(name)
            .and_then(|d| d.read_raw())
            .expect("cells index")
    };
    let offsets = read("Cells/OffsetsInFile/PartType0");
    let counts = read("Cells/Counts/PartType0");
    let mut from_index: Vec<(u64, u64)> = Vec::new();
    for c in one_file["file_cells"].as_array().expect("file_cells") {
        let c = c.as_u64().expect("cell") as usize;
        let (a, n) = (offsets[c] as u64, counts[c] as u64);
        match from_index.last_mut() {
            Some(last) if last.1 == a => last.1 += n,
            _ if n > 0 => from_index.push((a, a + n)),
            _ => {}
        }
    }
    assert_eq!(
        from_index, local_ranges,
        "file 1: kept cells of the file's own index"
    );
}
