//! The SWIFT `Cells/` index of a snapshot file and the cells (and rows) a region touches.
//!
//! SWIFT sorts the particles of each type by the top-level cell that holds them and writes,
//! per type, each cell's particle `Counts` and `OffsetsInFile` (older files: `Offsets`), the
//! file that holds it (`Files`) and, in newer versions, the bounding box of its particles
//! (`MinPositions` / `MaxPositions`). A region becomes the rows of the cells it touches:
//!
//! * a cell's extent on each axis is its nominal extent (`Centres ± size/2`) widened to
//!   `MinPositions`/`MaxPositions` where those exist; otherwise it is padded by
//!   [`DEFAULT_PADDING`] cell sizes on each side (particles drift out of their cell between
//!   two rebuilds, and without the bounding boxes only a margin can catch them);
//! * a cell is kept when, on every bounded axis, its extent or one of its periodic copies
//!   (shifted by minus one, zero or one box side) overlaps the region (strict comparisons);
//! * a union keeps the cells any of its boxes keeps.
//!
//! This is the selection swiftsimio's `mask(...).constrain_spatial(...)` makes, so the rows
//! are a superset of the particles in the region; filtering the positions of those rows
//! gives the exact answer.

use hdfstream_protocol::{DatasetInfo, DimSelection, Member, SliceSpec};

use super::region::{Bounds, Region, Window};
use crate::remote::{AttrValue, Attrs, Backend, Element};
use crate::selection::RowRanges;
use crate::{Error, Result};

/// Padding (in cell sizes, each side) of the cell extents when a file has no
/// `MinPositions`/`MaxPositions` (swiftsimio's `safe_padding` default).
pub const DEFAULT_PADDING: f64 = 0.1;

/// Datasets up to this size come inlined with the `Cells/` metadata (one round trip).
const INLINE_LIMIT: u64 = 1 << 20;

/// Per-cell bounding boxes of a type's particles: `(MinPositions, MaxPositions)`.
pub type CellBounds = (Vec<[f64; 3]>, Vec<[f64; 3]>);

/// The `Cells/` index of one file for one particle type.
#[derive(Debug, Clone, PartialEq)]
pub struct CellIndex {
    /// Periodic box side per axis (`Header/BoxSize`).
    pub box_size: [f64; 3],
    /// Cell side per axis (`Cells/Meta-data` attribute `size`).
    pub cell_size: [f64; 3],
    /// Cell centres.
    pub centres: Vec<[f64; 3]>,
    /// Particles of the type in each cell.
    pub counts: Vec<u64>,
    /// Offset of each cell's first particle within the file that holds it.
    pub offsets: Vec<u64>,
    /// The file number that holds each cell (`None`: every cell is in this file).
    pub files: Option<Vec<i64>>,
    /// Bounding boxes of each cell's particles (`MinPositions`, `MaxPositions`), if written.
    pub bounds: Option<CellBounds>,
    /// `Header/ThisFile` of the file the index was read from, if present.
    pub this_file: Option<i64>,
}

fn index_error(vpath: &str, reason: impl Into<String>) -> Error {
    Error::UnexpectedResponse {
        url: vpath.to_owned(),
        reason: format!("Cells index: {}", reason.into()),
    }
}

/// The member `name` of a described group.
fn member<'a>(members: &'a [(String, Option<Member>)], name: &str) -> Option<&'a Member> {
    members
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, m)| m.as_ref())
}

/// Reads a whole dataset as `T` (inline contents when the server sent them).
fn read_all<T: Element>(
    backend: &dyn Backend,
    vpath: &str,
    object: &str,
    d: &DatasetInfo,
) -> Result<Vec<T>> {
    let data = match &d.data {
        Some(data) => data.clone(),
        None => {
            let mut dims = d.shape.iter().map(|&n| DimSelection { start: 0, count: n });
            let spec = SliceSpec {
                runs: dims.next().into_iter().collect(),
                rest: dims.collect(),
            };
            backend.request_slice_typed(vpath, object, &spec, &d.dtype)?
        }
    };
    crate::remote::element::into_vec::<T>(data)
}

