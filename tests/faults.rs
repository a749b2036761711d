//! Injected faults, client side: every read path goes through a proxy that damages 30% of the
//! server's responses (cut, reset or stalled connections, 5xx and 429 answers, bodies ended
//! early, flipped header bytes; see `support::faults`). Each read must come back exactly as
//! read without the proxy, or fail with a clear error; wrong data is never acceptable.
//!
//! `cargo test -p hdfstream --features polars,parquet --test faults -- --nocapture` prints,
//! per path, the reads that were exact / clean errors / wrong and the faults injected.

#[allow(dead_code)] // each test crate uses a subset
mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdfstream::remote::Backend;
use hdfstream::{
    BackoffConfig, ClientBuilder, Connection, Error, File, HasAttrs, Object, OpenOptions,
    RetryConfig, Selection, open_with, sel,
};
use hdfstream_protocol::{
    ArrayData, ByteOrder, DimSelection, Dtype, NdArray, PathInfo, SliceSpec, TypedBuffer,
};
use hdfstream_server::http::ServerHandle;
use hdfstream_server::sample::{SampleOptions, write_sample};
use support::faults::{Fault, FaultConfig, FaultProxy, flippable};
use support::http::{Framing, MockResponse, MockServer};

/// Reads per path.
const READS: usize = 20;
/// Share of responses the proxy damages.
const FAULT_RATE: f64 = 0.3;
const MSGPACK: &str = "application/x-msgpack";

/// Retries with millisecond delays: enough attempts for 30% faults, and a fast test.
fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 10,
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(8),
            base: 2.0,
        },
        retry_timeout: Duration::from_secs(20),
    }
}

fn connect(base: &str, retry: RetryConfig) -> Connection {
    ClientBuilder::new()
        .with_url(base)
        .with_retry(retry)
        .with_progress(false)
        .with_probe(false)
        .with_timeout(Duration::from_secs(20))
        .build()
        .expect("connect")
}

/// A small multi-file sample served by the embedded server, and a faulty proxy in front.
struct Served {
    dir: tempfile::TempDir,
    server: ServerHandle,
    files: Vec<String>,
    proxy: FaultProxy,
}

impl Served {
    fn new(seed: u64) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let summary = write_sample(
            dir.path(),
            &SampleOptions {
                particles: 2000,
                files: 2,
                seed: 7,
            },
        )
        .expect("sample");
        let server = ServerHandle::start(dir.path()).expect("server");
        let proxy = FaultProxy::start(server.base_url(), FaultConfig::new(FAULT_RATE, seed));
        let files = summary
            .snapshot_files
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .expect("inside the sample dir")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        Served {
            dir,
            server,
            files,
            proxy,
        }
    }

    /// A connection to the server itself (the truth).
    fn direct(&self) -> Arc<dyn Backend> {
        Arc::new(connect(self.server.base_url(), RetryConfig::none()))
    }

    /// A connection through the faulty proxy.
    fn faulty(&self) -> Arc<dyn Backend> {
        Arc::new(self.faulty_conn())
    }

    fn faulty_conn(&self) -> Connection {
        connect(&self.proxy.base_url(), fast_retry())
    }

    /// The multi-file glob of the snapshot.
    #[cfg(any(feature = "arrow", feature = "polars"))]
    fn glob(&self) -> String {
        let first = &self.files[0];
        let dot = first[..first.len() - ".hdf5".len()]
            .rfind('.')
            .expect("snap_0000.<i>.hdf5");
        format!("{}.*.hdf5", &first[..dot])
    }
}

/// Outcomes of the reads of one path.
#[derive(Debug, Default)]
struct Tally {
    exact: usize,
    clean: usize,
    wrong: usize,
    /// The first few clean errors' messages.
    errors: Vec<String>,
    /// What the wrong results were.
    wrongs: Vec<String>,
}

impl Tally {
    fn record<T: PartialEq + std::fmt::Debug>(
        &mut self,
        got: Result<T, impl std::fmt::Display>,
        want: &T,
    ) {
        match got {
            Ok(v) if v == *want => self.exact += 1,
            Ok(v) => {
                self.wrong += 1;
                let text = format!("{v:?}");
                self.wrongs.push(text.chars().take(300).collect());
            }
            Err(e) => self.error(e.to_string()),
        }
    }

    fn error(&mut self, text: String) {
        self.clean += 1;
        if self.errors.len() < 3 {
            self.errors.push(text);
        }
    }

    /// Prints the figures and asserts none is wrong and at least 95% are exact.
    fn check(&self, path: &str, proxy: &FaultProxy, t0: Instant) {
        let n = self.exact + self.clean + self.wrong;
        println!(
            "faults [{path}]: {n} reads: {} exact, {} clean errors, {} wrong ({:.1} s); proxy: {}",
            self.exact,
            self.clean,
            self.wrong,
            t0.elapsed().as_secs_f64(),
            proxy.counts()
        );
        for e in &self.errors {
            println!("  error: {e}");
        }
        assert_eq!(
            self.wrong, 0,
            "{path}: wrong data returned: {:?}",
            self.wrongs
        );
        assert!(n >= READS, "{path}: only {n} reads");
        assert!(
            self.exact * 100 >= n * 95,
            "{path}: only {} of {n} reads exact; errors: {:?}",
            self.exact,
            self.errors
        );
        assert!(proxy.counts().faults() > 0, "{path}: no fault injected");
    }
}

