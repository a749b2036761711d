//! Options of an hdfstream table: the same knobs, with the same names, as the Polars
//! connector's `ScanArgsHdfstream`.

use hdfstream::table::{DEFAULT_PADDING, DEFAULT_POSITION_COLUMN, Region};

use crate::{HdfstreamError, Result};

/// Default name of the virtual row-index column.
pub const DEFAULT_ROW_INDEX: &str = "row_index";
/// Default rows per record batch.
pub const DEFAULT_BATCH_SIZE: usize = 1 << 16;
/// Default column requests in flight at once per partition.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default smallest number of rows worth a partition of its own.
pub const DEFAULT_MIN_PARTITION_ROWS: u64 = 1 << 18;

/// How a remote group is read as a DataFusion table.
#[derive(Debug, Clone, PartialEq)]
pub struct HdfstreamOptions {
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) row_index: Option<(String, u64)>,
    pub(crate) file_paths: Option<String>,
    pub(crate) region: Option<Region>,
    pub(crate) region_exact: bool,
    pub(crate) pruning: bool,
    pub(crate) cell_padding: f64,
    pub(crate) position_column: String,
    pub(crate) batch_size: usize,
    pub(crate) concurrency: usize,
    pub(crate) min_partition_rows: u64,
    pub(crate) boolean_columns: Vec<String>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) distributed: bool,
}

impl Default for HdfstreamOptions {
    fn default() -> Self {
        Self {
            columns: None,
            row_index: Some((DEFAULT_ROW_INDEX.to_owned(), 0)),
            file_paths: None,
            region: None,
            region_exact: false,
            pruning: true,
            cell_padding: DEFAULT_PADDING,
            position_column: DEFAULT_POSITION_COLUMN.to_owned(),
            batch_size: DEFAULT_BATCH_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            min_partition_rows: DEFAULT_MIN_PARTITION_ROWS,
            boolean_columns: Vec::new(),
            credentials: None,
            distributed: false,
        }
    }
}

impl HdfstreamOptions {
    /// Only these datasets become columns, in this order. Default: every dataset that can.
    pub fn with_columns<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The virtual `UInt64` row-index column: its name and the value of the first row.
    /// Default [`DEFAULT_ROW_INDEX`] from 0.
    pub fn with_row_index(mut self, name: impl Into<String>, offset: u64) -> Self {
        self.row_index = Some((name.into(), offset));
        self
    }

    /// No row-index column.
    pub fn without_row_index(mut self) -> Self {
        self.row_index = None;
        self
    }

    /// Adds a `Utf8` column `name` with each row's virtual file path. Default: none.
    pub fn with_include_file_paths(mut self, name: impl Into<String>) -> Self {
        self.file_paths = Some(name.into());
        self
    }

    /// Reads only the rows of the SWIFT cells `region` touches. Default: every row.
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// No region (the default).
    pub fn without_region(mut self) -> Self {
        self.region = None;
        self
    }

    /// Keeps only rows whose position lies in the region. Default: false (whole cells).
    pub fn with_region_exact(mut self, exact: bool) -> Self {
        self.region_exact = exact;
        self
    }

    /// Cell padding (in cell sizes) for files without `MinPositions`/`MaxPositions`.
    /// Default [`DEFAULT_PADDING`].
    pub fn with_cell_padding(mut self, padding: f64) -> Self {
        self.cell_padding = padding;
        self
    }

    /// The `(N, 3)` position dataset boxes apply to. Default `Coordinates`.
    pub fn with_position_column(mut self, name: impl Into<String>) -> Self {
        self.position_column = name.into();
        self
    }

    /// Ignores `Cells/` when filters bound the positions (they are then evaluated on every
    /// row). Default: pruning on.
    pub fn without_region_pruning(mut self) -> Self {
        self.pruning = false;
        self
    }

    /// Rows per record batch (0 is taken as 1). Default [`DEFAULT_BATCH_SIZE`].
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Column requests in flight at once per partition (0 is taken as 1). Default
    /// [`DEFAULT_CONCURRENCY`].
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Fewest rows a partition gets (more partitions than the session's
    /// `target_partitions` are never made). Default [`DEFAULT_MIN_PARTITION_ROWS`].
    pub fn with_min_partition_rows(mut self, rows: u64) -> Self {
        self.min_partition_rows = rows.max(1);
        self
    }

    /// 1-byte integer datasets read as `Boolean`. Default: none.
    pub fn with_boolean_columns<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.boolean_columns = names.into_iter().map(Into::into).collect();
        self
    }

    /// HTTP Basic credentials. Default: none (or the alias's from the config file).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Whether the scan takes its partitions' row ranges from a child plan, one row range
    /// list per partition, so that a distributed engine (Ballista) that hands each task
    /// some partitions of a plan hands it those rows. Filters are then not evaluated in
    /// the scan (DataFusion still applies them). Default: false.
    pub fn with_distributed(mut self, distributed: bool) -> Self {
        self.distributed = distributed;
        self
    }

