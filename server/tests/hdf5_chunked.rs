//! Chunked and compressed datasets: every read through the server equals libhdf5's read of
//! the same file (through hdf5-metno), for each filter combination, chunk shape and kind of
//! selection; corrupt chunks give clear errors.

mod hdf5_util;

use std::path::{Path, PathBuf};

use hdf5_metno::filters::{Filter, ScaleOffset};
use hdf5_metno::{File, H5Type};
use hdf5_util::*;
use hdfstream_protocol::SliceSpec;
use hdfstream_server::hdf5::Hdf5Files;

/// Deterministic pseudo-random values with some structure (so filters have work to do).
fn ramp(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (i as f64) * 0.25 + ((s >> 40) as f64) / 1e3
        })
        .collect()
}

struct Case {
    name: String,
    shape: Vec<usize>,
    chunk: Vec<usize>,
}

fn write<T: H5Type + Copy>(
    file: &File,
    name: &str,
    shape: &[usize],
    chunk: &[usize],
    filters: &[Filter],
    data: &[T],
) {
    let ds = file
        .new_dataset::<T>()
        .shape(shape.to_vec())
        .chunk(chunk.to_vec())
        .set_filters(filters)
        .create(name)
        .expect("create dataset");
    ds.write_raw(data).expect("write");
}

/// The filter combinations exercised, by name.
fn combos() -> Vec<(&'static str, Vec<Filter>)> {
    vec![
        ("none", vec![]),
        ("gzip1", vec![Filter::Deflate(1)]),
        ("gzip4", vec![Filter::Deflate(4)]),
        ("gzip9", vec![Filter::Deflate(9)]),
        ("shuffle", vec![Filter::Shuffle]),
        ("shuffle_gzip4", vec![Filter::Shuffle, Filter::Deflate(4)]),
        (
            "shuffle_gzip4_fletcher",
            vec![Filter::Shuffle, Filter::Deflate(4), Filter::Fletcher32],
        ),
        ("fletcher", vec![Filter::Fletcher32]),
        (
            "fletcher_shuffle_gzip6",
            vec![Filter::Fletcher32, Filter::Shuffle, Filter::Deflate(6)],
        ),
    ]
}

/// Builds the test file: for every filter combination, 1-D (edge chunk), (N,3) SWIFT-like,
/// (N,k) with chunks spanning rows and columns, and 3-D datasets of several types; plus
/// n-bit and scale-offset datasets (decoded by libhdf5).
fn build(dir: &Path) -> (PathBuf, Vec<Case>) {
    let path = dir.join("chunked.hdf5");
    let file = File::create(&path).expect("create");
    let mut cases = Vec::new();
    let shapes: [(&str, Vec<usize>, Vec<usize>); 4] = [
        ("d1", vec![10_007], vec![1000]),
        ("n3", vec![5_003, 3], vec![700, 3]),
        ("nk", vec![1_201, 7], vec![100, 3]),
        ("d3", vec![97, 5, 6], vec![20, 2, 4]),
    ];
    for (combo, filters) in combos() {
        for (kind, shape, chunk) in &shapes {
            let n: usize = shape.iter().product();
            let v = ramp(n, n as u64);
            let name = format!("{combo}_{kind}_f8");
            write(&file, &name, shape, chunk, &filters, &v);
            cases.push(Case {
                name,
                shape: shape.clone(),
                chunk: chunk.clone(),
            });
            if *kind == "d1" || *kind == "nk" {
                let name = format!("{combo}_{kind}_i2");
                let w: Vec<i16> = v.iter().map(|x| (*x as i64 % 30_000) as i16 - 7).collect();
                write(&file, &name, shape, chunk, &filters, &w);
                cases.push(Case {
                    name,
                    shape: shape.clone(),
                    chunk: chunk.clone(),
                });
                let name = format!("{combo}_{kind}_f4");
                let w: Vec<f32> = v.iter().map(|&x| x as f32).collect();
                write(&file, &name, shape, chunk, &filters, &w);
                cases.push(Case {
                    name,
                    shape: shape.clone(),
                    chunk: chunk.clone(),
                });
                let name = format!("{combo}_{kind}_u1");
                let w: Vec<u8> = v.iter().map(|&x| (x as u64 % 251) as u8).collect();
                write(&file, &name, shape, chunk, &filters, &w);
                cases.push(Case {
                    name,
                    shape: shape.clone(),
                    chunk: chunk.clone(),
                });
            }
        }
    }
    // Filters libhdf5 decodes for us.
    let fallback: [(&str, Vec<Filter>); 3] = [
        ("nbit", vec![Filter::NBit]),
        (
            "scaleoffset",
            vec![
                Filter::ScaleOffset(ScaleOffset::Integer(0)),
                Filter::Deflate(4),
            ],
        ),
        (
            "nbit_gzip_fletcher",
            vec![Filter::NBit, Filter::Deflate(2), Filter::Fletcher32],
        ),
    ];
    for (combo, filters) in fallback {
        for (kind, shape, chunk) in &shapes[..3] {
            let n: usize = shape.iter().product();
            let w: Vec<i32> = ramp(n, 3)
                .iter()
                .map(|x| (*x as i64 % 100_000) as i32)
                .collect();
            let name = format!("{combo}_{kind}_i4");
            write(&file, &name, shape, chunk, &filters, &w);
            cases.push(Case {
                name,
                shape: shape.clone(),
                chunk: chunk.clone(),
            });
        }
    }
    (path, cases)
}