fn open_file(
    backend: Arc<dyn Backend>,
    vpath: &str,
    options: OpenOptions,
) -> hdfstream::Result<Arc<File>> {
    open_with(backend, vpath, options)?.into_file()
}

/// Options under which every dataset value comes from a slice request.
fn no_inline() -> OpenOptions {
    OpenOptions::default().data_size_limit(0)
}

/// Every dataset of `PartType0` of `file` read whole (as decoded wire data), plus the
/// coordinates as a typed `f64` array.
fn full_reads(file: &File) -> hdfstream::Result<Vec<ArrayData>> {
    let group = file.group("PartType0")?;
    let mut out = Vec::new();
    for name in group.keys() {
        let ds = group.dataset(&name)?;
        out.push(ds.read_raw(&Selection::all())?);
    }
    let coords = group.dataset("Coordinates")?.read::<f64>()?;
    out.push(ArrayData::Nd(NdArray {
        dtype: Dtype::Float {
            size: 8,
            order: ByteOrder::Little,
        },
        shape: coords.shape().iter().map(|&d| d as u64).collect(),
        data: TypedBuffer::F64(coords.iter().copied().collect()),
    }));
    Ok(out)
}

#[test]
fn dataset_full_reads() {
    let s = Served::new(101);
    let want: Vec<Vec<ArrayData>> = s
        .files
        .iter()
        .map(|f| full_reads(&open_file(s.direct(), f, no_inline()).unwrap()).unwrap())
        .collect();
    let faulty = s.faulty();
    let t0 = Instant::now();
    let mut tally = Tally::default();
    for i in 0..READS {
        let f = i % s.files.len();
        let got = open_file(Arc::clone(&faulty), &s.files[f], no_inline())
            .and_then(|file| full_reads(&file));
        tally.record(got, &want[f]);
    }
    tally.check("dataset full reads", &s.proxy, t0);
}

/// Hyperslabs and multi-slices of the coordinates (typed, into buffers, several runs).
fn slice_reads(file: &File, i: usize) -> hdfstream::Result<Vec<Vec<f64>>> {
    let ds = file.dataset("PartType0/Coordinates")?;
    let n = ds.len()? as i64;
    let a = 1 + (i as i64 * 37) % (n / 2);
    let b = a + 1 + (i as i64 * 53) % (n / 2 - 2);
    let mut out = Vec::new();
    out.push(
        ds.read_slice::<f64>(&sel![a..b, ..])?
            .iter()
            .copied()
            .collect(),
    );
    out.push(
        ds.read_slice::<f64>(&sel![a..b, 1])?
            .iter()
            .copied()
            .collect(),
    );
    let sels = [sel![0..a], sel![b..n]];
    out.push(ds.request_slices::<f64>(&sels)?.iter().copied().collect());
    let rows = usize::try_from(b - a).unwrap_or(0);
    let mut buf = vec![0.0f64; rows * 3];
    ds.read_into(&sel![a..b, ..], &mut buf)?;
    out.push(buf);
    let mut buf = vec![0.0f64; usize::try_from(n - b + a).unwrap_or(0) * 3];
    ds.request_slices_into(&sels, &mut buf)?;
    out.push(buf);
    Ok(out)
}

#[test]
fn hyperslab_and_multi_slice_reads() {
    let s = Served::new(202);
    let truth = open_file(s.direct(), &s.files[0], no_inline()).unwrap();
    let faulty = s.faulty();
    let t0 = Instant::now();
    let mut tally = Tally::default();
    for i in 0..READS {
        let want = slice_reads(&truth, i).unwrap();
        let got = open_file(Arc::clone(&faulty), &s.files[0], no_inline())
            .and_then(|f| slice_reads(&f, i));
        tally.record(got, &want);
    }
    tally.check("hyperslabs and multi-slices", &s.proxy, t0);
}

/// Fancy reads: unsorted indices with repeats and negatives, and a mask.
fn fancy_reads(file: &File, i: usize) -> hdfstream::Result<(Vec<f64>, Vec<u64>, Vec<f32>)> {
    let g = file.group("PartType0")?;
    let coords = g.dataset("Coordinates")?;
    let n = coords.len()? as i64;
    let idx: Vec<i64> = (0..40)
        .map(|k| ((k * 7919 + i as i64 * 104_729) % n) - if k % 5 == 0 { n } else { 0 })
        .collect();
    let c = coords.read_fancy::<f64>(&idx, &Selection::all())?;
    let ids = g.dataset("ParticleIDs")?;
    let mask: Vec<bool> = (0..ids.len()?)
        .map(|r| (r as usize + i).is_multiple_of(7))
        .collect();
    let p = ids.read_fancy::<u64>(&mask, &Selection::all())?;
    let masses = g
        .dataset("Masses")?
        .read_fancy::<f32>(&idx, &Selection::all())?;
    Ok((
        c.iter().copied().collect(),
        p.iter().copied().collect(),
        masses.iter().copied().collect(),
    ))
}

