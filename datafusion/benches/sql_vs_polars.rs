//! The same filtered aggregation through SQL (DataFusion) and through the Polars connector,
//! in one run: `cargo bench -p hdfstream-datafusion --bench sql_vs_polars`.
//!
//! Writes a SWIFT-like sample of `HDFSTREAM_BENCH_PARTICLES` gas particles (default 4·10^6,
//! 4 files), serves it with the embedded server, and computes per halo the count and mass of
//! the hot gas (`Temperatures > 1e5`) in the first half of the rows (a row-index range both
//! engines push into the scan); then selects three columns of the hottest 1% of the gas (a
//! selective filter on a data column: late materialization in both). Prints the median time
//! of `HDFSTREAM_BENCH_REPEATS` runs (default 5) and the response bytes per run, with SQL's
//! ratios to Polars.

use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use hdfstream::polars::{HdfstreamScan, ScanArgsHdfstream};
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};
use polars::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `f` `repeats` times: median time, response bytes of the last run, groups found.
fn measure(
    server: &ServerHandle,
    repeats: usize,
    mut f: impl FnMut() -> Res<usize>,
) -> Res<(Duration, u64, usize)> {
    let log = server.log();
    let mut times = Vec::new();
    let (mut bytes, mut groups) = (0, 0);
    for _ in 0..repeats {
        let before = log.total_body_bytes();
        let t = Instant::now();
        groups = f()?;
        times.push(t.elapsed());
        bytes = log.total_body_bytes() - before;
    }
    Ok((median(times), bytes, groups))
}

/// Runs `sql` to the end and counts its rows.
fn sql_rows(runtime: &tokio::runtime::Runtime, ctx: &SessionContext, sql: &str) -> Res<usize> {
    let batches = runtime.block_on(async { ctx.sql(sql).await?.collect().await })?;
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Prints one query's figures for both engines and SQL's ratios; an error when the engines
/// found different numbers of `what`.
fn report(
    title: &str,
    what: &str,
    sql: (Duration, u64, usize),
    polars: (Duration, u64, usize),
) -> Res<()> {
    println!("\n{title}");
    println!(
        "{:<20} {:>10} {:>14} {what:>8}",
        "engine", "time s", "bytes/run"
    );
    for (name, (t, b, g)) in [("sql (DataFusion)", sql), ("polars connector", polars)] {
        println!("{name:<20} {:>10.3} {b:>14} {g:>8}", t.as_secs_f64());
    }
    if sql.2 != polars.2 {
        return Err(format!("the engines found {} and {} {what}", sql.2, polars.2).into());
    }
    println!(
        "sql / polars: time {:.2}x, bytes {:.2}x",
        sql.0.as_secs_f64() / polars.0.as_secs_f64(),
        sql.1 as f64 / polars.1.max(1) as f64
    );
    Ok(())
}

fn main() -> Res<()> {
    let particles = env_or("HDFSTREAM_BENCH_PARTICLES", 4_000_000);
    let repeats = env_or("HDFSTREAM_BENCH_REPEATS", 5).max(1) as usize;
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let opts = SampleOptions {
        particles,
        files: 4,
        seed: 7,
    };
    write_sample(dir.path(), &opts)?;
    eprintln!(
        "sample of {particles} gas particles written in {:.1?}",
        t.elapsed()
    );
    let server = ServerHandle::start(dir.path())?;
    let url = format!("{}/msgpack/snap_0000.*.hdf5", server.base_url());
    let half = particles / 2;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ctx = SessionContext::new();
    hdfstream_datafusion::register(&ctx);
    let sql = format!(
        "SELECT \"HaloID\", count(*) AS n, sum(\"Masses\") AS mass \
         FROM read_hdfstream('{url}', 'PartType0') \
         WHERE row_index < {half} AND \"Temperatures\" > 1e5 GROUP BY \"HaloID\""
    );
    let sql_row = measure(&server, repeats, || sql_rows(&runtime, &ctx, &sql))?;
    let polars_row = measure(&server, repeats, || {
        let scan = HdfstreamScan::open(&url, "PartType0", ScanArgsHdfstream::default())?;
        let df = scan
            .lazy()?
            .filter(
                col("row_index")
                    .lt(lit(half))
                    .and(col("Temperatures").gt(lit(1.0e5))),
            )
            .group_by([col("HaloID")])
            .agg([len().alias("n"), col("Masses").sum().alias("mass")])
            .collect()?;
        Ok(df.height())
    })?;
    report(
        &format!(
            "hot gas per halo in rows 0..{half} of {particles} (4 files), medians of {repeats}"
        ),
        "groups",
        sql_row,
        polars_row,
    )?;

    // A selective filter on a data column: both engines fetch `Temperatures` first and the
    // other columns only for the hottest 1% (late materialization).
    let temps = HdfstreamScan::open(&url, "PartType0", ScanArgsHdfstream::default())?
        .lazy()?
        .select([col("Temperatures")])
        .collect()?;
    let mut t: Vec<f32> = temps
        .column("Temperatures")?
        .as_materialized_series()
        .f32()?
        .into_no_null_iter()
        .collect();
    t.sort_by(f32::total_cmp);
    let cut = f64::from(t[t.len() * 99 / 100]);
    let sql = format!(
        "SELECT \"ParticleIDs\", \"Coordinates\", \"Masses\" \
         FROM read_hdfstream('{url}', 'PartType0') WHERE \"Temperatures\" > {cut}"
    );
    let sql_hot = measure(&server, repeats, || sql_rows(&runtime, &ctx, &sql))?;
    let polars_hot = measure(&server, repeats, || {
        let scan = HdfstreamScan::open(&url, "PartType0", ScanArgsHdfstream::default())?;
        let df = scan
            .lazy()?
            .filter(col("Temperatures").cast(DataType::Float64).gt(lit(cut)))
            .select([col("ParticleIDs"), col("Coordinates"), col("Masses")])
            .collect()?;
        Ok(df.height())
    })?;
    report(
        &format!("the hottest 1% of {particles} particles: 3 other columns, medians of {repeats}"),
        "rows",
        sql_hot,
        polars_hot,
    )
}