/// Selections that cross chunk borders in every way: whole, an inner slice, many runs
/// (some inside one chunk, some spanning several), and partial ranges of the other
/// dimensions.
/// Runs along dimension 0 and ranges of the other dimensions, as `(start, count)`.
type Selection = (Vec<(u64, u64)>, Vec<(u64, u64)>);

/// The middle of every other dimension (one index or a short range).
fn partial_again(shape: &[usize]) -> Vec<(u64, u64)> {
    shape[1..]
        .iter()
        .map(|&d| ((d as u64) / 2, 1.max(d as u64 / 3)))
        .collect()
}

fn selections(shape: &[usize], chunk: &[usize]) -> Vec<Selection> {
    let n0 = shape[0] as u64;
    let c0 = chunk[0] as u64;
    let full: Vec<(u64, u64)> = shape[1..].iter().map(|&d| (0, d as u64)).collect();
    let partial: Vec<(u64, u64)> = shape[1..]
        .iter()
        .map(|&d| {
            let d = d as u64;
            if d > 2 { (1, d - 2) } else { (d - 1, 1) }
        })
        .collect();
    let last: Vec<(u64, u64)> = shape[1..].iter().map(|&d| (d as u64 - 1, 1)).collect();
    let mut runs = Vec::new();
    let mut s = 3;
    while s + 5 < n0 {
        runs.push((s, 5));
        s += c0 / 3 + 7;
    }
    let spanning = vec![
        (c0 - 2, c0 + 4),
        (3 * c0 - 1, 2),
        (n0 - c0 / 2 - 3, c0 / 2 + 3),
    ];
    // Fancy indexing arrives as runs of one row: scattered rows on both sides of borders.
    let mut fancy: Vec<(u64, u64)> = [0, 1, c0 - 1, c0, c0 + 1, 2 * c0 + 5, n0 - 2, n0 - 1]
        .iter()
        .map(|&i| (i, 1))
        .collect();
    fancy.dedup();
    let mut out = vec![
        (vec![(0, n0)], full.clone()),
        (fancy.clone(), full.clone()),
        (vec![(c0 / 2, n0 - c0)], full.clone()),
        (runs.clone(), full.clone()),
        (spanning.clone(), full.clone()),
        (vec![(n0 - 1, 1)], full.clone()),
    ];
    if !full.is_empty() {
        out.push((vec![(0, n0)], partial.clone()));
        out.push((runs, partial));
        out.push((spanning, last));
        out.push((fancy, partial_again(shape)));
    }
    out
}

fn check_case(files: &Hdf5Files, path: &Path, h5: &File, case: &Case) {
    let ds = h5.dataset(&case.name).expect("dataset");
    let shape: Vec<u64> = case.shape.iter().map(|&d| d as u64).collect();
    let all = truth(&ds);
    assert_eq!(all.len(), shape.iter().product::<u64>() as usize);
    for (runs, rest) in selections(&case.shape, &case.chunk) {
        let req = slice(&format!("/{}", case.name), &runs, &rest);
        let v = ask(files, path, &req)
            .unwrap_or_else(|e| panic!("{} {runs:?} {rest:?}: {e:?}", case.name));
        let got = decode_array(&v);
        let sel: &SliceSpec = req.slice.as_ref().expect("slice");
        let want = select(&all, &shape, sel);
        assert_eq!(
            got.elems.len(),
            want.len(),
            "{} {runs:?} {rest:?}",
            case.name
        );
        assert!(
            got.elems == want,
            "{} {runs:?} {rest:?}: values differ from libhdf5",
            case.name
        );
    }
    // Inline contents of the object map go through the same path.
    let v = ask(
        files,
        path,
        &object(&format!("/{}", case.name), 0, u64::MAX),
    )
    .expect("object");
    let inline = decode_array(get(&v, "data").expect("inline data"));
    assert!(inline.elems == all, "{} inline data differs", case.name);
}

