//! The h5grove-compatible API (`<base>/h5grove/...`) against h5grove 4.0 itself: the script
//! scripts/compat_h5grove.py asks our server and h5grove's own Python functions the same
//! questions on the same files (the sample snapshot and a file with every supported type)
//! and compares the answers (JSON parsed equal, binary and .npy bytes equal). Plus the
//! refusals: access rules, traversal, hidden names, oversized and malformed selections,
//! unknown files and paths.
//!
//! The comparison skips with a message when the Python venv made by `scripts/setup.sh` (with
//! h5grove) is absent, and fails instead under `CI=true`.

mod http_common;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::null;

use hdf5_metno::types::{FixedAscii, VarLenUnicode};
use hdf5_metno::{File, H5Type};
use hdf5_metno_sys::h5::hsize_t;
use hdf5_metno_sys::h5d::{H5Dclose, H5Dcreate2, H5Dwrite};
use hdf5_metno_sys::h5f::{H5F_ACC_RDWR, H5Fclose, H5Fopen};
use hdf5_metno_sys::h5p::H5P_DEFAULT;
use hdf5_metno_sys::h5s::{H5S_ALL, H5Sclose, H5Screate_simple};
use hdf5_metno_sys::h5t::{H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, H5T_NATIVE_INT, H5T_STD_I32BE};
use hdf5_metno_sys::h5t::{H5T_NATIVE_SHORT, H5T_STD_I16BE};
use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{Limits, ServeConfig, ServerHandle};
use http_common::get;

/// The venv's python when it has h5grove 4.0; `None` (after a message) when absent outside CI.
fn h5grove_python() -> Option<PathBuf> {
    http_common::venv_python_with(
        "import h5grove, sys, importlib.metadata as m; sys.exit(m.version('h5grove') != '4.0.0')",
        "h5grove 4.0.0",
    )
}

#[derive(H5Type, Clone, Copy, Debug)]
#[repr(C)]
struct Record {
    id: i64,
    mass: f32,
    flag: u8,
    label: FixedAscii<6>,
}

/// A small deterministic generator (xorshift) for float data whose sums need rounding.
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 50.0
        })
        .collect()
}

fn ascii<const N: usize>(s: &str) -> FixedAscii<N> {
    FixedAscii::from_ascii(s.as_bytes()).expect("ascii")
}