#[test]
fn fancy_index_reads() {
    let s = Served::new(303);
    let truth = open_file(s.direct(), &s.files[1], no_inline()).unwrap();
    let faulty = s.faulty();
    let t0 = Instant::now();
    let mut tally = Tally::default();
    for i in 0..READS {
        let want = fancy_reads(&truth, i).unwrap();
        let got = open_file(Arc::clone(&faulty), &s.files[1], no_inline())
            .and_then(|f| fancy_reads(&f, i));
        tally.record(got, &want);
    }
    tally.check("fancy indexing", &s.proxy, t0);
}

/// Everything the metadata of a file says: its entry, every object below the root with its
/// type, shape, attributes and inlined contents.
fn file_fingerprint(file: &File) -> hdfstream::Result<String> {
    let mut out = format!(
        "{} {} {} {}\n",
        file.path(),
        file.size(),
        file.last_modified_ms(),
        file.media_type()
    );
    let root = file.root()?;
    out.push_str(&format!("/ {:?}\n", root.attrs()));
    let mut items = Vec::new();
    root.visit_items(|path, obj| {
        items.push(match obj {
            Object::Group(g) => format!("G {path} {:?} {:?}", g.keys(), g.attrs()),
            Object::Dataset(d) => format!(
                "D {path} {} {:?} {:?} {:?}",
                d.dtype(),
                d.shape(),
                d.attrs(),
                d.inline_data()
            ),
        })
    })?;
    out.push_str(&items.join("\n"));
    Ok(out)
}

/// The root listing: names, sizes and dates.
fn root_fingerprint(backend: Arc<dyn Backend>) -> hdfstream::Result<String> {
    match backend.request_path("")? {
        PathInfo::Directory(d) => Ok(format!("{d:?}")),
        PathInfo::File(f) => Ok(format!("file {f:?}")),
    }
}

#[test]
fn metadata_reads() {
    let s = Served::new(404);
    let want_root = root_fingerprint(s.direct()).unwrap();
    let want: Vec<String> = s
        .files
        .iter()
        .map(|f| {
            file_fingerprint(&open_file(s.direct(), f, OpenOptions::default()).unwrap()).unwrap()
        })
        .collect();
    // Shallow opening: groups are fetched one request at a time as they are visited.
    let shallow = OpenOptions::default().max_depth(0);
    let conn = s.faulty_conn();
    let faulty: Arc<dyn Backend> = Arc::new(conn.clone());
    let t0 = Instant::now();
    let mut tally = Tally::default();
    for i in 0..READS {
        let f = i % s.files.len();
        tally.record(root_fingerprint(Arc::clone(&faulty)), &want_root);
        let got = open_file(Arc::clone(&faulty), &s.files[f], OpenOptions::default())
            .and_then(|file| file_fingerprint(&file));
        tally.record(got, &want[f]);
        let got = open_file(Arc::clone(&faulty), &s.files[f], shallow)
            .and_then(|file| file_fingerprint(&file));
        tally.record(got, &want[f]);
        // The connection probe (`GET <base>/msgpack/`) is a metadata request of its own.
        tally.record(conn.probe(), &());
    }
    // Building a connection probes the server too.
    for _ in 0..3 {
        let got = ClientBuilder::new()
            .with_url(s.proxy.base_url())
            .with_retry(fast_retry())
            .with_progress(false)
            .build()
            .map(|_| ());
        tally.record(got, &());
    }
    tally.check("metadata", &s.proxy, t0);
}

#[test]
fn downloads() {
    let s = Served::new(505);
    let out_dir = tempfile::tempdir().expect("temp dir");
    let conn = s.faulty_conn();
    let t0 = Instant::now();
    let mut tally = Tally::default();
    // Downloads are cheap and only transport faults apply to them: more of them.
    for i in 0..3 * READS {
        let vpath = &s.files[i % s.files.len()];
        let want = std::fs::read(s.dir.path().join(vpath)).expect("original");
        let dest = out_dir.path().join(format!("copy{i}.hdf5"));
        match conn.download_to_path(vpath, &dest) {
            Ok(n) => {
                let got = std::fs::read(&dest).expect("downloaded file");
                tally.record(Ok::<_, Error>((n, got)), &(want.len() as u64, want));
                std::fs::remove_file(&dest).expect("remove");
            }
            Err(e) => {
                // A failed download leaves nothing behind: no file, no temporary.
                if dest.exists() {
                    tally.record(
                        Ok::<_, Error>(format!("{} exists", dest.display())),
                        &String::new(),
                    );
                } else {
                    tally.error(e.to_string());
                }
            }
        }
        assert_eq!(leftovers(out_dir.path()), Vec::<String>::new());
    }
    tally.check("download", &s.proxy, t0);
    let c = s.proxy.counts();
    let broken = [Fault::CutBody, Fault::Reset, Fault::Stall]
        .iter()
        .filter_map(|k| c.by_kind.get(k))
        .sum::<u64>();
    assert!(broken > 0, "no download body was broken off: {c}");
}

