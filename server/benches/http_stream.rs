//! Throughput of the HTTP layer, as ratios to a baseline measured in the same run:
//! * a 64 MiB `<f8` slice through HTTP vs `Hdf5Files::write_response` into memory;
//! * a 256 MiB file download through HTTP vs `std::fs::read` of the same (cached) file;
//! * a root listing of a 20 000-file tree (sizes walked recursively on every request) vs a
//!   plain recursive `read_dir` + `metadata` walk.
//!
//! Run: `cargo bench -p hdfstream-server --bench http_stream`.

use std::time::{Duration, Instant};

use hdfstream_protocol::{DimSelection, ObjectRequest, SliceSpec};
use hdfstream_server::ServerHandle;
use hdfstream_server::hdf5::Hdf5Files;

const ROWS: usize = 8 << 20; // 8 Mi rows of one f64 = 64 MiB
const FILE_BYTES: u64 = 256 << 20;
const REPEATS: usize = 5;

fn best<F: FnMut() -> usize>(mut run: F) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..REPEATS {
        let start = Instant::now();
        bytes = run();
        best = best.min(start.elapsed());
    }
    (best, bytes)
}

fn mib_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / time.as_secs_f64()
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h5 = tmp.path().join("big.hdf5");
    {
        let file = hdf5_metno::File::create(&h5).expect("create");
        let values: Vec<f64> = (0..ROWS).map(|i| i as f64).collect();
        let ds = file
            .new_dataset::<f64>()
            .shape(ROWS)
            .create("x")
            .expect("dataset");
        ds.write_raw(&values).expect("write");
    }
    let raw = tmp.path().join("raw.bin");
    let pattern: Vec<u8> = (0..FILE_BYTES).map(|i| (i % 251) as u8).collect();
    std::fs::write(&raw, &pattern).expect("write raw");
    drop(pattern);

    let srv = ServerHandle::start(tmp.path()).expect("server");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let req = ObjectRequest::slice(
        "/x",
        SliceSpec::new(vec![DimSelection::new(0, ROWS as u64)], Vec::new()),
    );
    let body = req.encode_body();

    let files = Hdf5Files::default();
    let (direct, direct_bytes) = best(|| {
        let mut out = Vec::new();
        files.write_response(&h5, &req, &mut out).expect("direct");
        out.len()
    });
    let url = format!("{}/msgpack/big.hdf5", srv.base_url());
    let (http, http_bytes) = best(|| {
        let resp = agent
            .post(&url)
            .header("Content-Type", "application/x-msgpack")
            .send(&body[..])
            .expect("POST");
        resp.into_body()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("body")
            .len()
    });
    assert_eq!(direct_bytes, http_bytes);
    println!(
        "slice 64 MiB <f8: direct {:.0} MiB/s, http {:.0} MiB/s, http/direct time ratio {:.2}",
        mib_s(direct_bytes, direct),
        mib_s(http_bytes, http),
        http.as_secs_f64() / direct.as_secs_f64()
    );

    let (read, read_bytes) = best(|| std::fs::read(&raw).expect("read").len());
    let url = format!("{}/download/raw.bin", srv.base_url());
    let (download, download_bytes) = best(|| {
        agent
            .get(&url)
            .call()
            .expect("GET")
            .into_body()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .expect("body")
            .len()
    });
    assert_eq!(read_bytes, download_bytes);
    println!(
        "download 256 MiB: fs::read {:.0} MiB/s, http {:.0} MiB/s, http/read time ratio {:.2}",
        mib_s(read_bytes, read),
        mib_s(download_bytes, download),
        download.as_secs_f64() / read.as_secs_f64()
    );
    let tree = tempfile::tempdir().expect("tempdir");
    for d in 0..1000 {
        let dir = tree.path().join(format!("d{}/e{d}", d % 50));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..20 {
            std::fs::write(dir.join(format!("f{f}.hdf5")), [0u8; 16]).expect("write");
        }
    }
    fn walk(dir: &std::path::Path) -> u64 {
        let mut total = 0;
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::metadata(&path).expect("metadata");
            total += if meta.is_dir() {
                walk(&path)
            } else {
                meta.len()
            };
        }
        total
    }
    let (plain, plain_size) = best(|| walk(tree.path()) as usize);
    let listing_srv = ServerHandle::start(tree.path()).expect("server");
    let url = format!("{}/msgpack/", listing_srv.base_url());
    let (listing, _) = best(|| {
        let resp = agent
            .post(&url)
            .header("Content-Type", "application/x-msgpack")
            .send(&[0x80u8][..])
            .expect("POST");
        resp.into_body().read_to_vec().expect("body").len()
    });
    assert_eq!(plain_size, 20_000 * 16);
    println!(
        "root listing of 20000 files: plain walk {:.1} ms, http listing {:.1} ms, ratio {:.2}",
        plain.as_secs_f64() * 1e3,
        listing.as_secs_f64() * 1e3,
        listing.as_secs_f64() / plain.as_secs_f64()
    );

    let log = srv.log();
    println!(
        "server sent {} requests, {} body bytes",
        log.total_requests(),
        log.total_body_bytes()
    );
}
