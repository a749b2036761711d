//! The client library, h5py-style: `cargo run --example client [URL FILE]`.
//!
//! Without arguments it serves a sample snapshot with the embedded server. It lists the
//! server's root directory, opens one file, prints header attributes and a dataset's units,
//! then reads rows three ways: a hyperslab, a multi-slice (several row ranges in one
//! request) and fancy indexing (any rows, in any order).

#[path = "common/mod.rs"]
mod common;

use hdfstream::{HasAttrs, OpenOptions, Selection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = common::target(100_000)?;
    // Without arguments `files` is a glob; the client opens one file, the first it names.
    let file_path = target.files.replace('*', "0");

    let root = hdfstream::open(&target.url, "", OpenOptions::default())?.into_directory()?;
    for (name, file) in root.files()? {
        println!("{name:>24}  {:>10} bytes", file.size());
    }

    let file = hdfstream::open(&target.url, &file_path, OpenOptions::default())?.into_file()?;
    let header = file.group("Header")?;
    if let Some(n) = header.attrs().get("NumPart_Total") {
        println!("NumPart_Total = {:?}", n.to_vec::<u64>()?);
    }
    let coords = file.dataset("PartType0/Coordinates")?;
    println!(
        "{}: type {}, shape {:?}, units {:?}",
        coords.path(),
        coords.dtype(),
        coords.shape(),
        coords
            .attrs()
            .get("Expression for physical CGS units")
            .and_then(|a| a.as_string())
    );

    // Rows 0..5, all three components: one request.
    let first = coords.read_slice::<f64>(&Selection::new().dim(0..5))?;
    println!("first rows:\n{first}");
    // Rows 10..12 and 100..102 in one multi-slice request.
    let several = coords
        .request_slices::<f64>(&[Selection::new().dim(10..12), Selection::new().dim(100..102)])?;
    println!("rows 10..12 and 100..102:\n{several}");
    // Any rows, any order, repeats allowed (sorted and merged into few ranges on the wire).
    let rows: &[i64] = &[7, 3, 3, -1];
    let picked = coords.read_fancy::<f64>(rows, &Selection::all())?;
    println!("rows 7, 3, 3 and the last:\n{picked}");
    Ok(())
}