/// Files in `dir` (temporary files left behind show up here).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[cfg(feature = "arrow")]
mod arrow_paths {
    use super::*;
    use arrow::record_batch::RecordBatch;
    use hdfstream::arrow::GroupReaderBuilder;

    /// The whole `PartType0` table of every file, in batches of 1000 rows, as one batch.
    pub(super) fn read_table(
        backend: Arc<dyn Backend>,
        glob: &str,
    ) -> hdfstream::Result<RecordBatch> {
        let reader = GroupReaderBuilder::open_with(backend, glob, "PartType0", no_inline())?
            .with_batch_size(1000)
            .build()?;
        let schema = arrow::record_batch::RecordBatchReader::schema(&reader);
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal {
                reason: e.to_string(),
            })?;
        arrow::compute::concat_batches(&schema, &batches).map_err(|e| Error::Internal {
            reason: e.to_string(),
        })
    }

    #[test]
    fn arrow_record_batch_reader() {
        let s = Served::new(606);
        let want = read_table(s.direct(), &s.glob()).unwrap();
        assert!(want.num_rows() > 0);
        let faulty = s.faulty();
        let t0 = Instant::now();
        let mut tally = Tally::default();
        for _ in 0..READS {
            tally.record(read_table(Arc::clone(&faulty), &s.glob()), &want);
        }
        tally.check("arrow reader", &s.proxy, t0);
    }
}

#[cfg(feature = "polars")]
mod polars_paths {
    use super::*;
    use hdfstream::polars::{ScanArgsHdfstream, scan_hdfstream_with};
    use polars::prelude::*;

    /// A projection and a filter on the whole multi-file table, and the table itself.
    fn query(backend: Arc<dyn Backend>, glob: &str) -> PolarsResult<(DataFrame, DataFrame)> {
        let lf = scan_hdfstream_with(
            Arc::clone(&backend),
            glob,
            "PartType0",
            ScanArgsHdfstream::default(),
        )?;
        let all = lf.collect()?;
        let lf = scan_hdfstream_with(backend, glob, "PartType0", ScanArgsHdfstream::default())?;
        let some = lf
            .filter(
                col("row_index")
                    .lt(lit(1500))
                    .and(col("Masses").gt(lit(0.0f32))),
            )
            .select([col("ParticleIDs"), col("Coordinates"), col("Masses")])
            .collect()?;
        Ok((all, some))
    }

    /// Frames compared by value (Polars' `==` on frames is element-wise).
    #[derive(Debug)]
    struct Frames((DataFrame, DataFrame));

    impl PartialEq for Frames {
        fn eq(&self, other: &Self) -> bool {
            let ((a, b), (c, d)) = (&self.0, &other.0);
            a.schema() == c.schema()
                && b.schema() == d.schema()
                && a.equals_missing(c)
                && b.equals_missing(d)
        }
    }

    #[test]
    fn polars_scan() {
        let s = Served::new(707);
        let want = Frames(query(s.direct(), &s.glob()).unwrap());
        assert!(want.0.0.height() > 0 && want.0.1.height() > 0);
        let faulty = s.faulty();
        let t0 = Instant::now();
        let mut tally = Tally::default();
        for _ in 0..READS {
            tally.record(query(Arc::clone(&faulty), &s.glob()).map(Frames), &want);
        }
        tally.check("polars scan", &s.proxy, t0);
    }
}

#[cfg(feature = "parquet")]
mod export_paths {
    use super::*;
    use arrow::record_batch::RecordBatch;
    use hdfstream::arrow::GroupReaderBuilder;
    use hdfstream::export::{ExportOptions, to_parquet};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::path::PathBuf;

    /// The columns of a Parquet file.
    fn read_back(path: &Path) -> Vec<arrow::array::ArrayRef> {
        let file = std::fs::File::open(path).expect("exported file");
        let b = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
        let schema = Arc::clone(b.schema());
        let batches: Vec<RecordBatch> = b
            .build()
            .expect("reader")
            .map(|b| b.expect("batch"))
            .collect();
        arrow::compute::concat_batches(&schema, &batches)
            .expect("concat")
            .columns()
            .to_vec()
    }

