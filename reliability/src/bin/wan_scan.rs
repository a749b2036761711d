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

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use hdfstream::arrow::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_PREFETCH, GroupReaderBuilder,
};
use hdfstream::remote::Backend;
use hdfstream::{Connection, OpenOptions};

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
            sum += column_sum(b.column(i))?;
        }
        println!("{name} {sum:e}");
    }
    Ok(())
}

/// The sum of a numeric Arrow column's values (nested fixed-size lists flattened), as `f64`.
fn column_sum(col: &ArrayRef) -> Res<f64> {
    if let Some(list) = col.as_any().downcast_ref::<FixedSizeListArray>() {
        return column_sum(list.values());
    }
    let f = cast(col, &DataType::Float64)?;
    let f = f
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or("the column did not cast to f64")?;
    Ok(f.values().iter().sum())
}