    /// Every option but the credentials as `(key, value)` pairs of [`set`](Self::set),
    /// which rebuild these options (on another machine) when applied in order to the
    /// defaults.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: String| out.push((k.to_owned(), v));
        if let Some(cols) = &self.columns {
            put("columns", cols.join(","));
        }
        match &self.row_index {
            Some((name, offset)) => {
                put("row_index", name.clone());
                put("row_index_offset", offset.to_string());
            }
            None => put("row_index", String::new()),
        }
        put("file_paths", self.file_paths.clone().unwrap_or_default());
        if let Some(region) = &self.region {
            let boxes: Vec<String> = region.boxes().iter().map(ToString::to_string).collect();
            put("region", boxes.join(";"));
        }
        put("region_exact", self.region_exact.to_string());
        put("region_pruning", self.pruning.to_string());
        put("cell_padding", self.cell_padding.to_string());
        put("position_column", self.position_column.clone());
        put("batch_size", self.batch_size.to_string());
        put("concurrency", self.concurrency.to_string());
        put("min_partition_rows", self.min_partition_rows.to_string());
        put("boolean_columns", self.boolean_columns.join(","));
        put("distributed", self.distributed.to_string());
        out
    }

    /// Sets one option from its SQL name (`OPTIONS (...)` of `CREATE EXTERNAL TABLE`, the
    /// `key=value` arguments of `read_hdfstream`): `columns` (comma-separated), `row_index`,
    /// `row_index_offset`, `file_paths`, `region` (boxes separated by `;`),
    /// `region_exact`, `region_pruning`, `cell_padding`, `position_column`, `batch_size`,
    /// `concurrency`, `min_partition_rows`, `boolean_columns` (comma-separated),
    /// `distributed`, `user`, `password`.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self> {
        let bad = |what: &str| HdfstreamError::Option {
            key: key.to_owned(),
            reason: format!("`{value}` is not {what}"),
        };
        let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(bad("a boolean")),
        };
        match key.to_ascii_lowercase().as_str() {
            "row_index" if value.is_empty() => self.row_index = None,
            "row_index" => {
                let offset = self.row_index.as_ref().map_or(0, |r| r.1);
                self.row_index = Some((value.to_owned(), offset));
            }
            "row_index_offset" => {
                let offset = value.parse().map_err(|_| bad("a row number"))?;
                let name = self
                    .row_index
                    .take()
                    .map_or_else(|| DEFAULT_ROW_INDEX.to_owned(), |r| r.0);
                self.row_index = Some((name, offset));
            }
            "file_paths" if value.is_empty() => self.file_paths = None,
            "file_paths" => self.file_paths = Some(value.to_owned()),
            // An empty value is the empty union (no rows), as `to_pairs` writes it.
            "region" if value.trim().is_empty() => self.region = Some(Region::new()),
            "region" => {
                let region = Region::parse(value.split(';').map(str::trim))
                    .map_err(|e| bad(&format!("a region ({e})")))?;
                self.region = Some(region);
            }
            "columns" => {
                self.columns = Some(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "region_exact" => self.region_exact = flag(value)?,
            "region_pruning" => self.pruning = flag(value)?,
            "cell_padding" => {
                self.cell_padding = value
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| bad("a padding >= 0"))?;
            }
            "position_column" => self.position_column = value.to_owned(),
            "batch_size" => {
                let n: usize = value.parse().map_err(|_| bad("a row count"))?;
                self = self.with_batch_size(n);
            }
            "concurrency" => {
                let n: usize = value.parse().map_err(|_| bad("a count"))?;
                self = self.with_concurrency(n);
            }
            "min_partition_rows" => {
                let n: u64 = value.parse().map_err(|_| bad("a row count"))?;
                self = self.with_min_partition_rows(n);
            }
            "boolean_columns" => {
                self.boolean_columns = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "distributed" => self.distributed = flag(value)?,
            "user" => {
                let password = self.credentials.take().map(|c| c.1).unwrap_or_default();
                self.credentials = Some((value.to_owned(), password));
            }
            "password" => {
                let user = self.credentials.take().map(|c| c.0).unwrap_or_default();
                self.credentials = Some((user, value.to_owned()));
            }
            _ => {
                return Err(HdfstreamError::Option {
                    key: key.to_owned(),
                    reason: "unknown option".to_owned(),
                });
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdfstream::table::RegionBox;

    fn rebuilt(o: &HdfstreamOptions) -> HdfstreamOptions {
        o.to_pairs()
            .iter()
            .try_fold(HdfstreamOptions::default(), |acc, (k, v)| acc.set(k, v))
            .expect("the pairs apply")
    }

    #[test]
    fn pairs_rebuild_the_options_but_the_credentials() {
        let plain = HdfstreamOptions::default();
        assert_eq!(rebuilt(&plain), plain);
        let b1: RegionBox = "0.5:2.25,:,1e-3:7".parse().expect("box");
        let b2: RegionBox = "3:4,5:6,7:8".parse().expect("box");
        let full = HdfstreamOptions::default()
            .with_columns(["Masses", "Coordinates"])
            .with_row_index("rid", 17)
            .with_include_file_paths("file")
            .with_region(Region::from_box(b1).with_box(b2))
            .with_region_exact(true)
            .without_region_pruning()
            .with_cell_padding(0.125)
            .with_position_column("Pos")
            .with_batch_size(1000)
            .with_concurrency(3)
            .with_min_partition_rows(77)
            .with_boolean_columns(["Flag"])
            .with_distributed(true)
            .with_credentials("u", "secret");
        let back = rebuilt(&full);
        assert!(back.credentials.is_none());
        assert!(!format!("{:?}", full.to_pairs()).contains("secret"));
        assert_eq!(back, full.clone().without_credentials_for_test());
        let empty = HdfstreamOptions::default()
            .without_row_index()
            .with_region(Region::new());
        assert_eq!(rebuilt(&empty), empty);
    }

    impl HdfstreamOptions {
        fn without_credentials_for_test(mut self) -> Self {
            self.credentials = None;
            self
        }
    }
}