/// Every type the API serves: integers of each width and sign, float32/64 (with NaN,
/// infinities, -0.0), booleans, fixed and variable-length strings, a compound, 2-D and 3-D
/// arrays, scalar and empty datasets, chunked and filtered storage, big-endian storage,
/// attributes of several types and shapes, nested groups, soft links (valid and dangling)
/// and an external link.
fn write_types_file(path: &Path) {
    let f = File::create(path).expect("create");
    let ints = f.create_group("ints").expect("group");
    macro_rules! ints {
        ($($t:ty),*) => {$(
            let v: Vec<$t> = vec![<$t>::MIN, <$t>::MAX, 0, 1, 2, <$t>::MAX / 3, 7, 100];
            ints.new_dataset_builder().with_data(&v[..]).create(stringify!($t)).expect("ds");
        )*};
    }
    ints!(i8, i16, i32, i64, u8, u16, u32, u64);
    let floats = f.create_group("floats").expect("group");
    let specials = [
        0.1f32,
        -0.0,
        1.5,
        f32::NAN,
        f32::INFINITY,
        -2.25,
        f32::NEG_INFINITY,
        3e38,
        1e-40,
    ];
    floats
        .new_dataset_builder()
        .with_data(&specials[..])
        .create("f32_specials")
        .expect("ds");
    let f64s = [0.1f64, -0.0, 1e300, f64::NAN, -5e-324, 2.5, 7.0];
    floats
        .new_dataset_builder()
        .with_data(&f64s[..])
        .create("f64_specials")
        .expect("ds");
    let v32: Vec<f32> = noise(1000, 3).iter().map(|&x| x as f32).collect();
    floats
        .new_dataset_builder()
        .with_data(&v32[..])
        .create("f32_1000")
        .expect("ds");
    let v64 = noise(20_000, 5);
    floats
        .new_dataset_builder()
        .with_data(&v64[..])
        .create("f64_20000")
        .expect("ds");
    let a2 = ndarray::Array2::from_shape_vec((6, 7), noise(42, 7)).expect("shape");
    floats
        .new_dataset_builder()
        .with_data(&a2)
        .create("f64_2d")
        .expect("ds");
    let a3: Vec<f32> = noise(4 * 5 * 6, 9).iter().map(|&x| x as f32).collect();
    let a3 = ndarray::Array3::from_shape_vec((4, 5, 6), a3).expect("shape");
    floats
        .new_dataset_builder()
        .with_data(&a3)
        .create("f32_3d")
        .expect("ds");
    let big: Vec<i32> = (0..10_000).map(|i| (i * 7919) % 10_007 - 3000).collect();
    let ds = ints
        .new_dataset::<i32>()
        .shape(10_000)
        .chunk(1000)
        .shuffle()
        .deflate(4)
        .create("i32_chunked")
        .expect("ds");
    ds.write_raw(&big).expect("write");
    let m: Vec<u16> = (0..60).map(|i| (i * 37 % 101) as u16).collect();
    let m = ndarray::Array3::from_shape_vec((3, 4, 5), m).expect("shape");
    ints.new_dataset_builder()
        .with_data(&m)
        .create("u16_3d")
        .expect("ds");
    let flags = [true, false, true, true];
    f.new_dataset_builder()
        .with_data(&flags[..])
        .create("bools")
        .expect("ds");
    let strings = f.create_group("strings").expect("group");
    let fixed = [ascii::<5>("ab"), ascii::<5>("hello"), ascii::<5>("")];
    strings
        .new_dataset_builder()
        .with_data(&fixed[..])
        .create("fixed")
        .expect("ds");
    let long: Vec<u8> = (0..1200).map(|i| (i % 251) as u8).collect();
    strings
        .new_attr::<u8>()
        .shape(1200)
        .create("long")
        .expect("attr")
        .write_raw(&long)
        .expect("write");
    let wide: Vec<FixedAscii<500>> = (0..40).map(|i| ascii(&"w".repeat(i * 12))).collect();
    strings
        .new_dataset_builder()
        .with_data(&wide[..])
        .create("wide")
        .expect("ds");
    let vlen: Vec<VarLenUnicode> = ["x", "ünïcode", "", "a longer string"]
        .iter()
        .map(|s| s.parse().expect("str"))
        .collect();
    strings
        .new_dataset_builder()
        .with_data(&vlen[..])
        .create("vlen")
        .expect("ds");
    let ds = strings
        .new_dataset::<VarLenUnicode>()
        .create("scalar")
        .expect("ds");
    ds.write_scalar(&"one string".parse::<VarLenUnicode>().expect("str"))
        .expect("write");
    let recs: Vec<Record> = (0..5)
        .map(|i| Record {
            id: i * 1000 - 1,
            mass: 0.5 + i as f32,
            flag: (i % 2) as u8,
            label: ascii(&format!("r{i}")),
        })
        .collect();
    f.new_dataset_builder()
        .with_data(&recs[..])
        .create("records")
        .expect("ds");
    let ds = f.new_dataset::<f64>().create("scalar_f64").expect("ds");
    ds.write_scalar(&-3.75f64).expect("write");
    let ds = f.new_dataset::<i16>().create("scalar_i16").expect("ds");
    ds.write_scalar(&-300i16).expect("write");
    f.new_dataset::<f32>().shape(0).create("empty").expect("ds");
    let deep = f.create_group("a/b/c").expect("nested");
    deep.new_dataset_builder()
        .with_data(&[1u8, 2, 3][..])
        .create("leaf")
        .expect("ds");
    // Attributes of several types and shapes.
    let add_attrs = |loc: &hdf5_metno::Location| {
        loc.new_attr::<i32>()
            .create("int_scalar")
            .expect("attr")
            .write_scalar(&-7)
            .expect("write");
        loc.new_attr::<f64>()
            .shape(3)
            .create("f64_vector")
            .expect("attr")
            .write_raw(&[0.1, 2.0, f64::NAN])
            .expect("write");
        loc.new_attr::<u8>()
            .shape((2, 3))
            .create("u8_matrix")
            .expect("attr")
            .write_raw(&[1u8, 2, 3, 4, 5, 255])
            .expect("write");
        loc.new_attr::<VarLenUnicode>()
            .create("vlen_string")
            .expect("attr")
            .write_scalar(&"an attribute".parse::<VarLenUnicode>().expect("str"))
            .expect("write");
        loc.new_attr::<FixedAscii<8>>()
            .create("fixed_string")
            .expect("attr")
            .write_scalar(&ascii::<8>("fixed"))
            .expect("write");
        loc.new_attr::<bool>()
            .create("flag")
            .expect("attr")
            .write_scalar(&true)
            .expect("write");
        loc.new_attr::<f32>()
            .shape(2)
            .create("Zeta f32")
            .expect("attr")
            .write_raw(&[1.5f32, 0.1])
            .expect("write");
    };
    add_attrs(&f);
    add_attrs(&ints);
    let ds = f.dataset("floats/f64_2d").expect("ds");
    add_attrs(&ds);
    f.link_soft("/floats/f64_2d", "link_to_dataset")
        .expect("link");
    f.link_soft("/a/b", "link_to_group").expect("link");
    f.link_soft("/nowhere", "dangling").expect("link");
    f.link_external("missing_file.h5", "/x", "external")
        .expect("link");
    f.close().expect("close");
    write_big_endian(path);
}

