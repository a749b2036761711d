//! End-to-end tests of the `hdfstream` binary against the embedded server on generated
//! sample data; every value is compared with libhdf5 reading the same file directly.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::LazyLock;

use hdfstream_server::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

struct Fixture {
    root: PathBuf,
    snapshot: String,
    server: ServerHandle,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let sample_dir = root.join("sample");
    std::fs::create_dir_all(&sample_dir).expect("create sample dir");
    let summary = write_sample(
        &sample_dir,
        &SampleOptions {
            particles: 3000,
            files: 1,
            seed: 7,
        },
    )
    .expect("write sample data");
    std::fs::write(root.join("README.txt"), "hello from the test tree\n").expect("write README");
    let name = summary.snapshot_files[0]
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    let server = ServerHandle::start(&root).expect("start server");
    Fixture {
        root,
        snapshot: format!("sample/{name}"),
        server,
        _dir: dir,
    }
});

fn hdfstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args(args)
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .output()
        .expect("run hdfstream")
}

fn ok_stdout(args: &[&str]) -> String {
    let out = hdfstream(args);
    assert!(
        out.status.success(),
        "hdfstream {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn local(path: &str) -> hdf5_metno::File {
    hdf5_metno::File::open(FIXTURE.root.join(path)).expect("open local HDF5 file")
}

fn url() -> &'static str {
    FIXTURE.server.base_url()
}

#[test]
fn ls_lists_directories_and_files() {
    let out = ok_stdout(&["ls", url()]);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(names, vec!["sample/", "README.txt"]);
    let readme = out
        .lines()
        .find(|l| l.ends_with("README.txt"))
        .expect("README line");
    let size = std::fs::metadata(FIXTURE.root.join("README.txt"))
        .expect("stat")
        .len();
    assert!(
        readme.trim_start().starts_with(&size.to_string()),
        "size missing in {readme:?}"
    );

    let out = ok_stdout(&["ls", url(), "sample"]);
    let mut listed: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(String::from)
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(FIXTURE.root.join("sample"))
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    on_disk.sort();
    assert_eq!(listed, on_disk);
}

#[test]
fn ls_of_a_file_lists_root_members_and_soft_links() {
    let out = ok_stdout(&["ls", url(), &FIXTURE.snapshot]);
    let file = local(&FIXTURE.snapshot);
    let mut expected = file.member_names().expect("member names");
    let mut listed: Vec<String> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(
        out.lines().any(|l| l == "GasParticles -> /PartType0"),
        "soft link missing:\n{out}"
    );
    assert!(
        out.lines().any(|l| l == "PartType0/"),
        "group missing:\n{out}"
    );
}

#[test]
fn info_json_matches_libhdf5() {
    let out = ok_stdout(&[
        "info",
        url(),
        &FIXTURE.snapshot,
        "PartType0/Coordinates",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let ds = local(&FIXTURE.snapshot)
        .dataset("PartType0/Coordinates")
        .expect("dataset");
    let shape: Vec<u64> = ds.shape().iter().map(|&d| d as u64).collect();
    assert_eq!(doc["type"], "dataset");
    assert_eq!(doc["dtype"], "<f8");
    assert_eq!(doc["shape"], serde_json::json!(shape));
    for name in ds.attr_names().expect("attr names") {
        assert!(
            doc["attributes"].get(&name).is_some(),
            "attribute {name} missing"
        );
    }
    let factor: Vec<f64> = ds
        .attr("Conversion factor to CGS (not including cosmological corrections)")
        .and_then(|a| a.read_raw())
        .expect("CGS factor attribute");
    let got = &doc["attributes"]["Conversion factor to CGS (not including cosmological corrections)"]
        ["values"][0];
    assert_eq!(got.as_f64(), factor.first().copied());

    let out = ok_stdout(&["info", url(), &FIXTURE.snapshot, "Header", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let header = local(&FIXTURE.snapshot).group("Header").expect("Header");
    let num_part: Vec<i64> = header
        .attr("NumPart_ThisFile")
        .and_then(|a| a.read_raw())
        .expect("NumPart_ThisFile");
    let got: Vec<i64> =
        serde_json::from_value(doc["attributes"]["NumPart_ThisFile"]["values"].clone())
            .expect("ints");
    assert_eq!(got, num_part);
}

#[test]
fn get_multi_slice_json_and_csv() {
    let all: Vec<f64> = local(&FIXTURE.snapshot)
        .dataset("PartType0/Coordinates")
        .and_then(|d| d.read_raw())
        .expect("read coordinates");
    let rows: Vec<usize> = (10..20).chain(50..55).collect();
    let expected: Vec<f64> = rows
        .iter()
        .flat_map(|&r| all[r * 3 + 1..r * 3 + 3].to_vec())
        .collect();

    let out = ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/Coordinates",
        "--slice",
        "10:20,1:3;50:55,1:3",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["shape"], serde_json::json!([15, 2]));
    let got: Vec<f64> = serde_json::from_value(doc["values"].clone()).expect("floats");
    assert_eq!(got, expected);

    let csv = ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/Coordinates",
        "--slice",
        "10:20,1:3;50:55,1:3",
        "--format",
        "csv",
    ]);
    let parsed: Vec<f64> = csv
        .lines()
        .flat_map(|l| {
            l.split(',')
                .map(|v| v.parse::<f64>().expect("number"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(csv.lines().count(), 15);
    assert_eq!(parsed, expected);
}

/// Parses a `.npy` v1 file into (descr, shape, data bytes).
fn parse_npy(bytes: &[u8]) -> (String, String, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data must start on a 64-byte boundary");
    let header = std::str::from_utf8(&bytes[10..10 + len]).expect("ascii header");
    let field = |key: &str| {
        let start = header.find(key).expect("key") + key.len();
        header[start..].trim_start().to_string()
    };
    let descr = field("'descr':")
        .split('\'')
        .nth(1)
        .expect("descr")
        .to_string();
    let shape = field("'shape':");
    let shape = shape[..=shape.find(')').expect("shape end")].to_string();
    (descr, shape, bytes[10 + len..].to_vec())
}

#[test]
fn get_npy_has_dataset_dtype_and_selection_shape() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("v.npy");
    let out = out_path.to_str().expect("utf-8 path");
    ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/Velocities",
        "--slice",
        "5:25,0:3",
        "--format",
        "npy",
        "-o",
        out,
    ]);
    let (descr, shape, data) = parse_npy(&std::fs::read(&out_path).expect("read npy"));
    assert_eq!(descr, "<f4");
    assert_eq!(shape, "(20, 3)");
    let all: Vec<f32> = local(&FIXTURE.snapshot)
        .dataset("PartType0/Velocities")
        .and_then(|d| d.read_raw())
        .expect("read velocities");
    let expected: Vec<u8> = all[15..75].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(data, expected);

    // Whole 1-D dataset, no --slice.
    ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/ParticleIDs",
        "--format",
        "npy",
        "-o",
        out,
    ]);
    let (descr, shape, data) = parse_npy(&std::fs::read(&out_path).expect("read npy"));
    let ids: Vec<u64> = local(&FIXTURE.snapshot)
        .dataset("PartType0/ParticleIDs")
        .and_then(|d| d.read_raw())
        .expect("read ids");
    assert_eq!(descr, "<u8");
    assert_eq!(shape, format!("({},)", ids.len()));
    assert_eq!(
        data,
        ids.iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
    );
}