#[test]
fn every_filter_combination_matches_libhdf5() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, cases) = build(dir.path());
    let files = Hdf5Files::new(4);
    let h5 = File::open(&path).expect("open");
    assert!(cases.len() > 80, "{} cases", cases.len());
    for case in &cases {
        check_case(&files, &path, &h5, case);
    }
}

/// Several threads reading different and the same datasets at once get libhdf5's values,
/// also when each request may decode only one chunk at a time.
#[test]
fn concurrent_reads_match_libhdf5() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, cases) = build(dir.path());
    // One decode job per request: the per-request cap changes scheduling, never values.
    let files = Hdf5Files::new(4).with_decode_jobs_per_request(1);
    let h5 = File::open(&path).expect("open");
    let picked: Vec<&Case> = cases
        .iter()
        .filter(|c| c.name.starts_with("shuffle_gzip4_fletcher") || c.name.starts_with("nbit_"))
        .collect();
    assert!(picked.len() >= 6);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (files, path, h5, picked) = (&files, &path, &h5, &picked);
            s.spawn(move || {
                for case in picked.iter().skip(t % 2) {
                    check_case(files, path, h5, case);
                }
            });
        }
    });
}

/// Chunks never written read as the fill value; a file with a user block is read right.
#[test]
fn unallocated_chunks_and_user_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ub.hdf5");
    {
        let file = File::with_options()
            .with_fcpl(|p| p.userblock(1024))
            .create(&path)
            .expect("create");
        let ds = file
            .new_dataset::<f64>()
            .shape(10_000)
            .chunk(1000)
            .shuffle()
            .deflate(4)
            .fill_value(-1.5)
            .create("sparse")
            .expect("dataset");
        let v = ramp(2500, 9);
        ds.write_slice(&v, 3000..5500).expect("write part");
        let v = ramp(4000, 5);
        write(
            &file,
            "dense",
            &[4000],
            &[512],
            &[Filter::Shuffle, Filter::Deflate(3)],
            &v,
        );
        file.new_dataset::<f64>()
            .shape(3000)
            .create("contig")
            .expect("dataset")
            .write_raw(&ramp(3000, 4))
            .expect("write");
    }
    let files = Hdf5Files::new(4);
    let h5 = File::open(&path).expect("open");
    assert_eq!(h5.userblock(), 1024);
    for (name, n, c) in [
        ("sparse", 10_000, 1000),
        ("dense", 4000, 512),
        ("contig", 3000, 700),
    ] {
        let case = Case {
            name: name.to_owned(),
            shape: vec![n],
            chunk: vec![c],
        };
        check_case(&files, &path, &h5, &case);
    }
    let sparse = h5
        .dataset("sparse")
        .expect("dataset")
        .read_raw::<f64>()
        .expect("read");
    assert_eq!(sparse[0], -1.5, "fill value");
}

/// Flips one byte inside the stored bytes of chunk `index` of `name`.
fn corrupt(path: &Path, name: &str, index: usize) {
    let (addr, size) = {
        let h5 = File::open(path).expect("open");
        let info = h5
            .dataset(name)
            .expect("dataset")
            .chunk_info(index)
            .expect("chunk info");
        (info.addr, info.size)
    };
    let mut bytes = std::fs::read(path).expect("read");
    let at = (addr + size / 2) as usize;
    bytes[at] ^= 0x5a;
    std::fs::write(path, bytes).expect("write");
}