/// Big-endian datasets (raw libhdf5: the high-level API writes native types).
fn write_big_endian(path: &Path) {
    let cpath = CString::new(path.to_str().expect("utf-8 path")).expect("path");
    hdf5_metno::sync::sync(|| unsafe {
        let f = H5Fopen(cpath.as_ptr(), H5F_ACC_RDWR, H5P_DEFAULT);
        assert!(f >= 0, "reopen");
        let one = |name: &str, ty, mem, dims: &[hsize_t], data: *const u8| {
            let sp = H5Screate_simple(dims.len() as i32, dims.as_ptr(), null());
            let n = CString::new(name).expect("name");
            let d = H5Dcreate2(f, n.as_ptr(), ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            assert!(d >= 0, "create {name}");
            assert!(H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.cast()) >= 0);
            H5Dclose(d);
            H5Sclose(sp);
        };
        let i4 = [7i32, -70000, 3, i32::MIN, 12, 13];
        one(
            "be_i4",
            *H5T_STD_I32BE,
            *H5T_NATIVE_INT,
            &[2, 3],
            i4.as_ptr().cast(),
        );
        let f8 = [1.5f64, -2.25, 1e300, 0.0];
        one(
            "be_f8",
            *H5T_IEEE_F64BE,
            *H5T_NATIVE_DOUBLE,
            &[4],
            f8.as_ptr().cast(),
        );
        let i2 = [-1i16, 300, 5];
        one(
            "be_i2",
            *H5T_STD_I16BE,
            *H5T_NATIVE_SHORT,
            &[3],
            i2.as_ptr().cast(),
        );
        H5Fclose(f);
    });
}

struct Site {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    server: ServerHandle,
}

const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// The sample snapshot under `sample/`, the types file under `types/`, a restricted
/// directory `secret/` (role `secret-role`, which alice holds and bob does not) and a hidden
/// directory `.hidden/`, each holding a copy of the types file.
fn site(limits: Limits) -> Site {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let opts = SampleOptions {
        particles: 3000,
        files: 1,
        seed: 5,
    };
    write_sample(&root.join("sample"), &opts).expect("sample");
    let types = root.join("types/all_types.hdf5");
    std::fs::create_dir_all(types.parent().expect("parent")).expect("mkdir");
    write_types_file(&types);
    for dir in ["secret", ".hidden"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        std::fs::copy(&types, root.join(dir).join("t.hdf5")).expect("copy");
    }
    let users = tmp.path().join("users");
    let hash = |p: &str| hdfstream_server::auth::hash_password(p).expect("hash");
    std::fs::write(
        &users,
        format!(
            "{}:{}:secret-role\n{}:{}:other\n",
            ALICE.0,
            hash(ALICE.1),
            BOB.0,
            hash(BOB.1)
        ),
    )
    .expect("users");
    let access = tmp.path().join("access");
    std::fs::write(&access, "secret secret-role\n").expect("access");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.users = Some(users);
    config.access = Some(access);
    config.limits = limits;
    let server = ServerHandle::start_with(config).expect("server");
    Site {
        _tmp: tmp,
        root,
        server,
    }
}

