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

/// The tool with `args` and none of the credential or server variables of the caller.
fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hdfstream"));
    cmd.args(args)
        .env_remove("HDFSTREAM_USER")
        .env_remove("HDFSTREAM_PASSWORD")
        .env_remove("HDFSTREAM_URL");
    cmd
}

fn hdfstream(args: &[&str]) -> Output {
    command(args).output().expect("run hdfstream")
}

/// Runs the tool with `HDFSTREAM_URL` set to the test server.
fn hdfstream_with_url_env(args: &[&str]) -> Output {
    command(args)
        .env("HDFSTREAM_URL", url())
        .output()
        .expect("run hdfstream")
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
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

#[test]
fn json_on_every_command_that_prints_results() {
    // ls of a directory: names, kinds and sizes as on disk.
    let doc = json_of(&ok_stdout(&["ls", url(), "--json"]));
    let size = std::fs::metadata(FIXTURE.root.join("README.txt"))
        .expect("stat")
        .len();
    assert_eq!(
        doc,
        serde_json::json!([
            {"name": "sample", "type": "directory"},
            {"name": "README.txt", "type": "file", "size": size, "media_type": doc[1]["media_type"]},
        ])
    );
    // ls of a file: the root members with libhdf5's names, datasets with their shapes.
    let doc = json_of(&ok_stdout(&["ls", url(), &FIXTURE.snapshot, "--json"]));
    let file = local(&FIXTURE.snapshot);
    let mut names: Vec<String> = doc
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_owned())
        .collect();
    let mut expected = file.member_names().expect("member names");
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
    let link = doc
        .as_array()
        .expect("array")
        .iter()
        .find(|m| m["name"] == "GasParticles")
        .expect("soft link");
    assert_eq!(link["type"], "soft_link");
    assert_eq!(link["target"], "/PartType0");

    // get --json is --format json; with another --format it is a usage error.
    let args = [
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/Masses",
        "--slice",
        "3:9",
    ];
    let plain = ok_stdout(&args);
    let with_flag = ok_stdout(&[&args[..], &["--json"]].concat());
    assert_eq!(plain, with_flag);
    let masses: Vec<f32> = file
        .dataset("PartType0/Masses")
        .and_then(|d| d.read_raw())
        .expect("masses");
    let got: Vec<f32> = serde_json::from_value(json_of(&with_flag)["values"].clone()).expect("f32");
    assert_eq!(got, masses[3..9]);
    let out = hdfstream(&[&args[..], &["--json", "--format", "csv"]].concat());
    assert_eq!(out.status.code(), Some(2));

    // download --json: the byte count of the file on disk.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.hdf5");
    let doc = json_of(&ok_stdout(&[
        "download",
        url(),
        &FIXTURE.snapshot,
        "-o",
        copy.to_str().expect("utf-8"),
        "--json",
    ]));
    let len = std::fs::metadata(FIXTURE.root.join(&FIXTURE.snapshot))
        .expect("stat")
        .len();
    assert_eq!(doc["bytes"], len);

    // sample --json: the files it wrote, and the gas count libhdf5 finds in them.
    let doc = json_of(&ok_stdout(&[
        "sample",
        dir.path().join("s").to_str().expect("utf-8"),
        "--particles",
        "500",
        "--files",
        "2",
        "--json",
    ]));
    let mut gas = 0;
    for f in doc["files"].as_array().expect("files") {
        let f = hdf5_metno::File::open(f.as_str().expect("path")).expect("open written file");
        if let Ok(ids) = f.dataset("PartType0/ParticleIDs") {
            gas += ids.shape()[0] as u64;
        }
    }
    assert_eq!(doc["gas"], gas);
    assert!(gas > 0);
}

#[test]
fn csv_goes_through_the_csv_writer() {
    // Fixed-length strings, one per line, as libhdf5 reads them.
    let out = ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "Header/PartTypeNames",
        "--format",
        "csv",
    ]);
    let names: Vec<hdf5_metno::types::FixedAscii<128>> = local(&FIXTURE.snapshot)
        .dataset("Header/PartTypeNames")
        .and_then(|d| d.read_raw())
        .expect("names");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.as_bytes());
    let got: Vec<String> = reader
        .records()
        .map(|r| r.expect("csv record")[0].to_owned())
        .collect();
    let want: Vec<String> = names.iter().map(|n| n.as_str().to_owned()).collect();
    assert_eq!(got, want);
    // Integers exactly, one per row.
    let out = ok_stdout(&[
        "get",
        url(),
        &FIXTURE.snapshot,
        "PartType0/ParticleIDs",
        "--format",
        "csv",
    ]);
    let ids: Vec<u64> = local(&FIXTURE.snapshot)
        .dataset("PartType0/ParticleIDs")
        .and_then(|d| d.read_raw())
        .expect("ids");
    let got: Vec<u64> = out.lines().map(|l| l.parse().expect("u64")).collect();
    assert_eq!(got, ids);
}

#[test]
fn exit_statuses_tell_usage_not_found_and_network_apart() {
    let code = |args: &[&str]| hdfstream(args).status.code();
    assert_eq!(code(&["ls", url()]), Some(0));
    assert_eq!(
        code(&["get", url(), &FIXTURE.snapshot, "PartType0/NoSuchThing"]),
        Some(3)
    );
    assert_eq!(code(&["ls", url(), "no/such/dir"]), Some(3));
    assert_eq!(
        code(&[
            "get",
            url(),
            &FIXTURE.snapshot,
            "PartType0/Masses",
            "--slice",
            "0:10,0:3"
        ]),
        Some(2)
    );
    assert_eq!(code(&["ls"]), Some(2), "clap's usage errors");
    assert_eq!(code(&["ls", "http://127.0.0.1:9/hdfstream"]), Some(5));
}

