//! Quickstart of the Polars connector:
//! `cargo run -p hdfstream --profile quickstart --example quickstart --features polars`.
//!
//! Generates a small SWIFT-like snapshot (4 files) and its halo catalogue in a temporary
//! directory, serves them with the embedded hdfstream server, and then, through HTTP only:
//! scans the gas particles of all files as one table, filters on a row-index range and a data
//! column, aggregates per halo, joins the particles with the halo catalogue and writes the
//! result to Parquet. It prints what it did and how many bytes crossed the wire.

use std::time::Instant;

use hdfstream::polars::{HdfstreamScan, ScanArgsHdfstream};
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};
use polars::prelude::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let t0 = Instant::now();
    let dir = tempfile::tempdir()?;
    let opts = SampleOptions {
        particles: 400_000,
        files: 4,
        seed: 42,
    };
    let sample = write_sample(dir.path(), &opts)?;
    println!(
        "wrote {} snapshot files + halo catalogue ({:.1} MB) in {:.1?}",
        sample.snapshot_files.len(),
        sample.bytes as f64 / 1e6,
        t0.elapsed()
    );
    let server = ServerHandle::start(dir.path())?;
    let log = server.log();
    let base = server.base_url().to_owned();
    println!("serving {} at {base}", dir.path().display());

    // 1. All files of the snapshot as one lazy table (metadata only so far).
    let before = log.total_body_bytes();
    let particles = HdfstreamScan::open(
        &format!("{base}/msgpack/snap_0000.*.hdf5"),
        "PartType0",
        ScanArgsHdfstream::default(),
    )?;
    println!(
        "\nscan_hdfstream(\"{base}/msgpack/snap_0000.*.hdf5\", \"PartType0\"): {} rows over {} files, {} columns, {} B of metadata",
        particles.row_count(),
        particles.files().len(),
        particles.schema().len(),
        log.total_body_bytes() - before
    );
    for (name, dtype) in particles.schema().iter() {
        println!("  {name}: {dtype}");
    }

    // 2. Index range + data-column filter, aggregated per halo.
    let before = log.total_body_bytes();
    let t = Instant::now();
    let hot = particles
        .lazy()?
        .filter(
            col("row_index")
                .is_between(lit(100_000u64), lit(300_000u64), ClosedInterval::Left)
                .and(col("Temperatures").gt(lit(1.0e5))),
        )
        .group_by([col("HaloID")])
        .agg([len().alias("n_hot"), col("Masses").sum().alias("hot_mass")])
        .sort(
            ["n_hot"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .collect()?;
    println!(
        "\nrows 100000..300000 with Temperatures > 1e5, per halo ({:.1?}, {} B over the wire; \
         the three columns of all rows are {} B):\n{}",
        t.elapsed(),
        log.total_body_bytes() - before,
        particles.row_count() * 16,
        hot.head(Some(5))
    );

    // 3. Join particles with the halo catalogue.
    let before = log.total_body_bytes();
    let t = Instant::now();
    let halos = HdfstreamScan::open(
        &format!("{base}/msgpack/halos_0000.hdf5"),
        "Halos",
        ScanArgsHdfstream::default().without_row_index(),
    )?;
    let joined = particles
        .lazy()?
        .filter(col("HaloID").gt(lit(0)))
        .select([col("ParticleIDs"), col("HaloID"), col("Masses")])
        .join(
            halos
                .lazy()?
                .select([col("ID"), col("Mass").alias("HaloMass"), col("Radius")]),
            [col("HaloID")],
            [col("ID")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()?;
    println!(
        "\nparticles in halos joined with the catalogue: {} rows ({:.1?}, {} B over the wire)\n{}",
        joined.height(),
        t.elapsed(),
        log.total_body_bytes() - before,
        joined.head(Some(5))
    );

    // 4. Export.
    let out = dir.path().join("hot_gas_per_halo.parquet");
    let mut hot = hot;
    let written = polars_io::parquet::write::ParquetWriter::new(std::fs::File::create(&out)?)
        .finish(&mut hot)?;
    println!(
        "\nwrote {} ({written} B, {} rows)",
        out.display(),
        hot.height()
    );

    println!(
        "\ntotal: {} requests, {} B over the wire, {:.1?}",
        log.total_requests(),
        log.total_body_bytes(),
        t0.elapsed()
    );
    Ok(())
}
