//! Speed of the HDF5 layer against baselines measured in the same run:
//! - sample writing (MB/s of file written),
//! - whole-dataset and multi-run slice answers from `Hdf5Files::write_response` vs
//!   hdf5-metno `read_raw` of the same data (ratio > 1 = slower than the plain read).
//!
//! `cargo bench -p hdfstream-server --bench hdf5_stream` (env `HDF5_BENCH_PARTICLES`,
//! default 1_000_000 gas particles).

use std::io::Write;
use std::time::{Duration, Instant};

use hdf5_metno::File;
use hdfstream_protocol::{DimSelection, ObjectRequest, SliceSpec};
use hdfstream_server::hdf5::Hdf5Files;
use hdfstream_server::sample::{SampleOptions, write_sample};

/// Counts bytes, discards them.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Best of `n` runs.
fn best(n: usize, mut f: impl FnMut() -> u64) -> (Duration, u64) {
    let mut out = (Duration::MAX, 0);
    for _ in 0..n {
        let t = Instant::now();
        let bytes = f();
        out = out.min((t.elapsed(), bytes));
    }
    out
}

fn req(object: &str, runs: Vec<DimSelection>, rest: Vec<DimSelection>) -> ObjectRequest {
    ObjectRequest {
        object: Some(object.to_owned()),
        max_depth: None,
        data_size_limit: None,
        slice: Some(SliceSpec { runs, rest }),
    }
}

fn main() {
    let n: u64 = std::env::var("HDF5_BENCH_PARTICLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let summary = write_sample(
        dir.path(),
        &SampleOptions {
            particles: n,
            files: 1,
            seed: 1,
        },
    )
    .expect("sample");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "sample: {n} gas particles, {:.1} MB in {secs:.2} s = {:.0} MB/s",
        summary.bytes as f64 / 1e6,
        summary.bytes as f64 / 1e6 / secs
    );
    let path = summary.snapshot_files[0].clone();
    let files = Hdf5Files::default();
    let h5 = File::open(&path).expect("open");
    let all = |d: u64| DimSelection { start: 0, count: d };
    for (name, width, item) in [
        ("PartType0/Coordinates", 3u64, 8u64),
        ("PartType1/Coordinates", 3, 8),
        ("PartType0/Densities", 0, 4),
    ] {
        let ds = h5.dataset(name).expect("dataset");
        let (base, bytes) = best(3, || {
            if item == 8 {
                ds.read_raw::<f64>().expect("read").len() as u64 * 8
            } else {
                ds.read_raw::<f32>().expect("read").len() as u64 * 4
            }
        });
        let rest = if width > 0 { vec![all(width)] } else { vec![] };
        let r = req(name, vec![all(n)], rest);
        let (ours, sent) = best(3, || {
            let mut c = Count(0);
            files.write_response(&path, &r, &mut c).expect("answer");
            c.0
        });
        assert!(sent >= bytes);
        println!(
            "{name}: read_raw {:.1} ms ({:.0} MB/s), write_response {:.1} ms ({:.0} MB/s), ratio {:.2}",
            base.as_secs_f64() * 1e3,
            bytes as f64 / 1e6 / base.as_secs_f64(),
            ours.as_secs_f64() * 1e3,
            sent as f64 / 1e6 / ours.as_secs_f64(),
            ours.as_secs_f64() / base.as_secs_f64()
        );
    }
    // n/2 runs of one row (every other particle) vs reading everything.
    let ds = h5.dataset("PartType0/Masses").expect("dataset");
    let (base, _) = best(3, || ds.read_raw::<f32>().expect("read").len() as u64);
    let runs: Vec<DimSelection> = (0..n / 2)
        .map(|i| DimSelection {
            start: 2 * i,
            count: 1,
        })
        .collect();
    let r = req("PartType0/Masses", runs, vec![]);
    let (ours, _) = best(3, || {
        let mut c = Count(0);
        files.write_response(&path, &r, &mut c).expect("answer");
        c.0
    });
    println!(
        "PartType0/Masses, {} runs of 1 row: {:.1} ms vs read_raw of all {:.1} ms, ratio {:.2}",
        n / 2,
        ours.as_secs_f64() * 1e3,
        base.as_secs_f64() * 1e3,
        ours.as_secs_f64() / base.as_secs_f64()
    );
    // Runs 1000 rows apart (merged into shared reads: gaps under 64 KiB) and 20000 rows
    // apart (one H5Dread each): cost per run.
    for spacing in [1000u64, 20_000] {
        let runs: Vec<DimSelection> = (0..n / spacing)
            .map(|i| DimSelection {
                start: spacing * i,
                count: 1,
            })
            .collect();
        let k = runs.len();
        let r = req("PartType0/Masses", runs, vec![]);
        let (ours, _) = best(3, || {
            let mut c = Count(0);
            files.write_response(&path, &r, &mut c).expect("answer");
            c.0
        });
        println!(
            "PartType0/Masses, {k} runs {spacing} rows apart: {:.2} ms = {:.2} us per run",
            ours.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e6 / k.max(1) as f64
        );
    }
}
