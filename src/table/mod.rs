//! The table core: one HDF5 group over one file or a multi-file glob seen as a table, and
//! what every engine adapter (Polars, Arrow, export, CLI) shares about it.
//!
//! This module holds no engine types. It provides:
//!
//! * [`TablePlan`]: the columns (datasets whose first dimension is the row count, mapped to
//!   an engine's types by the adapter), the files and their row counts, with the cross-file
//!   checks;
//! * [`Region`] / [`RegionBox`]: spatial queries (unions of periodic boxes);
//! * [`CellIndex`] and [`TableCells`]: the SWIFT `Cells/` index of every file of a table and
//!   the file-local row ranges of the cells a region touches (the selection swiftsimio makes);
//! * [`exact_rows`]: the rows of a candidate set whose positions lie in a region, fetched in
//!   bounded pieces;
//! * [`fetch_column`]: the one column fetcher (one multi-slice request per column, file and
//!   2^24 runs, numbers streamed into the vector an engine adopts, one string decoder);
//! * [`late_fetch_pays`]: whether fetching the other columns only for the rows a filter kept
//!   moves fewer bytes (late materialization).

mod cells;
pub(crate) mod fetch;
mod late;
mod location;
pub(crate) mod parallel;
mod plan;
mod region;

use std::sync::Arc;

use hdfstream_protocol::{DimSelection, MAX_SLICES, Member, SliceSpec};

pub use cells::{CellBounds, CellIndex, DEFAULT_PADDING};
pub use fetch::{ColumnData, ColumnRequest, fetch_column};
pub use late::{RUN_COST_BYTES, VLEN_STRING_BYTES, late_fetch_pays, row_bytes};
pub use location::{Location, parse_location};
pub use plan::{
    GroupListing, OnUnsupported, PlanColumn, PlanOptions, TablePlan, group_path, list_group,
};
pub use region::{AxisRange, Bounds, Region, RegionBox};

use crate::remote::{Attrs, Backend};
use crate::selection::RowRanges;
use crate::{Error, Result};
use parallel::run_parallel;

/// Metadata requests opening a table keeps in flight at once (one per file: its group, its
/// `Header`): the server's default per-client limit, so a 64-file glob opens in 8 round trips.
pub const METADATA_CONCURRENCY: usize = 8;

/// Default name of the position dataset a region applies to (SWIFT and EAGLE).
pub const DEFAULT_POSITION_COLUMN: &str = "Coordinates";

/// Rows of positions fetched per request when filtering a region exactly.
const EXACT_PIECE_ROWS: u64 = 1 << 20;

/// One file of a table for region planning: its virtual path and row count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Virtual path on the server.
    pub vpath: String,
    /// Rows of the table's group in this file.
    pub rows: u64,
}

/// The cell index that serves one file of a table.
#[derive(Debug, Clone)]
struct FileCells {
    /// Periodic box side (`Header/BoxSize`).
    box_size: [f64; 3],
    /// The index and the file number to select cells of, or `None` without a usable index.
    index: Option<(Arc<CellIndex>, Option<i64>)>,
}

/// The `Cells/` indexes of every file of a table, loaded once (metadata only).
#[derive(Debug, Clone)]
pub struct TableCells {
    files: Vec<FileCells>,
    ptype: String,
}

/// What a region selects in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSelection {
    /// File-local rows of the touched cells; `None` when the file has no usable `Cells/`
    /// index (every row is a candidate and the positions decide).
    pub rows: Option<RowRanges>,
    /// Cells of this file the region touches.
    pub cells_kept: usize,
    /// Cells of this file.
    pub cells_total: usize,
    /// Periodic box side of the file.
    pub box_size: [f64; 3],
}

/// What a region selects in a table, file by file.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionSelection {
    /// One entry per file, in table order.
    pub files: Vec<FileSelection>,
}

impl RegionSelection {
    /// Cells kept over all files.
    pub fn cells_kept(&self) -> usize {
        self.files.iter().map(|f| f.cells_kept).sum()
    }

    /// Cells over all files.
    pub fn cells_total(&self) -> usize {
        self.files.iter().map(|f| f.cells_total).sum()
    }

    /// True when every file had a usable cell index.
    pub fn is_pruned(&self) -> bool {
        self.files.iter().all(|f| f.rows.is_some())
    }