#[test]
fn download_writes_the_exact_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("copy.hdf5");
    let out = hdfstream(&[
        "download",
        url(),
        &FIXTURE.snapshot,
        "-o",
        out_path.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = std::fs::read(FIXTURE.root.join(&FIXTURE.snapshot)).expect("read original");
    assert_eq!(std::fs::read(&out_path).expect("read copy"), original);
}

fn assert_fails(args: &[&str], needle: &str) {
    let out = hdfstream(args);
    assert!(!out.status.success(), "hdfstream {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "stderr of {args:?} lacks {needle:?}: {err}"
    );
}

#[test]
fn bad_input_gives_clear_errors() {
    assert_fails(
        &["get", url(), &FIXTURE.snapshot, "PartType0/NoSuchThing"],
        "NoSuchThing",
    );
    assert_fails(
        &[
            "get",
            url(),
            &FIXTURE.snapshot,
            "PartType0/Masses",
            "--slice",
            "0:10,0:3",
        ],
        "invalid --slice",
    );
    assert_fails(
        &[
            "get",
            url(),
            &FIXTURE.snapshot,
            "PartType0/Masses",
            "--slice",
            "5:",
        ],
        "invalid --slice",
    );
    assert_fails(&["ls", url(), "no/such/dir"], "no/such/dir");
    assert_fails(&["info", url(), "sample", "/"], "directory");
    assert_fails(&["ls", "http://127.0.0.1:9/hdfstream"], "hdfstream:");
}

/// The Python interpreter of the venv made by `scripts/setup.sh`, if present.
fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HDFSTREAM_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hdfstream-venv"))
        })?;
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

#[test]
fn npy_files_load_in_numpy_like_h5py_reads() {
    let Some(python) = venv_python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this check: run scripts/setup.sh"
        );
        println!("SKIP: no Python venv with numpy and h5py (run scripts/setup.sh)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // (dataset, --slice, the same selection in numpy syntax)
    let cases = [
        (
            "PartType0/Coordinates",
            Some("3:9,1:3;20:22,1:3"),
            "np.r_[3:9, 20:22], 1:3",
        ),
        ("PartType0/ParticleIDs", None, "..."),
        ("Header/PartTypeNames", Some("1:4"), "1:4"),
        ("PartType0/IsStarForming", Some("0:50"), "0:50"),
    ];
    for (i, (object, slice, numpy_sel)) in cases.iter().enumerate() {
        let out_path = dir.path().join(format!("{i}.npy"));
        let out = out_path.to_str().expect("utf-8 path");
        let mut args = vec![
            "get",
            url(),
            FIXTURE.snapshot.as_str(),
            object,
            "--format",
            "npy",
            "-o",
            out,
        ];
        if let Some(s) = slice {
            args.extend(["--slice", s]);
        }
        ok_stdout(&args);
        let local = FIXTURE.root.join(&FIXTURE.snapshot);
        let script = format!(
            "import sys, numpy as np, h5py\n\
             a = np.load(sys.argv[1])\n\
             with h5py.File(sys.argv[2], 'r') as f:\n\
             \x20   d = f[sys.argv[3]]\n\
             \x20   b = d[{numpy_sel}]\n\
             \x20   # h5py shows its boolean enum as bool; on the wire it is the base type i1.\n\
             \x20   base = np.int8 if d.dtype == np.bool_ else d.dtype\n\
             assert a.dtype == np.dtype(base), (a.dtype, d.dtype)\n\
             assert a.shape == b.shape, (a.shape, b.shape)\n\
             assert np.array_equal(a, b.astype(a.dtype)), 'values differ'\n\
             print('ok', a.dtype, a.shape)\n"
        );
        let run = Command::new(&python)
            .args(["-c", &script, out, local.to_str().expect("utf-8"), object])
            .output()
            .expect("run python");
        assert!(
            run.status.success(),
            "{object}: numpy/h5py check failed:\n{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
