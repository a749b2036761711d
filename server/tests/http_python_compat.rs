//! The real Python `hdfstream` client (scripts/compat_python.py) against this server, on
//! the sample snapshot, compared value by value with h5py reading the same files.
//!
//! Skips with a message when the Python venv made by `scripts/setup.sh` is absent.

mod http_common;

use std::path::PathBuf;
use std::process::Command;

use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{ContentCoding, RequestRecord, ServeConfig, ServerHandle};

/// Groups, attributes, a soft link and datasets of the types the Python client handles.
fn write_plain_file(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = hdf5_metno::File::create(path).expect("create");
    let group = file.create_group("Group").expect("group");
    let values: Vec<f64> = (0..3000).map(|i| f64::from(i) * 0.25).collect();
    let ds = group
        .new_dataset::<f64>()
        .shape((1000, 3))
        .create("Coordinates")
        .expect("dataset");
    ds.write_raw(&values).expect("write");
    let ids: Vec<u64> = (0..1000).map(|i| i * 3 + 1).collect();
    let ds = group
        .new_dataset::<u64>()
        .shape(1000)
        .create("IDs")
        .expect("dataset");
    ds.write_raw(&ids).expect("write");
    let small: Vec<i8> = (0..10).collect();
    let ds = file
        .new_dataset::<i8>()
        .shape(10)
        .create("Small")
        .expect("dataset");
    ds.write_raw(&small).expect("write");
    let attr = group
        .new_attr::<f32>()
        .shape(2)
        .create("Scale")
        .expect("attr");
    attr.write_raw(&[1.5f32, -2.0]).expect("write attr");
    file.link_soft("/Group", "Alias").expect("soft link");
}

#[test]
fn python_client_reads_sample_through_our_server() {
    let Some(log) = check_python_client(&[]) else {
        return;
    };
    assert!(
        log.iter().all(|r| r.encoding.is_none()),
        "nothing compressed"
    );
}

/// The Python client sends `Accept-Encoding: gzip, deflate` (requests' default) and reads
/// gzip bodies: `response.raw` with `decode_content` set when `Content-Encoding` is present.
#[test]
fn python_client_reads_gzip_compressed_responses() {
    let Some(log) = check_python_client(&[ContentCoding::Zstd, ContentCoding::Gzip]) else {
        return;
    };
    let gzip: Vec<_> = log
        .iter()
        .filter(|r| r.encoding.as_deref() == Some("gzip"))
        .collect();
    assert!(
        gzip.iter().any(|r| r.slice_runs.is_some()),
        "no gzip slice response: {log:?}"
    );
    assert!(
        gzip.iter().any(|r| r.slice_runs.is_none()),
        "no gzip metadata response"
    );
    assert!(gzip.iter().all(|r| r.complete && r.status == 200));
    assert!(
        log.iter().all(|r| r.encoding.as_deref() != Some("zstd")),
        "the Python client does not ask for zstd"
    );
}

/// Runs scripts/compat_python.py against a server with `compression`; the request log, or
/// `None` when the venv is absent.
fn check_python_client(compression: &[ContentCoding]) -> Option<Vec<RequestRecord>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/compat_python.py");
    let python = http_common::venv_python_with("import hdfstream", "hdfstream")?;
    if !script.exists() {
        println!("SKIP: {} not found", script.display());
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("data");
    let opts = SampleOptions {
        particles: 2000,
        files: 2,
        seed: 11,
    };
    write_sample(&root.join("sample"), &opts).expect("sample written");
    write_plain_file(&root.join("plain/simple.hdf5"));
    std::fs::write(
        root.join("README"),
        b"sample data for the compatibility check\n",
    )
    .expect("readme");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.compression = compression.to_vec();
    let srv = ServerHandle::start_with(config).expect("server");
    let mut command = Command::new(&python);
    command.arg(&script);
    // The snapshots' `Extra/Structured` group holds compound and array datasets, which the Python client
    // cannot describe (PROTOCOL.md section 6): the script reads such files group by group
    // (max_depth 0) and reports only that group as skipped; everything else is compared.
    let output = command
        .arg("--server")
        .arg(srv.base_url())
        .arg("--root")
        .arg(&root)
        .output()
        .expect("run the compatibility script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "compat failed:\n{stdout}\n{stderr}"
    );
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("compat: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}\n{stderr}"));
    let count = |word: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(word))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {word:?} count in {summary:?}"))
    };
    assert_eq!(count(" failed"), 0, "{stdout}");
    // Every file of the tree is read: two snapshot files, the halo catalogue, simple.hdf5.
    assert!(count(" passed") > 1000, "too few checks ran: {summary}");
    // Only `Extra/Structured` of each snapshot file (read twice each) is skipped.
    assert_eq!(count(" skipped"), 4, "{stdout}");
    let log = srv.request_log();
    assert!(
        log.iter()
            .any(|r| r.slice_runs.is_some() && r.status == 200),
        "no slice was read"
    );
    assert!(log.iter().all(|r| r.status < 500), "server errors: {log:?}");
    Some(log)
}