    /// The selected rows as global row ranges of the table (files without an index
    /// contribute all their rows).
    pub fn global_rows(&self, files: &[TableFile]) -> RowRanges {
        let all: Vec<RowRanges> = files
            .iter()
            .map(|f| RowRanges::from_ranges(std::iter::once(0..f.rows)))
            .collect();
        RowRanges::join_files(
            self.files
                .iter()
                .zip(files)
                .zip(&all)
                .map(|((sel, f), all)| (f.rows, sel.rows.as_ref().unwrap_or(all))),
        )
    }
}

/// The particle type a group path names (its last component, e.g. `PartType0`).
fn ptype_of(group: &str) -> &str {
    group
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// `Header/BoxSize` and `Header/ThisFile` of a file.
fn header(backend: &dyn Backend, vpath: &str) -> Result<([f64; 3], Option<i64>)> {
    let attrs = match backend.request_object(vpath, "/Header", 0, 0)? {
        Member::Group(g) => Attrs::from_wire(g.attributes),
        _ => {
            return Err(Error::UnexpectedResponse {
                url: vpath.to_owned(),
                reason: "/Header is not a group".into(),
            });
        }
    };
    let size = attrs
        .get("BoxSize")
        .and_then(|v| v.to_vec::<f64>().ok())
        .and_then(|v| match v.as_slice() {
            [x] => Some([*x; 3]),
            [x, y, z] => Some([*x, *y, *z]),
            _ => None,
        })
        .ok_or_else(|| Error::UnexpectedResponse {
            url: vpath.to_owned(),
            reason: "Header/BoxSize is missing or not 1 or 3 numbers (needed for a region)".into(),
        })?;
    let this = attrs.get("ThisFile").and_then(|v| {
        v.as_i64()
            .or_else(|| v.to_vec::<i64>().ok()?.first().copied())
    });
    Ok((size, this))
}

impl TableCells {
    /// Loads the cell index of `group`'s particle type for every file: the first file's
    /// index serves every file it describes (SWIFT writes the whole index into each file of
    /// a snapshot); a file it does not describe is served by its own index. A file whose
    /// index does not account for its rows gets none (and a warning). Headers are asked
    /// for `concurrency` (at least [`METADATA_CONCURRENCY`]) files at a time.
    pub fn load(
        backend: &dyn Backend,
        files: &[TableFile],
        group: &str,
        concurrency: usize,
    ) -> Result<Self> {
        let ptype = ptype_of(group).to_owned();
        let fan_out = concurrency.max(METADATA_CONCURRENCY);
        let headers = run_parallel(files.len(), fan_out, |i| match files.get(i) {
            Some(f) => header(backend, &f.vpath),
            None => Err(Error::InvalidSelection {
                reason: "file index out of range".into(),
            }),
        })?;
        let first = match files.first() {
            Some(f) => CellIndex::load(backend, &f.vpath, &ptype)?.map(Arc::new),
            None => None,
        };
        if first.is_none() {
            tracing::info!(
                group,
                "no Cells/ index for this particle type: regions are applied by filtering the \
                 positions of every row"
            );
        }
        let out = run_parallel(files.len(), concurrency, |i| {
            let (Some(f), Some(&(box_size, this_file))) = (files.get(i), headers.get(i)) else {
                return Err(Error::InvalidSelection {
                    reason: "file index out of range".into(),
                });
            };
            let Some(first) = &first else {
                return Ok(FileCells {
                    box_size,
                    index: None,
                });
            };
            let number = if i == 0 { first.own_file() } else { this_file };
            let fits = |idx: &CellIndex, n: Option<i64>| {
                (files.len() == 1 || n.is_some()) && idx.rows_in_file(n) == f.rows
            };
            let index = if fits(first, number) {
                Some((first.clone(), number))
            } else {
                match CellIndex::load(backend, &f.vpath, &ptype)? {
                    Some(own) if fits(&own, own.own_file()) => {
                        let n = own.own_file();
                        Some((Arc::new(own), n))
                    }
                    _ => {
                        tracing::warn!(
                            file = f.vpath,
                            rows = f.rows,
                            "the Cells/ index does not account for this file's rows: its \
                             region rows come from filtering positions"
                        );
                        None
                    }
                }
            };
            Ok(FileCells { box_size, index })
        })?;
        Ok(Self { files: out, ptype })
    }

    /// The particle type the index was read for.
    pub fn ptype(&self) -> &str {
        &self.ptype
    }

    /// True when at least one file has a usable index.
    pub fn has_index(&self) -> bool {
        self.files.iter().any(|f| f.index.is_some())
    }

    /// Periodic box side of each file.
    pub fn box_sizes(&self) -> Vec<[f64; 3]> {
        self.files.iter().map(|f| f.box_size).collect()
    }

    /// The cells and rows `region` touches in every file; `padding` (in cell sizes) widens
    /// cells only in files without `MinPositions`/`MaxPositions`.
    pub fn select(&self, region: &Region, padding: f64) -> Result<RegionSelection> {
        for f in &self.files {
            region.windows(f.box_size)?;
        }
        self.select_with(|idx| idx.select(region, padding))
    }

    /// The cells and rows that may hold positions within any of `bounds` (a filter on raw
    /// positions), with `padding` as for [`select`](Self::select).
    pub fn select_bounds(&self, bounds: &[Bounds], padding: f64) -> RegionSelection {
        let keep =
            |idx: &CellIndex| Ok::<_, std::convert::Infallible>(idx.select_bounds(bounds, padding));
        match self.select_with(keep) {
            Ok(sel) => sel,
            Err(never) => match never {},
        }
    }

    fn select_with<E>(
        &self,
        keep_of: impl Fn(&CellIndex) -> std::result::Result<Vec<bool>, E>,
    ) -> std::result::Result<RegionSelection, E> {
        // Files sharing one index share its selection.
        let mut cache: Vec<(*const CellIndex, Vec<bool>)> = Vec::new();
        let mut files = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let Some((idx, number)) = &f.index else {
                files.push(FileSelection {
                    rows: None,
                    cells_kept: 0,
                    cells_total: 0,
                    box_size: f.box_size,
                });
                continue;
            };
            let key = Arc::as_ptr(idx);
            let keep = match cache.iter().find(|(k, _)| *k == key) {
                Some((_, keep)) => keep.clone(),
                None => {
                    let keep = keep_of(idx)?;
                    cache.push((key, keep.clone()));
                    keep
                }
            };
            let mine: Vec<usize> = (0..idx.len()).filter(|&c| idx.holds(c, *number)).collect();
            files.push(FileSelection {
                rows: Some(idx.rows(&keep, *number)),
                cells_kept: mine.iter().filter(|&&c| keep.get(c) == Some(&true)).count(),
                cells_total: mine.len(),
                box_size: f.box_size,
            });
        }
        Ok(RegionSelection { files })
    }
}