    #[test]
    fn parquet_export() {
        let s = Served::new(808);
        let out = tempfile::tempdir().expect("temp dir");
        let options = ExportOptions::default()
            .with_progress(false)
            .with_batch_size(1000);
        // The truth: the same export without the proxy.
        let direct = out.path().join("direct.parquet");
        let b =
            GroupReaderBuilder::open_with(s.direct(), &s.glob(), "PartType0", no_inline()).unwrap();
        to_parquet(b, direct.to_str().expect("utf-8"), &options).unwrap();
        let want = read_back(&direct);
        std::fs::remove_file(&direct).unwrap();
        let faulty = s.faulty();
        let t0 = Instant::now();
        let mut tally = Tally::default();
        for i in 0..READS {
            let dest: PathBuf = out.path().join(format!("gas{i}.parquet"));
            let dest_str = dest.to_str().expect("utf-8");
            let got = GroupReaderBuilder::open_with(
                Arc::clone(&faulty),
                &s.glob(),
                "PartType0",
                no_inline(),
            )
            .and_then(|b| to_parquet(b, dest_str, &options));
            match got {
                Ok(_) => tally.record(Ok::<_, Error>(read_back(&dest)), &want),
                Err(e) if !dest.exists() => tally.error(e.to_string()),
                // A failed export left a file that looks complete: as bad as wrong data.
                Err(_) => tally.record(Ok::<_, Error>(Vec::new()), &want),
            }
            let mut files = leftovers(out.path());
            files.retain(|f| !(f.starts_with("gas") && f.ends_with(".parquet")));
            assert_eq!(files, Vec::<String>::new(), "temporary files left behind");
        }
        tally.check("parquet export", &s.proxy, t0);
    }

    /// An export that fails part-way leaves nothing at the destination (nor a staging
    /// file), also after a multipart upload started.
    #[test]
    fn interrupted_export_leaves_no_file() {
        use arrow::array::Float64Array;
        use arrow::datatypes::{DataType, Field, Schema};
        use hdfstream::export::write_parquet;

        /// `left` batches of 2^18 incompressible values, then an error if `fail`.
        struct Batches {
            schema: arrow::datatypes::SchemaRef,
            left: usize,
            fail: bool,
        }
        impl Iterator for Batches {
            type Item = Result<RecordBatch, arrow::error::ArrowError>;
            fn next(&mut self) -> Option<Self::Item> {
                if self.left == 0 {
                    return self.fail.then(|| {
                        Err(arrow::error::ArrowError::ExternalError(
                            "the server went away".into(),
                        ))
                    });
                }
                self.left -= 1;
                let mut x = (self.left as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let v: Vec<f64> = (0..1 << 18)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        f64::from_bits(x >> 2)
                    })
                    .collect();
                Some(Ok(RecordBatch::try_new(
                    Arc::clone(&self.schema),
                    vec![Arc::new(Float64Array::from(v))],
                )
                .expect("batch")))
            }
        }
        impl arrow::record_batch::RecordBatchReader for Batches {
            fn schema(&self) -> arrow::datatypes::SchemaRef {
                Arc::clone(&self.schema)
            }
        }
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
        let batches = |left, fail| Batches {
            schema: Arc::clone(&schema),
            left,
            fail,
        };
        // 2 MiB row groups, 5 MiB upload parts: the third batch starts a multipart upload.
        let options = ExportOptions::default()
            .with_progress(false)
            .with_compression(hdfstream::export::ParquetCompression::None)
            .with_row_group_size(1 << 18)
            .with_upload_buffer(5 << 20);
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, path) =
            hdfstream::export::destination(dir.path().join("out.parquet").to_str().expect("utf-8"))
                .expect("local destination");
        for (left, what) in [
            (0, "before any row group"),
            (4, "after a multipart upload started"),
        ] {
            let err = write_parquet(batches(left, true), Arc::clone(&store), &path, &options)
                .expect_err("the reader fails");
            assert!(err.to_string().contains("the server went away"), "{err}");
            assert_eq!(leftovers(dir.path()), Vec::<String>::new(), "{what}");
        }
        // Without the failure the multipart upload completes: one file, nothing else.
        let summary =
            write_parquet(batches(4, false), Arc::clone(&store), &path, &options).expect("export");
        assert_eq!(summary.rows, 4 << 18);
        assert_eq!(leftovers(dir.path()), vec!["out.parquet".to_string()]);
        // A failure does not replace the complete file written before.
        write_parquet(batches(4, true), Arc::clone(&store), &path, &options).expect_err("fails");
        assert_eq!(leftovers(dir.path()), vec!["out.parquet".to_string()]);
        assert_eq!(
            std::fs::metadata(dir.path().join("out.parquet"))
                .expect("file")
                .len(),
            summary.bytes
        );

        // An object store with real multipart uploads: nothing appears either.
        let mem: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::memory::InMemory::new());
        write_parquet(batches(4, true), Arc::clone(&mem), &path, &options).expect_err("fails");
        let listed = list(&mem);
        assert!(listed.is_empty(), "{listed:?}");
    }

    /// The objects in `store`.
    fn list(store: &Arc<dyn object_store::ObjectStore>) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(store.list_with_delimiter(None))
            .expect("list")
            .objects
            .into_iter()
            .map(|m| m.location.to_string())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Single faults, one at a time, against a mock server.

/// `n` f64 values.
fn values(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 0.75 - 3.0).collect()
}

/// An ndarray body as the server writes it.
fn ndarray_body(vals: &[f64], shape: &[u64]) -> Vec<u8> {
    hdfstream_protocol::encode_array(&ArrayData::Nd(NdArray {
        dtype: F8,
        shape: shape.to_vec(),
        data: TypedBuffer::F64(vals.to_vec()),
    }))
}

const F8: Dtype = Dtype::Float {
    size: 8,
    order: ByteOrder::Little,
};

