//! Parquet export: `cargo run --example export --features parquet [URL FILE_OR_GLOB]`.
//!
//! Streams three columns of the gas particles of every file a glob names into one Parquet
//! file (zstd, HDF5 attributes in the Arrow schema metadata), batch by batch with bounded
//! memory, then reads the file's footer back. The destination may also be `s3://bucket/key`
//! (credentials from `AWS_*`), `file://` or `memory://`.

#[path = "common/mod.rs"]
mod common;

use hdfstream::arrow::GroupReaderBuilder;
use hdfstream::export::{ExportOptions, ParquetCompression, to_parquet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = common::target(200_000)?;
    let out_dir = tempfile::tempdir()?;
    let dest = out_dir.path().join("gas.parquet");
    let builder = GroupReaderBuilder::open(&target.url, &target.files, "PartType0")?
        .with_columns(["Coordinates", "Masses", "ParticleIDs"]);
    let options = ExportOptions::default().with_compression(ParquetCompression::Zstd);
    let summary = to_parquet(builder, &dest.to_string_lossy(), &options)?;
    println!(
        "wrote {} rows in {} row groups, {} bytes, to {}",
        summary.rows,
        summary.row_groups,
        summary.bytes,
        dest.display()
    );
    let file = std::fs::File::open(&dest)?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)?;
    let meta = parquet::file::reader::FileReader::metadata(&reader);
    println!(
        "footer: {} rows, columns {:?}",
        meta.file_metadata().num_rows(),
        meta.file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.path().string())
            .collect::<Vec<_>>()
    );
    Ok(())
}