#[test]
fn answers_match_h5grove_on_the_sample_and_every_type() {
    let Some(python) = h5grove_python() else {
        return;
    };
    let site = site(Limits::default());
    let mut files: Vec<String> = std::fs::read_dir(site.root.join("sample"))
        .expect("sample dir")
        .filter_map(|e| e.ok())
        .map(|e| format!("sample/{}", e.file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".hdf5"))
        .collect();
    files.sort();
    files.insert(0, "types/all_types.hdf5".to_owned());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/compat_h5grove.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg("--server")
        .arg(site.server.base_url())
        .arg("--root")
        .arg(&site.root)
        .args(&files)
        .output()
        .expect("run scripts/compat_h5grove.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "h5grove comparison failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("h5grove compat: "), "{stdout}");
    assert!(!stdout.contains(" 0 passed"), "{stdout}");
}

fn url(site: &Site, endpoint: &str, query: &str) -> String {
    format!("{}/h5grove/{endpoint}/?{query}", site.server.base_url())
}

fn message(answer: &http_common::Answer) -> String {
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON error body");
    v["message"].as_str().expect("message").to_owned()
}

#[test]
fn access_rules_hidden_names_and_traversal() {
    let site = site(Limits::default());
    let secret = url(&site, "meta", "file=secret/t.hdf5&path=/");
    // Like /msgpack: anonymous callers are asked to log in, others without the role are
    // refused, and the role holder reads the file.
    let anonymous = get(&secret, None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(message(&anonymous), "Authentication required");
    let bob = get(&secret, Some(BOB));
    assert_eq!(bob.status, 403);
    assert!(message(&bob).contains("Permission denied"));
    let alice = get(&secret, Some(ALICE));
    assert_eq!(alice.status, 200);
    let meta: serde_json::Value = serde_json::from_slice(&alice.body).expect("json");
    assert_eq!(meta["kind"], "group");
    // Data of the restricted file too.
    let data = url(&site, "data", "file=secret/t.hdf5&path=/ints/i8&format=bin");
    assert_eq!(get(&data, Some(BOB)).status, 403);
    let bytes = get(&data, Some(ALICE));
    assert_eq!(bytes.status, 200);
    let expected: Vec<u8> = [i8::MIN, i8::MAX, 0, 1, 2, i8::MAX / 3, 7, 100]
        .iter()
        .map(|&v| v as u8)
        .collect();
    assert_eq!(bytes.body, expected);
    // Hidden names are invisible, whoever asks.
    for who in [None, Some(ALICE)] {
        let hidden = get(&url(&site, "meta", "file=.hidden/t.hdf5"), who);
        assert_eq!(hidden.status, 404);
        assert_eq!(message(&hidden), "File not found!");
    }
    // Traversal is refused, encoded or not, and never reaches the files beside the root.
    for file in [
        "../root/types/all_types.hdf5",
        "types/../types/all_types.hdf5",
        "%2E%2E/root/types/all_types.hdf5",
        "types/./all_types.hdf5",
        "types%2F..%2F..%2Froot%2Ftypes%2Fall_types.hdf5",
    ] {
        let answer = get(&url(&site, "meta", &format!("file={file}")), None);
        assert_eq!(answer.status, 400, "{file}");
        assert!(message(&answer).contains("Invalid file path"), "{file}");
    }
    let absolute = format!("file={}", site.root.join("types/all_types.hdf5").display());
    assert_eq!(get(&url(&site, "meta", &absolute), None).status, 404);
    // Unknown files and paths, and non-HDF5 files.
    let missing = get(&url(&site, "meta", "file=types/nope.hdf5"), None);
    assert_eq!(missing.status, 404);
    assert_eq!(message(&missing), "File not found!");
    let dir = get(&url(&site, "meta", "file=types"), None);
    assert_eq!(dir.status, 404);
    let no_path = get(
        &url(&site, "meta", "file=types/all_types.hdf5&path=/no/such"),
        None,
    );
    assert_eq!(no_path.status, 404);
    assert_eq!(
        message(&no_path),
        "/no/such is not a valid path in all_types.hdf5"
    );
    assert_eq!(
        get(
            &url(&site, "data", "file=types/all_types.hdf5&path=/ints"),
            None
        )
        .status,
        400,
        "a group has no data"
    );
    assert_eq!(get(&url(&site, "meta", ""), None).status, 422);
    // The authenticated role holder gets the same answer as h5grove's layout for the copy.
    assert_eq!(
        get(&url(&site, "meta", "file=types/all_types.hdf5"), None).body,
        alice.body
    );
}

#[test]
fn selections_are_bounded_and_checked() {
    let limits = Limits {
        max_h5grove_elements: 1000,
        ..Limits::default()
    };
    let site = site(limits);
    let data = |query: &str| {
        get(
            &url(&site, "data", &format!("file=types/all_types.hdf5&{query}")),
            None,
        )
    };
    // 20000 elements: refused whole, served in slices up to the limit.
    let whole = data("path=/floats/f64_20000&format=bin");
    assert_eq!(whole.status, 413);
    assert!(message(&whole).contains("more than the 1000"));
    let slice = data("path=/floats/f64_20000&format=bin&selection=0:1000");
    assert_eq!(slice.status, 200);
    assert_eq!(slice.body.len(), 8000);
    assert_eq!(data("path=/floats/f64_20000&selection=0:1001").status, 413);
    assert_eq!(data("path=/floats/f64_20000&selection=::10").status, 413);
    assert_eq!(data("path=/floats/f64_20000&selection=::20").status, 200);
    let stats = get(
        &url(
            &site,
            "stats",
            "file=types/all_types.hdf5&path=/floats/f64_20000",
        ),
        None,
    );
    assert_eq!(stats.status, 413);
    // Wide elements count as several: 40 strings of 500 bytes are over 1000 x 16 bytes.
    let wide = data("path=/strings/wide");
    assert_eq!(wide.status, 413);
    assert!(message(&wide).contains("bytes"), "{}", message(&wide));
    let some = data("path=/strings/wide&selection=0:32");
    assert_eq!(some.status, 200);
    let strings: Vec<String> = serde_json::from_slice(&some.body).expect("JSON strings");
    assert_eq!(strings.len(), 32);
    assert_eq!(strings[31], "w".repeat(31 * 12));
    // Attributes too.
    let attr = |query: &str| {
        get(
            &url(&site, "attr", &format!("file=types/all_types.hdf5&{query}")),
            None,
        )
    };
    assert_eq!(attr("path=/strings").status, 413);
    assert_eq!(attr("path=/ints").status, 200);
    // Malformed selections: 400 with a message, never a panic.
    for bad in [
        "a",
        "",
        "1:2:3:4",
        "::0",
        "::-1",
        "0,0",
        "99999",
        "-20001",
        "1.5",
        "0x1",
        "99999999999999999999",
    ] {
        let answer = data(&format!(
            "path=/floats/f64_20000&selection={}",
            bad.replace(':', "%3A")
        ));
        assert_eq!(answer.status, 400, "selection {bad:?}");
        assert!(!message(&answer).is_empty());
    }
    assert_eq!(
        data("path=/scalar_f64&selection=0").status,
        400,
        "a scalar has no dimension to select"
    );
    // Unsupported arguments.
    assert_eq!(data("path=/ints/i8&format=tiff").status, 400);
    assert_eq!(data("path=/ints/i8&format=xml").status, 422);
    assert_eq!(data("path=/ints/i8&dtype=fast").status, 422);
    assert_eq!(data("path=/strings/vlen&dtype=safe").status, 422);
    assert_eq!(data("path=/ints/i8&flatten=maybe").status, 422);
    // The server still answers afterwards.
    assert_eq!(data("path=/ints/i8").status, 200);
}
