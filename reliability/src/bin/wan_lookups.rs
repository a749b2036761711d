//! One row from each of many remote files through the client library (the "merger tree"
//! pattern timed by `scripts/bench_wan.sh`), two ways.
//!
//! usage: wan_lookups [--table GLOB | --check GLOB] URL OBJECT ROW FILE...
//!
//! Without a flag, a user's plain loop over one connection: for each FILE in order, open it,
//! open the dataset OBJECT, read row ROW (all columns of a multi-dimensional dataset).
//!
//! `--table GLOB`: what a Rust user of the library should write instead: the files GLOB
//! names opened as one table of OBJECT's group with the table core
//! (`GroupReaderBuilder::open_with`, the files' groups opened
//! `table::METADATA_CONCURRENCY` at a time), the column OBJECT's last component, a row
//! selection holding row ROW of each file (global row numbers from the resolved table's
//! per-file row counts) and [`CONCURRENCY`] column requests in flight. The table's files
//! must be FILE..., in that order.
//!
//! `--check GLOB`: both ways, then a comparison of the values (bit for bit, as `f64`); exits
//! non-zero when they differ.
//!
//! Prints the number of files and of values read (and `match` after `--check`).

use std::sync::Arc;

use hdfstream::arrow::GroupReaderBuilder;
use hdfstream::remote::Backend;
use hdfstream::{Connection, OpenOptions, RowRanges, Selection};
use hdfstream_protocol::{ArrayData, TypedBuffer};
use hdfstream_reliability::column_f64;

/// Column requests in flight at once in `--table` mode.
const CONCURRENCY: usize = 8;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(message) = run() {
        eprintln!("wan_lookups: {message}");
        std::process::exit(1);
    }
}

enum Mode {
    Loop,
    Table(String),
    Check(String),
}

fn run() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        Some("--table" | "--check") if args.len() >= 2 => {
            let flag = args.remove(0);
            let glob = args.remove(0);
            if flag == "--table" {
                Mode::Table(glob)
            } else {
                Mode::Check(glob)
            }
        }
        _ => Mode::Loop,
    };
    if args.len() < 4 {
        return Err(
            "usage: wan_lookups [--table GLOB | --check GLOB] URL OBJECT ROW FILE...".into(),
        );
    }
    let (url, object) = (&args[0], &args[1]);
    let row: u64 = args[2]
        .parse()
        .ok()
        .ok_or_else(|| format!("ROW: not a row number: {:?}", args[2]))?;
    let files = &args[3..];
    let values = match &mode {
        Mode::Loop => lookup_loop(url, object, row, files)?,
        Mode::Table(glob) => lookup_table(url, glob, object, row, files)?,
        Mode::Check(glob) => {
            let a = lookup_loop(url, object, row, files)?;
            let b = lookup_table(url, glob, object, row, files)?;
            let same =
                a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
            if !same {
                return Err(format!(
                    "the table read {} values, the loop {}; they differ (first: {:?} vs {:?})",
                    b.len(),
                    a.len(),
                    &b[..b.len().min(4)],
                    &a[..a.len().min(4)]
                )
                .into());
            }
            a
        }
    };
    print!("{} files, {} values", files.len(), values.len());
    println!(
        "{}",
        if matches!(mode, Mode::Check(_)) {
            ", match"
        } else {
            ""
        }
    );
    Ok(())
}

/// The plain loop: open each file, its dataset, read one row.
fn lookup_loop(url: &str, object: &str, row: u64, files: &[String]) -> Res<Vec<f64>> {
    let row = i64::try_from(row).map_err(|_| format!("ROW {row} is too large"))?;
    let mut values = Vec::new();
    for path in files {
        let file = hdfstream::open(url, path, OpenOptions::default())?.into_file()?;
        let dataset = file.dataset(object)?;
        let read = dataset.read_raw(&Selection::new().dim(row..row + 1))?;
        values.extend(as_f64(&read).ok_or_else(|| format!("{path}{object}: not numeric"))?);
    }
    Ok(values)
}

/// The files as one table: row `row` of each file, `CONCURRENCY` requests in flight.
fn lookup_table(url: &str, glob: &str, object: &str, row: u64, files: &[String]) -> Res<Vec<f64>> {
    let (group, column) = object
        .trim_end_matches('/')
        .rsplit_once('/')
        .ok_or_else(|| format!("OBJECT {object:?}: not GROUP/DATASET"))?;
    let group = if group.is_empty() { "/" } else { group };
    let backend: Arc<dyn Backend> = Arc::new(Connection::open(url)?);
    let table = GroupReaderBuilder::open_with(backend, glob, group, OpenOptions::metadata_only())?
        .with_columns([column])
        .with_concurrency(CONCURRENCY)
        .resolve()?;
    let names: Vec<&str> = table
        .files()
        .iter()
        .map(|f| f.vpath.trim_start_matches('/'))
        .collect();
    let wanted: Vec<&str> = files.iter().map(|f| f.trim_start_matches('/')).collect();
    if names != wanted {
        return Err(format!("{glob} names {names:?}, not the FILE arguments {wanted:?}").into());
    }
    // Global row numbers: row `row` of each file, after the rows of the files before it.
    if let Some(f) = table.files().iter().find(|f| row >= f.rows) {
        return Err(format!("{}: row {row} of {} rows", f.vpath, f.rows).into());
    }
    let local = RowRanges::from_rows([row]);
    let rows = RowRanges::join_files(table.files().iter().map(|f| (f.rows, &local)));
    let mut values = Vec::new();
    for batch in table.reader(Some(&rows))? {
        values.extend(column_f64(batch?.column(0))?.values().iter());
    }
    Ok(values)
}

/// The values of a numeric read, as `f64`.
fn as_f64(data: &ArrayData) -> Option<Vec<f64>> {
    fn conv<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
        v.iter().map(|&x| x.into()).collect()
    }
    Some(match &data.as_nd()?.data {
        TypedBuffer::I8(v) => conv(v),
        TypedBuffer::I16(v) => conv(v),
        TypedBuffer::I32(v) => conv(v),
        TypedBuffer::U8(v) => conv(v),
        TypedBuffer::U16(v) => conv(v),
        TypedBuffer::U32(v) => conv(v),
        TypedBuffer::F32(v) => conv(v),
        TypedBuffer::F64(v) => v.clone(),
        // The check compares as f64, as the Arrow side's cast does.
        TypedBuffer::I64(v) => v.iter().map(|&x| x as f64).collect(),
        TypedBuffer::U64(v) => v.iter().map(|&x| x as f64).collect(),
        TypedBuffer::Bytes { .. } => return None,
    })
}
