//! The quickstart in SQL: `cargo run --release -p hdfstream-datafusion --example sql`.
//!
//! Generates the same SWIFT-like snapshot (4 files) and halo catalogue as the Polars
//! quickstart, serves them with the embedded server, and then, through HTTP only and in SQL:
//! a row-index range with a data filter aggregated per halo, a join of the particles with
//! the halo catalogue, a box on the positions pruned by the `Cells/` index, and a `COPY` of
//! the per-halo result to Parquet. It prints what each query cost on the wire.

use std::time::Instant;

use datafusion::prelude::SessionContext;
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};

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
    // The server runs its own runtime: start it before the query runtime.
    let server = ServerHandle::start(dir.path())?;
    let log = server.log();
    let base = server.base_url().to_owned();
    let out = dir.path().join("hot_gas_per_halo.parquet");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ctx = SessionContext::new();
        hdfstream_datafusion::register(&ctx);
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE gas STORED AS HDFSTREAM \
             LOCATION '{base}/msgpack/snap_0000.*.hdf5' OPTIONS ('group' 'PartType0')"
        ))
        .await?;
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE halos STORED AS HDFSTREAM \
             LOCATION '{base}/msgpack/halos_0000.hdf5' OPTIONS ('group' 'Halos')"
        ))
        .await?;
        let queries = [
            (
                "rows 100000..300000 with Temperatures > 1e5, per halo",
                "SELECT \"HaloID\", count(*) AS n_hot, sum(\"Masses\") AS hot_mass FROM gas \
                 WHERE row_index >= 100000 AND row_index < 300000 AND \"Temperatures\" > 1e5 \
                 GROUP BY \"HaloID\" ORDER BY n_hot DESC LIMIT 5"
                    .to_owned(),
            ),
            (
                "particles in halos joined with the catalogue",
                "SELECT p.\"ParticleIDs\", p.\"HaloID\", p.\"Masses\", h.\"Mass\" AS halo_mass, \
                 h.\"Radius\" FROM gas p JOIN halos h ON p.\"HaloID\" = h.\"ID\" \
                 ORDER BY p.\"ParticleIDs\" LIMIT 5"
                    .to_owned(),
            ),
            (
                "gas in a box of 1/64 of the volume (cells pruned)",
                "SELECT count(*) AS n, avg(\"Temperatures\") AS mean_t FROM gas \
                 WHERE \"Coordinates\"[1] BETWEEN 0 AND 6.25 \
                 AND \"Coordinates\"[2] BETWEEN 0 AND 6.25 AND \"Coordinates\"[3] BETWEEN 0 AND 6.25"
                    .to_owned(),
            ),
            (
                "per-halo hot gas written to Parquet",
                format!(
                    "COPY (SELECT \"HaloID\", count(*) AS n_hot, sum(\"Masses\") AS hot_mass \
                     FROM gas WHERE \"Temperatures\" > 1e5 GROUP BY \"HaloID\") \
                     TO '{}' STORED AS PARQUET",
                    out.display()
                ),
            ),
        ];
        for (what, sql) in queries {
            let before = log.total_body_bytes();
            let t = Instant::now();
            let df = ctx.sql(&sql).await?;
            let batches = df.collect().await?;
            println!(
                "\n{what} ({:.1?}, {} B over the wire):\n{}",
                t.elapsed(),
                log.total_body_bytes() - before,
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    println!(
        "\nwrote {} ({} B); total: {} requests, {} B over the wire, {:.1?}",
        out.display(),
        std::fs::metadata(&out)?.len(),
        log.total_requests(),
        log.total_body_bytes(),
        t0.elapsed()
    );
    Ok(())
}