/// A corrupted chunk gives a clear error (checksum or inflate), the other data stays
/// readable and the server keeps serving.
#[test]
fn corrupted_chunks_give_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.hdf5");
    {
        let file = File::create(&path).expect("create");
        let v = ramp(20_000, 11);
        let f = [Filter::Shuffle, Filter::Deflate(4), Filter::Fletcher32];
        write(&file, "checked", &[20_000], &[4000], &f, &v);
        write(&file, "gzip", &[20_000], &[4000], &[Filter::Deflate(4)], &v);
        write(&file, "fine", &[20_000], &[4000], &f, &v);
    }
    corrupt(&path, "checked", 0);
    corrupt(&path, "gzip", 2);
    let files = Hdf5Files::new(4);
    let err = ask(&files, &path, &slice("/checked", &[(0, 20_000)], &[])).unwrap_err();
    assert_eq!(err.status, 404);
    assert!(
        err.message.contains("Fletcher-32 checksum mismatch"),
        "{}",
        err.message
    );
    let err = ask(&files, &path, &slice("/gzip", &[(0, 20_000)], &[])).unwrap_err();
    assert!(err.message.contains("inflate error"), "{}", err.message);
    // Untouched chunks of the same datasets, and other datasets, still read.
    let h5 = File::open(&path).expect("open");
    // (`fine` holds the same values; libhdf5 cannot read all of `gzip` any more.)
    let all = truth(&h5.dataset("fine").expect("dataset"));
    let v = ask(
        &files,
        &path,
        &slice("/gzip", &[(100, 3000), (12_500, 100)], &[]),
    )
    .expect("ok");
    let req = slice("/gzip", &[(100, 3000), (12_500, 100)], &[]);
    assert!(decode_array(&v).elems == select(&all, &[20_000], req.slice.as_ref().unwrap()));
    let v = ask(&files, &path, &slice("/fine", &[(0, 20_000)], &[])).expect("ok");
    assert!(decode_array(&v).elems == truth(&h5.dataset("fine").expect("dataset")));
    // libhdf5 itself agrees the chunk is bad.
    assert!(
        h5.dataset("checked")
            .expect("dataset")
            .read_raw::<f64>()
            .is_err()
    );

    // Through HTTP: an error status, then the server answers the next request.
    let srv = hdfstream_server::ServerHandle::start(dir.path()).expect("server");
    let url = format!("{}/msgpack/bad.hdf5", srv.base_url());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = |req: &hdfstream_protocol::ObjectRequest| {
        let resp = agent
            .post(&url)
            .header("Content-Type", "application/x-msgpack")
            .send(&req.encode_body()[..])
            .expect("POST");
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("body");
        (status, body)
    };
    let (status, body) = post(&slice("/checked", &[(0, 20_000)], &[]));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("Fletcher-32"));
    let (status, body) = post(&slice("/fine", &[(5, 10)], &[]));
    assert_eq!(status, 200);
    let v = rmpv::decode::read_value(&mut &body[..]).expect("msgpack");
    assert_eq!(decode_array(&v).elems.len(), 10);
}

/// Each touched chunk is decoded exactly once per request, by our decoder (not libhdf5):
/// many runs inside few chunks, whole reads, and (N,k) chunks spanning rows and columns.
#[test]
fn each_chunk_is_decoded_once_per_request() {
    use hdfstream_server::hdf5::decoded_chunks_on_this_thread as decoded;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("count.hdf5");
    {
        let file = File::create(&path).expect("create");
        let f = [Filter::Shuffle, Filter::Deflate(4), Filter::Fletcher32];
        write(&file, "d1", &[10_000], &[1000], &f, &ramp(10_000, 1));
        write(&file, "nk", &[1_000, 7], &[100, 3], &f, &ramp(7_000, 2));
    }
    let files = Hdf5Files::new(4);
    let h5 = File::open(&path).expect("open");
    let d1 = truth(&h5.dataset("d1").expect("dataset"));
    let nk = truth(&h5.dataset("nk").expect("dataset"));
    let check = |name: &str, runs: &[(u64, u64)], rest: &[(u64, u64)], chunks: u64| {
        let req = slice(name, runs, rest);
        let before = decoded();
        let v = ask(&files, &path, &req).expect("read");
        assert_eq!(decoded() - before, chunks, "{name} {runs:?} {rest:?}");
        let (all, shape) = if name == "/d1" {
            (&d1, vec![10_000])
        } else {
            (&nk, vec![1_000, 7])
        };
        assert!(decode_array(&v).elems == select(all, &shape, req.slice.as_ref().unwrap()));
    };
    // 200 runs of 3 rows in chunks 2..=5.
    let runs: Vec<(u64, u64)> = (0..200).map(|i| (2000 + i * 20, 3)).collect();
    check("/d1", &runs, &[], 4);
    check("/d1", &[(0, 10_000)], &[], 10);
    check("/d1", &[(999, 2), (5_500, 10), (5_600, 10)], &[], 3);
    // Rows in dim-0 chunks 1..=3, columns 2..5 in column chunks 0 and 1.
    let runs: Vec<(u64, u64)> = (0..40).map(|i| (150 + i * 5, 2)).collect();
    check("/nk", &runs, &[(2, 3)], 6);
    check("/nk", &[(0, 1_000)], &[(0, 7)], 30);
}