#[test]
fn hdfstream_url_is_the_default_server() {
    let ok = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    // No server argument at all, then a path where the server would be.
    assert_eq!(
        ok(hdfstream_with_url_env(&["ls"])),
        ok_stdout(&["ls", url()])
    );
    assert_eq!(
        ok(hdfstream_with_url_env(&["ls", "sample"])),
        ok_stdout(&["ls", url(), "sample"])
    );
    let doc = json_of(&ok(hdfstream_with_url_env(&[
        "info",
        &FIXTURE.snapshot,
        "PartType0/Masses",
        "--json",
    ])));
    assert_eq!(doc["path"], "/PartType0/Masses");
    // A URL given on the command line still wins.
    let out = hdfstream_with_url_env(&["ls", "http://127.0.0.1:9/hdfstream"]);
    assert_eq!(out.status.code(), Some(5));
}

#[test]
fn completions_are_valid_shell_scripts() {
    let script = ok_stdout(&["completions", "bash"]);
    for sub in ["ls", "info", "get", "download", "export", "serve", "sample"] {
        assert!(
            script.contains(sub),
            "{sub} missing from the bash completions"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hdfstream.bash");
    std::fs::write(&path, &script).expect("write script");
    let check = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("run bash -n");
    assert!(
        check.status.success(),
        "bash rejects the script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(ok_stdout(&["completions", "zsh"]).contains("#compdef hdfstream"));
    assert_eq!(
        hdfstream(&["completions", "nosuchshell"]).status.code(),
        Some(2)
    );
}

#[test]
fn serve_shuts_down_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_hdfstream"))
        .args([
            "serve",
            FIXTURE.root.to_str().expect("utf-8"),
            "--bind",
            "127.0.0.1:0",
        ])
        .env("HDFSTREAM_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hdfstream serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read the URL");
    let served = first.trim().to_owned();
    assert!(served.starts_with("http://127.0.0.1:"), "{first:?}");
    // The browser viewer's URL on the second line; the pipe then closed, which must not
    // stop the server.
    let mut second = String::new();
    stdout.read_line(&mut second).expect("read the viewer URL");
    assert_eq!(second, format!("viewer: {served}/viewer/\n"));
    drop(stdout);
    assert_eq!(ok_stdout(&["ls", &served]), ok_stdout(&["ls", url()]));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut log)
        .expect("read log");
    // Killed by the signal, the status would have no code; a graceful stop exits 0.
    assert_eq!(status.code(), Some(0), "{status:?}\n{log}");
    assert!(
        log.contains("shutting down") && log.contains("SIGTERM"),
        "{log}"
    );
}

#[test]
fn get_and_info_take_one_request_for_the_object() {
    // A server of its own, so that the request log holds only this test's requests.
    let server = ServerHandle::start(&FIXTURE.root).expect("start server");
    let expected: Vec<f32> = local(&FIXTURE.snapshot)
        .dataset("PartType0/Masses")
        .and_then(|d| d.read_raw())
        .expect("read masses");
    let out = ok_stdout(&[
        "get",
        server.base_url(),
        &FIXTURE.snapshot,
        "PartType0/Masses",
        "--slice",
        "5:9",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    let got: Vec<f32> = serde_json::from_value(doc["values"].clone()).expect("floats");
    assert_eq!(got, expected[5..9]);
    let info = ok_stdout(&[
        "info",
        server.base_url(),
        &FIXTURE.snapshot,
        "PartType0/Masses",
    ]);
    assert!(info.contains("Masses"), "{info}");
    // Per command: the connection probe, the dataset's metadata, and (get) its slice; no
    // file-metadata request, no root group, no PartType0 group.
    let asked: Vec<(String, Option<String>, bool)> = server
        .request_log()
        .iter()
        .map(|r| (r.method.clone(), r.object.clone(), r.slice_runs.is_some()))
        .collect();
    let object = Some("/PartType0/Masses".to_string());
    assert_eq!(
        asked,
        [
            ("GET".to_string(), None, false),
            ("POST".to_string(), object.clone(), false),
            ("POST".to_string(), object.clone(), true),
            ("GET".to_string(), None, false),
            ("POST".to_string(), object, false),
        ],
        "{:#?}",
        server.request_log()
    );
}

#[test]
fn get_takes_compressed_responses_unless_told_not_to() {
    let mut config = hdfstream_server::ServeConfig::new(&FIXTURE.root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = vec![hdfstream_server::ContentCoding::Zstd];
    let server = ServerHandle::start_with(config).expect("start server");
    let ids: Vec<u64> = local(&FIXTURE.snapshot)
        .dataset("PartType0/ParticleIDs")
        .and_then(|d| d.read_raw())
        .expect("read ids");
    let want: Vec<u8> = ids.iter().flat_map(|v| v.to_le_bytes()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("ids.npy");
    let out = out_path.to_str().expect("utf-8 path");
    for (flag, coding) in [(None, Some("zstd")), (Some("--no-compression"), None)] {
        server.clear_request_log();
        let mut args = vec![
            "get",
            server.base_url(),
            &FIXTURE.snapshot,
            "PartType0/ParticleIDs",
            "--format",
            "npy",
            "-o",
            out,
        ];
        args.extend(flag);
        ok_stdout(&args);
        let (_, _, data) = parse_npy(&std::fs::read(&out_path).expect("read npy"));
        assert_eq!(data, want, "{flag:?}");
        let log = server.request_log();
        let read = log
            .iter()
            .find(|r| r.slice_runs.is_some())
            .expect("a slice request");
        assert_eq!(read.encoding.as_deref(), coding, "{flag:?}");
    }
}
