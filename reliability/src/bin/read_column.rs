//! One whole dataset read into memory with the client library, as a Rust user writes it:
//! the "full-column read" of `scripts/bench_server.sh` (whose `hdfstream get` row streams the
//! same response to a file instead).
//!
//! usage: read_column URL FILE DATASET
//!
//! Opens FILE (metadata only), reads DATASET with `Dataset::read::<f64>()` into a fresh
//! array, and prints its element count and the sum of its values, for the benchmark's check.

use hdfstream::OpenOptions;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: read_column URL FILE DATASET";

fn main() {
    if let Err(message) = run() {
        eprintln!("read_column: {message}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, file, dataset] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let file = hdfstream::open(url, file, OpenOptions::metadata_only())?.into_file()?;
    let values = file.dataset(dataset)?.read::<f64>()?;
    println!("{} {:e}", values.len(), values.sum());
    Ok(())
}