/// Rows of 3 values.
fn triples(v: Vec<f64>, vpath: &str, what: &str, n: usize) -> Result<Vec<[f64; 3]>> {
    if v.len() != n * 3 {
        return Err(index_error(
            vpath,
            format!("{what} has {} values for {n} cells × 3", v.len()),
        ));
    }
    Ok(v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// Three values from an attribute that holds one (cubic) or three.
fn attr3(attrs: &Attrs, name: &str) -> Option<[f64; 3]> {
    let v = attrs.get(name)?.to_vec::<f64>().ok()?;
    match v.as_slice() {
        [x] => Some([*x; 3]),
        [x, y, z] => Some([*x, *y, *z]),
        _ => None,
    }
}

fn attr_i64(attrs: &Attrs, name: &str) -> Option<i64> {
    attrs.get(name).and_then(AttrValue::as_i64).or_else(|| {
        attrs
            .get(name)?
            .to_vec::<i64>()
            .ok()
            .and_then(|v| v.first().copied())
    })
}

impl CellIndex {
    /// Reads the index of particle type `ptype` (a group name such as `PartType0`) from the
    /// file `vpath`; `None` when the file has no `Cells/` index for that type.
    pub fn load(backend: &dyn Backend, vpath: &str, ptype: &str) -> Result<Option<Self>> {
        let header = match backend.request_object(vpath, "/Header", 0, 0) {
            Ok(Member::Group(g)) => Attrs::from_wire(g.attributes),
            Ok(_) => return Err(index_error(vpath, "/Header is not a group")),
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let cells = match backend.request_object(vpath, "/Cells", 2, INLINE_LIMIT) {
            Ok(Member::Group(g)) => g,
            Ok(_) => return Ok(None),
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(box_size) = attr3(&header, "BoxSize") else {
            return Err(index_error(
                vpath,
                "Header/BoxSize is missing or not 1 or 3 numbers",
            ));
        };
        let this_file = attr_i64(&header, "ThisFile");
        let meta = match member(&cells.members, "Meta-data") {
            Some(Member::Group(g)) => Attrs::from_wire(g.attributes.clone()),
            _ => return Err(index_error(vpath, "Cells/Meta-data is missing")),
        };
        let Some(cell_size) = attr3(&meta, "size") else {
            return Err(index_error(
                vpath,
                "Cells/Meta-data has no `size` of 1 or 3 numbers",
            ));
        };
        // Per-type dataset `<sub>/<ptype>` of the index, if present.
        let typed = |sub: &str| -> Option<&DatasetInfo> {
            match member(&cells.members, sub) {
                Some(Member::Group(g)) => match member(&g.members, ptype) {
                    Some(Member::Dataset(d)) => Some(d),
                    _ => None,
                },
                _ => None,
            }
        };
        let offsets_group = if typed("OffsetsInFile").is_some() {
            "OffsetsInFile"
        } else {
            "Offsets"
        };
        let (Some(counts_d), Some(offsets_d)) = (typed("Counts"), typed(offsets_group)) else {
            return Ok(None);
        };
        let Some(Member::Dataset(centres_d)) = member(&cells.members, "Centres") else {
            return Err(index_error(vpath, "Cells/Centres is missing"));
        };
        let path = |sub: &str| format!("/Cells/{sub}/{ptype}");
        let counts = read_all::<i64>(backend, vpath, &path("Counts"), counts_d)?;
        let offsets = read_all::<i64>(backend, vpath, &path(offsets_group), offsets_d)?;
        let n = counts.len();
        if offsets.len() != n {
            return Err(index_error(
                vpath,
                format!("{} offsets for {n} cells", offsets.len()),
            ));
        }
        let to_u64 = |v: Vec<i64>, what: &str| -> Result<Vec<u64>> {
            v.into_iter()
                .map(|x| {
                    u64::try_from(x).map_err(|_| index_error(vpath, format!("negative {what} {x}")))
                })
                .collect()
        };
        let counts = to_u64(counts, "count")?;
        let offsets = to_u64(offsets, "offset")?;
        let centres = triples(
            read_all::<f64>(backend, vpath, "/Cells/Centres", centres_d)?,
            vpath,
            "Centres",
            n,
        )?;
        let files = match typed("Files") {
            Some(d) => {
                let f = read_all::<i64>(backend, vpath, &path("Files"), d)?;
                if f.len() != n {
                    return Err(index_error(
                        vpath,
                        format!("{} file numbers for {n} cells", f.len()),
                    ));
                }
                Some(f)
            }
            None => None,
        };
        let bounds = match (typed("MinPositions"), typed("MaxPositions")) {
            (Some(lo), Some(hi)) => {
                let lo = read_all::<f64>(backend, vpath, &path("MinPositions"), lo)?;
                let hi = read_all::<f64>(backend, vpath, &path("MaxPositions"), hi)?;
                Some((
                    triples(lo, vpath, "MinPositions", n)?,
                    triples(hi, vpath, "MaxPositions", n)?,
                ))
            }
            _ => None,
        };
        Ok(Some(Self {
            box_size,
            cell_size,
            centres,
            counts,
            offsets,
            files,
            bounds,
            this_file,
        }))
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when the index has no cell.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The extent of cell `c` on every axis: widened to its particles' bounding box, or
    /// padded by `padding` cell sizes when the file has none.
    fn extent(&self, c: usize, padding: f64) -> Option<([f64; 3], [f64; 3])> {
        let centre = self.centres.get(c)?;
        let mut lo = [0.0; 3];
        let mut hi = [0.0; 3];
        for a in 0..3 {
            let half = 0.5 * self.cell_size[a];
            match &self.bounds {
                Some((min, max)) => {
                    lo[a] = (centre[a] - half).min(min.get(c)?[a]);
                    hi[a] = (centre[a] + half).max(max.get(c)?[a]);
                }
                None => {
                    let pad = (padding + 0.5) * self.cell_size[a];
                    lo[a] = centre[a] - pad;
                    hi[a] = centre[a] + pad;
                }
            }
        }
        Some((lo, hi))
    }

    /// Which cells the region touches (see the [`table`](crate::table) module docs); `padding` applies only
    /// without `MinPositions`/`MaxPositions`.
    pub fn select(&self, region: &Region, padding: f64) -> Result<Vec<bool>> {
        let windows = region.windows(self.box_size)?;
        Ok(self.keep_where(padding, |lo, hi| {
            windows.iter().any(|w: &[Window; 3]| {
                (0..3).all(|a| w[a].overlaps(lo[a], hi[a], self.box_size[a]))
            })
        }))
    }

    /// Which cells may hold positions within any of `bounds` (the bounds of a filter on raw
    /// positions; cell extents are tested with their periodic copies).
    pub fn select_bounds(&self, bounds: &[Bounds], padding: f64) -> Vec<bool> {
        self.keep_where(padding, |lo, hi| {
            bounds.iter().any(|b| b.overlaps(lo, hi, self.box_size))
        })
    }

    fn keep_where(&self, padding: f64, f: impl Fn([f64; 3], [f64; 3]) -> bool) -> Vec<bool> {
        (0..self.len())
            .map(|c| self.extent(c, padding).is_some_and(|(lo, hi)| f(lo, hi)))
            .collect()
    }

    /// The file-local rows of the kept cells held by file number `file` (`None`: all cells).
    pub fn rows(&self, keep: &[bool], file: Option<i64>) -> RowRanges {
        RowRanges::from_ranges(
            (0..self.len())
                .filter(|&c| keep.get(c).copied().unwrap_or(false))
                .filter(|&c| self.holds(c, file))
                .filter_map(|c| {
                    let (o, n) = (self.offsets.get(c)?, self.counts.get(c)?);
                    Some(*o..o.saturating_add(*n))
                }),
        )
    }

    /// Whether cell `c` lies in file number `file`.
    pub(crate) fn holds(&self, c: usize, file: Option<i64>) -> bool {
        match (&self.files, file) {
            (Some(files), Some(f)) => files.get(c) == Some(&f),
            _ => true,
        }
    }

    /// Particles the index places in file number `file` (`None`: all).
    pub fn rows_in_file(&self, file: Option<i64>) -> u64 {
        (0..self.len())
            .filter(|&c| self.holds(c, file))
            .map(|c| self.counts.get(c).copied().unwrap_or(0))
            .sum()
    }

    /// The file number the index uses for the file it was read from: `Header/ThisFile`, or
    /// the only number in `Files`, or `None` when every cell is taken to be in the file.
    pub fn own_file(&self) -> Option<i64> {
        if let Some(f) = self.this_file {
            return Some(f);
        }
        let files = self.files.as_ref()?;
        let first = *files.first()?;
        files.iter().all(|&f| f == first).then_some(first)
    }
}