fn rows(start: u64, count: u64, cols: u64) -> SliceSpec {
    SliceSpec::new(
        vec![DimSelection::new(start, count)],
        vec![DimSelection::new(0, cols)],
    )
}

fn mock_conn(server: &MockServer, retries: usize) -> Connection {
    let mut retry = fast_retry();
    retry.max_retries = retries;
    connect(&format!("{}/hdfstream", server.url()), retry)
}

/// A mock that answers the first `bad` requests with `first` and then with `good`.
fn flaky(bad: usize, first: MockResponse, good: MockResponse) -> (MockServer, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = Arc::clone(&n);
    let server = MockServer::start(move |_| {
        if n2.fetch_add(1, Ordering::SeqCst) < bad {
            first.clone()
        } else {
            good.clone()
        }
    });
    (server, n)
}

/// A directory listing body with one file.
fn listing() -> Vec<u8> {
    use rmpv::Value;
    let file = Value::Map(vec![
        ("type".into(), "file".into()),
        ("size".into(), 1234.into()),
        ("last_modified".into(), 1_700_000_000_000i64.into()),
    ]);
    let v = Value::Map(vec![
        ("type".into(), "directory".into()),
        ("size".into(), 1234.into()),
        ("description".into(), Value::Nil),
        ("labels".into(), Value::Nil),
        ("files".into(), Value::Map(vec![("f.hdf5".into(), file)])),
        ("directories".into(), Value::Map(vec![])),
    ]);
    let mut body = Vec::new();
    rmpv::encode::write_value(&mut body, &v).expect("encode");
    body
}

#[test]
fn cut_metadata_body_is_retried() {
    let body = listing();
    let cut = MockResponse::new(200, MSGPACK, body[..body.len() / 2].to_vec())
        .framing(Framing::Truncated(body.len() - body.len() / 2));
    let (server, n) = flaky(2, cut, MockResponse::new(200, MSGPACK, body.clone()));
    let c = mock_conn(&server, 3);
    let info = c.request_path("").expect("third attempt succeeds");
    assert!(matches!(info, PathInfo::Directory(_)), "{info:?}");
    assert_eq!(n.load(Ordering::SeqCst), 3);
    // A body that ends cleanly but early (Content-Length matches the cut) is retried too.
    let short = MockResponse::new(200, MSGPACK, body[..body.len() - 3].to_vec());
    let (server, n) = flaky(1, short, MockResponse::new(200, MSGPACK, body));
    let c = mock_conn(&server, 3);
    assert_eq!(c.request_path("").expect("retried"), info);
    assert_eq!(n.load(Ordering::SeqCst), 2);
}

#[test]
fn truncated_ndarray_body_is_retried() {
    let vals = values(300);
    let body = ndarray_body(&vals, &[100, 3]);
    for bad in [
        // Cut in transit: fewer bytes than Content-Length.
        MockResponse::new(200, MSGPACK, body[..body.len() - 100].to_vec())
            .framing(Framing::Truncated(100)),
        // Ended cleanly: fewer bytes than the ndarray header announced.
        MockResponse::new(200, MSGPACK, body[..body.len() - 100].to_vec()),
        // Cut inside the header.
        MockResponse::new(200, MSGPACK, body[..20].to_vec()),
    ] {
        let (server, n) = flaky(2, bad, MockResponse::new(200, MSGPACK, body.clone()));
        let c = mock_conn(&server, 2);
        let a = c
            .request_slice_typed("f", "/d", &rows(0, 100, 3), &F8)
            .expect("retried");
        assert_eq!(
            a,
            ArrayData::Nd(NdArray {
                dtype: F8,
                shape: vec![100, 3],
                data: TypedBuffer::F64(vals.clone())
            })
        );
        let mut dest = vec![0u8; 2400];
        c.request_slice_into("f", "/d", &rows(0, 100, 3), &F8, &mut dest)
            .expect("retried");
        assert!(
            dest.chunks_exact(8)
                .zip(&vals)
                .all(|(b, v)| b == v.to_le_bytes())
        );
        assert_eq!(
            n.load(Ordering::SeqCst),
            4,
            "2 failures and a success, then one more success"
        );
    }
}

