//! One row from each of many remote files through the client library, as a user's loop
//! would read it (the "merger tree" pattern timed by `scripts/bench_wan.sh`).
//!
//! usage: wan_lookups URL OBJECT ROW FILE...
//!
//! For each FILE in order: open it, open the dataset OBJECT, read row ROW (all columns of a
//! multi-dimensional dataset). Prints the number of files and of values read.

use hdfstream::{OpenOptions, Selection};

fn main() {
    if let Err(message) = run() {
        eprintln!("wan_lookups: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: wan_lookups URL OBJECT ROW FILE...".into());
    }
    let (url, object) = (&args[0], &args[1]);
    let row: i64 = args[2]
        .parse()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| format!("ROW: not a row number: {:?}", args[2]))?;
    let mut values = 0u64;
    for path in &args[3..] {
        let file = hdfstream::open(url, path, OpenOptions::default())?.into_file()?;
        let dataset = file.dataset(object)?;
        let read = dataset.read_raw(&Selection::new().dim(row..row + 1))?;
        values += read.shape().iter().product::<u64>();
    }
    println!("{} files, {values} values", args.len() - 3);
    Ok(())
}