/// The global rows a region selects in a table, with what it cost to find them.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionRows {
    /// Global row ranges (the touched cells' rows, or the rows inside the region).
    pub rows: RowRanges,
    /// Cells the region touches.
    pub cells_kept: usize,
    /// Cells of the table's files.
    pub cells_total: usize,
    /// Position bytes fetched to filter rows exactly.
    pub position_bytes: u64,
}

/// Settings of a region query that every engine adapter shares.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionQuery<'a> {
    /// The region.
    pub region: &'a Region,
    /// Keep only rows whose position lies in the region (else every row of its cells).
    pub exact: bool,
    /// Cell padding (in cell sizes) for files without `MinPositions`/`MaxPositions`.
    pub padding: f64,
    /// Absolute path of the `(N, 3)` position dataset.
    pub position: &'a str,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl TableCells {
    /// The global rows `q` selects: the rows of the touched cells, filtered by position
    /// where `q.exact` asks for it or a file has no cell index (one log line says so).
    pub fn region_rows(
        &self,
        backend: &dyn Backend,
        files: &[TableFile],
        q: &RegionQuery<'_>,
    ) -> Result<RegionRows> {
        let sel = self.select(q.region, q.padding)?;
        if !sel.is_pruned() && !q.exact {
            tracing::info!(
                position = q.position,
                "files without a Cells/ index: their region rows come from filtering positions"
            );
        }
        let local = run_parallel(files.len(), q.concurrency, |i| {
            let (Some(f), Some(fs)) = (files.get(i), sel.files.get(i)) else {
                return Err(Error::InvalidSelection {
                    reason: "region file out of range".into(),
                });
            };
            let candidates = match &fs.rows {
                Some(r) if !q.exact => return Ok((r.clone(), 0)),
                Some(r) => r.clone(),
                None => RowRanges::from_ranges(std::iter::once(0..f.rows)),
            };
            let rows = exact_rows(
                backend,
                &f.vpath,
                q.position,
                &candidates,
                q.region,
                fs.box_size,
            )?;
            Ok((rows, candidates.row_count().saturating_mul(24)))
        })?;
        let position_bytes = local.iter().map(|(_, b)| *b).fold(0, u64::saturating_add);
        let rows = RowRanges::join_files(files.iter().zip(&local).map(|(f, (r, _))| (f.rows, r)));
        Ok(RegionRows {
            rows,
            cells_kept: sel.cells_kept(),
            cells_total: sel.cells_total(),
            position_bytes,
        })
    }
}

