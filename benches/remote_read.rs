//! Cost of the object layer on top of the connection, through the embedded server.
//!
//! `cargo bench -p hdfstream --bench remote_read` writes a 4 Mi-row `<f8` dataset (32 MiB)
//! with hdf5-metno, serves it with `hdfstream_server`, and times (best of several rounds):
//!
//! * baseline: `Connection::request_slice_into` of the whole dataset into a byte buffer;
//! * `Dataset::read::<f64>()` (decoded `Vec<f64>` moved into an `ArrayD`, no second copy);
//! * `Dataset::read_into::<f64>()` (streamed into the caller's buffer);
//! * `Dataset::read::<f64>()` of an `<f4` dataset of the same row count (safe cast);
//! * `Dataset::read_fancy::<f64>()` of every other row (2 Mi runs in one request),
//!   compared with a contiguous read of the same number of bytes.
//!
//! Each line prints the time and its ratio to the baseline measured in the same run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdfstream::remote::Backend;
use hdfstream::{OpenOptions, Selection, open_with, sel};
use hdfstream_protocol::{ByteOrder, DimSelection, Dtype, SliceSpec};

const ROWS: usize = 4 << 20;
const ROUNDS: usize = 5;

fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(name: &str, t: Duration, base: Duration, bytes: usize) {
    println!(
        "{name:<48} {:>9.2} ms  {:>7.0} MiB/s  ratio vs baseline {:.2}",
        t.as_secs_f64() * 1e3,
        bytes as f64 / (1 << 20) as f64 / t.as_secs_f64(),
        t.as_secs_f64() / base.as_secs_f64()
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.hdf5");
    {
        let f = hdf5_metno::File::create(&path).expect("create");
        let v: Vec<f64> = (0..ROWS).map(|i| i as f64 * 0.25).collect();
        f.new_dataset::<f64>()
            .shape([ROWS])
            .create("x")
            .expect("x")
            .write_raw(&v)
            .expect("write x");
        let w: Vec<f32> = (0..ROWS).map(|i| i as f32 * 0.5).collect();
        f.new_dataset::<f32>()
            .shape([ROWS])
            .create("y")
            .expect("y")
            .write_raw(&w)
            .expect("write y");
    }
    let server = hdfstream_server::http::ServerHandle::start(dir.path()).expect("server");
    let conn = hdfstream::ClientBuilder::new()
        .with_url(server.base_url())
        .with_progress(false)
        .build()
        .expect("connect");
    let conn = Arc::new(conn);
    let backend: Arc<dyn Backend> = conn.clone();
    let file = open_with(
        backend,
        "bench.hdf5",
        OpenOptions::default().data_size_limit(0),
    )
    .expect("open")
    .into_file()
    .expect("file");
    let x = file.dataset("x").expect("x");
    let y = file.dataset("y").expect("y");
    let bytes = ROWS * 8;

    let spec = SliceSpec {
        runs: vec![DimSelection {
            start: 0,
            count: ROWS as u64,
        }],
        rest: vec![],
    };
    let f8 = Dtype::Float {
        size: 8,
        order: ByteOrder::Little,
    };
    let mut raw = vec![0u8; bytes];
    let base = best(|| {
        conn.request_slice_into("bench.hdf5", "/x", &spec, &f8, &mut raw)
            .expect("raw");
        black_box(&raw);
    });
    report(
        "baseline: Connection::request_slice_into",
        base,
        base,
        bytes,
    );

    let fresh = best(|| {
        black_box(conn.request_slice("bench.hdf5", "/x", &spec).expect("raw"));
    });
    report(
        "baseline 2: Connection::request_slice (fresh buffer)",
        fresh,
        base,
        bytes,
    );
    let t = best(|| {
        black_box(x.read::<f64>().expect("read"));
    });
    report("Dataset::read::<f64>", t, base, bytes);
    println!(
        "read::<f64> / request_slice (same allocation pattern): {:.2}",
        t.as_secs_f64() / fresh.as_secs_f64()
    );

    let mut dest = vec![0f64; ROWS];
    let t = best(|| {
        x.read_into(&Selection::all(), &mut dest)
            .expect("read_into");
        black_box(&dest);
    });
    report("Dataset::read_into::<f64>", t, base, bytes);
    assert_eq!(dest[ROWS - 1], (ROWS - 1) as f64 * 0.25);

    let t = best(|| {
        black_box(y.read::<f64>().expect("read f4 as f8"));
    });
    report(
        "Dataset::read::<f64> of <f4 (half the wire bytes)",
        t,
        base,
        bytes,
    );

    let every_other: Vec<i64> = (0..ROWS as i64).step_by(2).collect();
    let half = best(|| {
        black_box(
            x.read_slice::<f64>(&sel![0..(ROWS / 2) as i64])
                .expect("half"),
        );
    });
    report(
        "Dataset::read_slice::<f64> of half the rows",
        half,
        base,
        bytes / 2,
    );
    let t = best(|| {
        black_box(
            x.read_fancy::<f64>(&every_other, &Selection::all())
                .expect("fancy"),
        );
    });
    report(
        "Dataset::read_fancy::<f64> every other row",
        t,
        base,
        bytes / 2,
    );
    println!(
        "fancy (2 Mi runs) / contiguous read of the same bytes: {:.2}",
        t.as_secs_f64() / half.as_secs_f64()
    );
    let plan_t = best(|| {
        let plan = hdfstream::selection::plan_fancy(
            (&every_other).into(),
            &Selection::all(),
            &[ROWS as u64],
        )
        .expect("plan");
        black_box(plan.requests(hdfstream_protocol::MAX_SLICES));
    });
    report(
        "  of which client-side planning (plan_fancy)",
        plan_t,
        base,
        bytes / 2,
    );
    let runs = SliceSpec {
        runs: (0..ROWS as u64)
            .step_by(2)
            .map(|s| DimSelection { start: s, count: 1 })
            .collect(),
        rest: vec![],
    };
    let raw_runs = best(|| {
        black_box(conn.request_slice("bench.hdf5", "/x", &runs).expect("runs"));
    });
    report(
        "baseline 3: Connection::request_slice, same 2 Mi runs",
        raw_runs,
        base,
        bytes / 2,
    );
    println!(
        "read_fancy / raw request of the same runs: {:.2}",
        t.as_secs_f64() / raw_runs.as_secs_f64()
    );
}
