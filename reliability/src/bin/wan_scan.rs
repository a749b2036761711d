//! Columns of a multi-file snapshot read into memory through the Arrow table core: the
//! "16-file scan" of `scripts/bench_wan.sh` as a Rust user of the library writes it (the CLI's
//! `export` of the same table also writes Parquet; the Python client only reads).
//!
//! usage: wan_scan [--concurrency N] [--prefetch BATCHES] [--batch-size ROWS] URL GLOB GROUP COLUMN...
//!
//! The files GLOB names are opened as one table of GROUP (`GroupReaderBuilder::open_with`,
//! metadata only), and every batch of COLUMN... is kept in memory until the end, as the Python
//! client's arrays are. The knobs default to the reader's (`hdfstream::arrow::DEFAULT_*`).
//!
//! Prints the rows read, then per column its name and the sum of its values as `f64` (a
//! fixed-size list column summed over all its elements), for the benchmark's value check.

use std::sync::Arc;

use arrow::array::RecordBatch;
use hdfstream::arrow::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_PREFETCH, GroupReaderBuilder,
};
use hdfstream::remote::Backend;
use hdfstream::{Connection, OpenOptions};
use hdfstream_reliability::column_f64;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: wan_scan [--concurrency N] [--prefetch BATCHES] [--batch-size ROWS] URL GLOB GROUP COLUMN...";

fn main() {
    if let Err(message) = run() {
        eprintln!("wan_scan: {message}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let (mut concurrency, mut prefetch, mut batch) =
        (DEFAULT_CONCURRENCY, DEFAULT_PREFETCH, DEFAULT_BATCH_SIZE);
    while args.first().is_some_and(|a| a.starts_with("--")) {
        let flag = args.remove(0);
        let value: usize = args
            .first()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} takes a positive number; {USAGE}"))?;
        args.remove(0);
        match flag.as_str() {
            "--concurrency" => concurrency = value,
            "--prefetch" => prefetch = value,
            "--batch-size" => batch = value,
            _ => return Err(format!("unknown flag {flag}; {USAGE}").into()),
        }
    }
    if args.len() < 4 {
        return Err(USAGE.into());
    }
    let (url, glob, group, columns) = (&args[0], &args[1], &args[2], &args[3..]);
    let backend: Arc<dyn Backend> = Arc::new(Connection::open(url)?);
    let reader = GroupReaderBuilder::open_with(backend, glob, group, OpenOptions::metadata_only())?
        .with_columns(columns.iter().map(String::as_str))
        .with_concurrency(concurrency)
        .with_prefetch(prefetch)
        .with_batch_size(batch)
        .build()?;
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    println!("{rows} rows");
    for (i, name) in columns.iter().enumerate() {
        let mut sum = 0.0;
        for b in &batches {
            sum += column_f64(b.column(i))?.values().iter().sum::<f64>();
        }
        println!("{name} {sum:e}");
    }
    Ok(())
}