/// The rows of `candidates` (file-local rows of `vpath`) whose position in the `(N, 3)`
/// dataset `position` lies in `region` (periodic box `box_size`), fetched in pieces of at
/// most 2^20 rows so memory stays bounded.
pub fn exact_rows(
    backend: &dyn Backend,
    vpath: &str,
    position: &str,
    candidates: &RowRanges,
    region: &Region,
    box_size: [f64; 3],
) -> Result<RowRanges> {
    let windows = region.windows(box_size)?;
    let mut runs: Vec<std::ops::Range<u64>> = Vec::new();
    let mut piece: Vec<std::ops::Range<u64>> = Vec::new();
    let mut piece_rows = 0u64;
    let flush = |piece: &mut Vec<std::ops::Range<u64>>,
                 runs: &mut Vec<std::ops::Range<u64>>|
     -> Result<()> {
        if piece.is_empty() {
            return Ok(());
        }
        let set = RowRanges::from_ranges(piece.drain(..));
        for chunk in set.chunks(MAX_SLICES) {
            let spec = SliceSpec {
                runs: chunk.to_dim_selections(),
                rest: vec![DimSelection { start: 0, count: 3 }],
            };
            let data = backend.request_slice(vpath, position, &spec)?;
            let pos = crate::remote::element::into_vec::<f64>(data)?;
            if u64::try_from(pos.len()).ok() != Some(chunk.row_count().saturating_mul(3)) {
                return Err(Error::UnexpectedResponse {
                    url: vpath.to_owned(),
                    reason: format!(
                        "{position}: {} values for {} rows × 3",
                        pos.len(),
                        chunk.row_count()
                    ),
                });
            }
            let mut p = pos.chunks_exact(3);
            for r in chunk.iter() {
                for row in r {
                    let Some(xyz) = p.next() else { break };
                    if region::contains_any(&windows, [xyz[0], xyz[1], xyz[2]], box_size) {
                        match runs.last_mut() {
                            Some(last) if last.end == row => last.end = row + 1,
                            _ => runs.push(row..row + 1),
                        }
                    }
                }
            }
        }
        Ok(())
    };
    for r in candidates.iter() {
        let mut start = r.start;
        while start < r.end {
            let take = (r.end - start).min(EXACT_PIECE_ROWS - piece_rows);
            piece.push(start..start + take);
            piece_rows += take;
            start += take;
            if piece_rows >= EXACT_PIECE_ROWS {
                flush(&mut piece, &mut runs)?;
                piece_rows = 0;
            }
        }
    }
    flush(&mut piece, &mut runs)?;
    Ok(RowRanges::from_ranges(runs))
}

/// What one query over a table read: the region's cells, the row ranges fetched and the
/// payload bytes that crossed the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanReport {
    /// Cells kept by the region or the position filter (0 without one).
    pub cells_kept: usize,
    /// Cells of the table's files (0 without a region or position filter, or without an index).
    pub cells_total: usize,
    /// Global row ranges the query fetched (before filtering).
    pub row_ranges: RowRanges,
    /// Payload bytes of the data requests (row counts × bytes per row of each column).
    pub bytes_fetched: u64,
}

impl std::fmt::Display for ScanReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cells kept: {} of {}; rows: {} in {} ranges; bytes fetched: {}",
            self.cells_kept,
            self.cells_total,
            self.row_ranges.row_count(),
            self.row_ranges.run_count(),
            self.bytes_fetched
        )?;
        for (i, r) in self.row_ranges.iter().enumerate() {
            if i == 8 {
                write!(f, " …")?;
                break;
            }
            write!(
                f,
                "{}{}..{}",
                if i == 0 { "\n  " } else { ", " },
                r.start,
                r.end
            )?;
        }
        Ok(())
    }
}