/// Every byte of the header region flipped with several masks: the read is exact (after a
/// retry) or a clean error without retries — never other values.
#[test]
fn flipped_header_byte_never_yields_wrong_data() {
    let vals = values(12);
    let good = ndarray_body(&vals, &[4, 3]);
    let offsets = flippable(&good);
    assert!(offsets.len() > 40, "the whole header: {offsets:?}");
    let want = ArrayData::Nd(NdArray {
        dtype: F8,
        shape: vec![4, 3],
        data: TypedBuffer::F64(vals.clone()),
    });
    let spec = rows(0, 4, 3);
    // One server answering with whatever body is current.
    let current = Arc::new(std::sync::Mutex::new(good.clone()));
    let served = Arc::clone(&current);
    let server = MockServer::start(move |_| {
        let body = served.lock().expect("body lock").clone();
        MockResponse::new(200, MSGPACK, body)
    });
    let c = mock_conn(&server, 0);
    let (mut exact, mut errors) = (0, 0);
    for &at in &offsets {
        for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff, 0x5a] {
            let mut bad = good.clone();
            bad[at] ^= mask;
            *current.lock().expect("body lock") = bad;
            // Without retries: the flipped response itself is rejected or means the same.
            match c.request_slice_typed("f", "/d", &spec, &F8) {
                Ok(a) => {
                    assert_eq!(a, want, "byte {at} ^ {mask:#04x} gave other data");
                    exact += 1;
                }
                Err(e) => {
                    assert!(
                        matches!(
                            e,
                            Error::Decode { .. }
                                | Error::Incomplete { .. }
                                | Error::TypeMismatch { .. }
                        ),
                        "byte {at} ^ {mask:#04x}: {e:?}"
                    );
                    errors += 1;
                }
            }
            let mut dest = vec![0u8; 96];
            match c.request_slice_into("f", "/d", &spec, &F8, &mut dest) {
                Ok(()) => assert!(
                    dest.chunks_exact(8)
                        .zip(&vals)
                        .all(|(b, v)| b == v.to_le_bytes()),
                    "byte {at} ^ {mask:#04x} gave other data in the buffer"
                ),
                Err(e) => assert!(
                    matches!(
                        e,
                        Error::Decode { .. }
                            | Error::Incomplete { .. }
                            | Error::TypeMismatch { .. }
                    ),
                    "byte {at} ^ {mask:#04x}: {e:?}"
                ),
            }
        }
    }
    // With one retry, a flip in the first response is repaired by the second.
    let (mut retried_exact, mut retries) = (0, 0);
    for &at in &offsets {
        let mut bad = good.clone();
        bad[at] ^= 0x04;
        let (server, _) = flaky(
            1,
            MockResponse::new(200, MSGPACK, bad),
            MockResponse::new(200, MSGPACK, good.clone()),
        );
        retries += 1;
        let got = mock_conn(&server, 1).request_slice_typed("f", "/d", &spec, &F8);
        if got.ok().as_ref() == Some(&want) {
            retried_exact += 1;
        }
    }
    println!(
        "flipped header bytes: {} offsets x 10 masks: {exact} still exact, {errors} rejected; \
         with one retry {retried_exact}/{retries} exact",
        offsets.len()
    );
    assert!(errors > 0);
    assert_eq!(retried_exact, retries);
}

/// The same for metadata: a flipped marker byte is rejected or decodes to the same listing.
#[test]
fn flipped_metadata_marker_never_yields_wrong_data() {
    let good = listing();
    let want = hdfstream_protocol::decode_path(&good).expect("valid listing");
    let offsets = flippable(&good);
    assert!(offsets.len() >= 8, "{offsets:?}");
    let current = Arc::new(std::sync::Mutex::new(good.clone()));
    let served = Arc::clone(&current);
    let server = MockServer::start(move |_| {
        let body = served.lock().expect("body lock").clone();
        MockResponse::new(200, MSGPACK, body)
    });
    let c = mock_conn(&server, 0);
    let mut rejected = 0;
    for &at in &offsets {
        for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[at] ^= mask;
            *current.lock().expect("body lock") = bad;
            match c.request_path("") {
                Ok(info) => {
                    assert_eq!(info, want, "marker {at} ^ {mask:#04x} gave another listing")
                }
                Err(e) => {
                    assert!(
                        matches!(e, Error::Decode { .. } | Error::Incomplete { .. }),
                        "{e:?}"
                    );
                    rejected += 1;
                }
            }
        }
    }
    assert!(rejected > 0);
}

#[test]
fn exhausted_budget_error_names_url_object_bytes_and_attempts() {
    let body = ndarray_body(&values(300), &[100, 3]);
    let total = body.len();
    let server = MockServer::start(move |_| {
        MockResponse::new(200, MSGPACK, body[..1000].to_vec())
            .framing(Framing::Truncated(total - 1000))
    });
    let c = mock_conn(&server, 2);
    let err = c
        .request_slice_typed("dir/f.hdf5", "/PartType0/Masses", &rows(0, 100, 3), &F8)
        .expect_err("always cut");
    let text = err.to_string();
    for needle in [
        format!("{}/hdfstream/msgpack/dir/f.hdf5", server.url()),
        "dir/f.hdf5:/PartType0/Masses".to_string(),
        format!("received 1000 of {total} bytes"),
        "3 attempts".to_string(),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in {text:?}");
    }
    assert_eq!(err.attempts(), Some(3));
    assert_eq!(server.requests().len(), 3);
    // A 503 that never ends says how often it was tried.
    let server =
        MockServer::start(|_| MockResponse::new(503, "text/html", b"<h1>busy</h1>".to_vec()));
    let err = mock_conn(&server, 2).request_path("x").expect_err("503");
    assert!(err.to_string().contains("3 attempts"), "{err}");
}

