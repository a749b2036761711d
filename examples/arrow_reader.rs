//! The Arrow reader: `cargo run --example arrow_reader --features arrow [URL FILE_OR_GLOB]`.
//!
//! Reads two columns of the gas particles of every file a glob names as one stream of Arrow
//! record batches (a `RecordBatchReader`), with the HDF5 attributes (units) as field
//! metadata, a virtual row-index column, and a row range that only fetches those rows.

#[path = "common/mod.rs"]
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use hdfstream::arrow::GroupReaderBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = common::target(200_000)?;
    let builder = GroupReaderBuilder::open(&target.url, &target.files, "PartType0")?
        .with_columns(["Masses", "ParticleIDs"])
        .with_row_index("row_index", 0)
        .with_rows(1_000..150_000)
        .with_batch_size(1 << 15);
    let schema = builder.schema()?;
    for field in schema.fields() {
        let units = field.metadata().get("Expression for physical CGS units");
        println!(
            "{:<12} {:<8} units {units:?}",
            field.name(),
            field.data_type()
        );
    }
    let reader = builder.build()?;
    println!("{} rows to read", reader.num_rows());
    let (mut rows, mut batches, mut total_mass) = (0usize, 0usize, 0f64);
    for batch in reader {
        let batch = batch?;
        let masses = batch.column(0).as_primitive::<Float32Type>();
        total_mass += masses.values().iter().map(|&m| f64::from(m)).sum::<f64>();
        rows += masses.len();
        batches += 1;
    }
    println!("{rows} rows in {batches} batches, total mass {total_mass:.6e}");
    Ok(())
}
