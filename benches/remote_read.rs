//! Cost of the object layer on top of the connection, through the embedded server.
//!
//! `cargo bench -p hdfstream --bench remote_read` writes a 4 Mi-row `<f8` dataset (32 MiB)
//! and a `<f4` one with hdf5-metno, serves them with `hdfstream_server`, and compares each
//! object-layer read with the raw `Connection` call doing the same transfer:
//!
//! * `Dataset::read::<f64>()` vs `Connection::request_slice` (both decode into a fresh buffer;
//!   the object layer moves the `Vec<f64>` into the `ArrayD`, no second copy);
//! * `Dataset::read_into::<f64>()` vs `Connection::request_slice_into` (same caller buffer);
//! * `Dataset::read::<f64>()` of the `<f4` dataset (safe cast) vs `request_slice` of it;
//! * `Dataset::read_fancy::<f64>()` of every other row (2 Mi runs, one request) vs
//!   `request_slice` of the same runs, plus the client-side planning time alone.
//!
//! The machine is shared, so candidate and baseline run alternately and the printed ratio is
//! the median of the per-round ratios (best times shown for scale). Rounds: 7, or
//! `HDFSTREAM_BENCH_ROUNDS`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdfstream::remote::Backend;
use hdfstream::{OpenOptions, Selection, open_with};
use hdfstream_protocol::{ByteOrder, DimSelection, Dtype, SliceSpec};

const ROWS: usize = 4 << 20;

fn rounds() -> usize {
    std::env::var("HDFSTREAM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7)
        .max(1)
}

fn time(f: &mut impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Runs `base` and `cand` alternately; prints best times and the median per-round ratio.
fn compare(name: &str, bytes: usize, mut base: impl FnMut(), mut cand: impl FnMut()) {
    let mut ratios = Vec::new();
    let (mut bb, mut bc) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds() {
        let tb = time(&mut base);
        let tc = time(&mut cand);
        bb = bb.min(tb);
        bc = bc.min(tc);
        ratios.push(tc.as_secs_f64() / tb.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "{name:<58} baseline {:>8.2} ms  candidate {:>8.2} ms ({:>6.0} MiB/s)  median ratio {median:.2}",
        bb.as_secs_f64() * 1e3,
        bc.as_secs_f64() * 1e3,
        bytes as f64 / (1 << 20) as f64 / bc.as_secs_f64(),
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
    let all = |n: u64| SliceSpec {
        runs: vec![DimSelection { start: 0, count: n }],
        rest: vec![],
    };
    let f8 = Dtype::Float {
        size: 8,
        order: ByteOrder::Little,
    };

    compare(
        "read::<f64> vs Connection::request_slice",
        bytes,
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/x", &all(ROWS as u64))
                    .expect("raw"),
            ))
        },
        || drop(black_box(x.read::<f64>().expect("read"))),
    );

    let mut raw = vec![0u8; bytes];
    let mut dest = vec![0f64; ROWS];
    let dest_ptr = &mut dest;
    compare(
        "read_into::<f64> vs Connection::request_slice_into",
        bytes,
        || {
            conn.request_slice_into("bench.hdf5", "/x", &all(ROWS as u64), &f8, &mut raw)
                .expect("raw");
            black_box(&raw);
        },
        || {
            x.read_into(&Selection::all(), dest_ptr).expect("read_into");
            black_box(&*dest_ptr);
        },
    );
    assert_eq!(dest[ROWS - 1], (ROWS - 1) as f64 * 0.25);

    compare(
        "read::<f64> of <f4 (cast) vs request_slice of it",
        bytes,
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/y", &all(ROWS as u64))
                    .expect("raw"),
            ))
        },
        || drop(black_box(y.read::<f64>().expect("cast"))),
    );

    let every_other: Vec<i64> = (0..ROWS as i64).step_by(2).collect();
    let runs = SliceSpec {
        runs: (0..ROWS as u64)
            .step_by(2)
            .map(|s| DimSelection { start: s, count: 1 })
            .collect(),
        rest: vec![],
    };
    compare(
        "read_fancy::<f64> every other row vs request_slice of the runs",
        bytes / 2,
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/x", &runs).expect("runs"),
            ))
        },
        || {
            drop(black_box(
                x.read_fancy::<f64>(&every_other, &Selection::all())
                    .expect("fancy"),
            ))
        },
    );
    compare(
        "plan_fancy (client planning only) vs request_slice of the runs",
        bytes / 2,
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/x", &runs).expect("runs"),
            ))
        },
        || {
            let plan = hdfstream::selection::plan_fancy(
                (&every_other).into(),
                &Selection::all(),
                &[ROWS as u64],
            )
            .expect("plan");
            black_box(plan.requests(hdfstream_protocol::MAX_SLICES));
        },
    );
    compare(
        "request_slice of 2 Mi runs vs one contiguous half",
        bytes / 2,
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/x", &all(ROWS as u64 / 2))
                    .expect("half"),
            ))
        },
        || {
            drop(black_box(
                conn.request_slice("bench.hdf5", "/x", &runs).expect("runs"),
            ))
        },
    );
}