#[test]
fn download_never_leaves_a_short_file() {
    let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("copy.bin");
    // Always cut: an error, and nothing at the destination.
    let cut = data[..120_000].to_vec();
    let server = MockServer::start(move |_| {
        MockResponse::new(200, "application/octet-stream", cut.clone())
            .framing(Framing::Truncated(80_000))
    });
    let err = mock_conn(&server, 2)
        .download_to_path("f.bin", &dest)
        .expect_err("always cut");
    assert!(
        matches!(
            err,
            Error::Incomplete {
                received: 120_000,
                expected: Some(200_000),
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    // An existing file is left as it was.
    std::fs::write(&dest, b"old").expect("write");
    mock_conn(&server, 0)
        .download_to_path("f.bin", &dest)
        .expect_err("cut");
    assert_eq!(std::fs::read(&dest).expect("read"), b"old");
    // Cut twice, then whole: the file is exact, written from scratch each time.
    let (server, n) = flaky(
        2,
        MockResponse::new(200, "application/octet-stream", data[..70_000].to_vec())
            .framing(Framing::Truncated(130_000)),
        MockResponse::new(200, "application/octet-stream", data.clone()),
    );
    let written = mock_conn(&server, 3)
        .download_to_path("f.bin", &dest)
        .expect("third attempt");
    assert_eq!(written, data.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert_eq!(leftovers(dir.path()), vec!["copy.bin".to_string()]);
}

#[test]
fn proxy_flips_only_header_bytes_and_markers() {
    let mut b = hdfstream_protocol::NDARRAY_PREFIX.to_vec();
    b.extend_from_slice(&[0xa4, b'd', b'a', b't', b'a', 0x91, 0xc4, 3, 1, 2, 3]);
    assert_eq!(flippable(&b), (0..b.len() - 3).collect::<Vec<_>>());
    // {"type": "file", "size": 7, "labels": nil}: the map and the strings' markers; not the
    // values that are one byte long (the fixint, nil).
    let mut m = vec![0x82, 0xa4];
    m.extend_from_slice(b"type");
    m.push(0xa4);
    m.extend_from_slice(b"file");
    m.push(0xa4);
    m.extend_from_slice(b"size");
    m.push(0x07);
    m.push(0xa6);
    m.extend_from_slice(b"labels");
    m.push(0xc0);
    m[0] = 0x83;
    assert_eq!(flippable(&m), vec![0, 1, 6, 11, 17]);
    // Every kind can be chosen alone.
    let _ = FaultConfig::new(1.0, 1).only(&[Fault::Reset]);
}

#[test]
fn a_forwarded_read_starts_over_with_each_attempt() {
    let vals = values(3000);
    let body = ndarray_body(&vals, &[1000, 3]);
    let want: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    // Cut in transit after part of the payload was handed on, then complete.
    let cut = MockResponse::new(200, MSGPACK, body[..body.len() - 5000].to_vec())
        .framing(Framing::Truncated(5000));
    let (server, n) = flaky(2, cut, MockResponse::new(200, MSGPACK, body.clone()));
    let c = mock_conn(&server, 3);
    let mut out: Vec<u8> = Vec::new();
    let mut attempts = Vec::new();
    let header = c
        .request_slice_forward(
            "f",
            "/d",
            &rows(0, 1000, 3),
            &F8,
            4096,
            &mut |attempt, _, bytes| {
                if attempts.last() != Some(&attempt) {
                    attempts.push(attempt);
                    out.clear();
                }
                out.extend_from_slice(bytes);
                Ok(())
            },
        )
        .expect("third attempt succeeds");
    assert_eq!(header.shape, [1000, 3]);
    assert_eq!(attempts, [1, 2, 3], "each attempt started over");
    assert_eq!(out, want);
    assert_eq!(n.load(Ordering::SeqCst), 3);

    // A consumer that cannot start over ends the read with its error, not retried.
    let cut = MockResponse::new(200, MSGPACK, body[..body.len() - 5000].to_vec())
        .framing(Framing::Truncated(5000));
    let (server, n) = flaky(1, cut, MockResponse::new(200, MSGPACK, body.clone()));
    let c = mock_conn(&server, 3);
    let e = c
        .request_slice_forward(
            "f",
            "/d",
            &rows(0, 1000, 3),
            &F8,
            4096,
            &mut |attempt, _, _| {
                if attempt > 1 {
                    Err(std::io::Error::other("cannot rewind"))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
    assert!(matches!(e, hdfstream::Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("cannot rewind"), "{e}");
    assert_eq!(n.load(Ordering::SeqCst), 2);

    // A response of another shape is refused before any byte is handed on.
    let other = ndarray_body(&vals[..300], &[100, 3]);
    let (server, _) = flaky(
        0,
        MockResponse::new(200, MSGPACK, other.clone()),
        MockResponse::new(200, MSGPACK, other),
    );
    let c = mock_conn(&server, 1);
    let mut handed = 0usize;
    let e = c
        .request_slice_forward("f", "/d", &rows(0, 1000, 3), &F8, 64, &mut |_, _, b| {
            handed += b.len();
            Ok(())
        })
        .unwrap_err();
    assert_eq!(handed, 0, "{e}");
}
