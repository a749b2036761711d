//! Collects columns of a remote group with the Polars connector and prints the row count:
//! `cargo run --release --example collect --features polars -- URL GROUP COL[,COL...]`.
//! `scripts/bench_memory.sh` measures its peak memory against streaming exports.

use hdfstream::polars::{HdfstreamScan, ScanArgsHdfstream};
use polars::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(group), Some(cols)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: collect URL GROUP COL[,COL...]".into());
    };
    let scan = HdfstreamScan::open(&url, &group, ScanArgsHdfstream::default())?;
    let df = scan
        .lazy()?
        .select(cols.split(',').map(col).collect::<Vec<_>>())
        .collect()?;
    println!("{} rows x {} columns", df.height(), df.width());
    Ok(())
}
