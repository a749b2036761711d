//! The plan of a table: which datasets of a group (over one file or many) are its columns,
//! and how many rows each file holds. Built from metadata only; engine adapters map the
//! columns to their own types through a callback.

use hdfstream_protocol::{DatasetInfo, Member};

use super::TableFile;
use super::parallel::run_parallel;
use crate::remote::Backend;
use crate::{Error, Result};

/// Deepest subgroup nesting a recursive listing descends into.
const MAX_NESTING: usize = 64;

/// What to do with a dataset that cannot become a column (other row count, unsupported type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnsupported {
    /// Leave it out with a `tracing` warning (default).
    #[default]
    Skip,
    /// Fail with an error naming the dataset.
    Error,
}

/// How a [`TablePlan`] chooses its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Only these datasets (paths relative to the group), in this order; each must become
    /// a column. `None` (the default): every dataset of the group that can.
    pub columns: Option<Vec<String>>,
    /// Also take the datasets of nested subgroups, named by their relative path
    /// (`sub/name`). Default: false.
    pub recursive: bool,
    /// Datasets that cannot be columns, when no explicit list is given. Default: skip.
    pub on_unsupported: OnUnsupported,
    /// Metadata requests in flight at once (one per file), at least
    /// [`METADATA_CONCURRENCY`](super::METADATA_CONCURRENCY). Default 4.
    pub concurrency: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            columns: None,
            recursive: false,
            on_unsupported: OnUnsupported::Skip,
            concurrency: 4,
        }
    }
}

/// One dataset of the table, with what the engine adapter made of it.
#[derive(Debug, Clone)]
pub struct PlanColumn<T> {
    /// Path relative to the group (`name`, or `sub/name` when recursive).
    pub name: String,
    /// Absolute HDF5 path of the dataset.
    pub object: String,
    /// The dataset in the first file (type, shape, attributes).
    pub info: DatasetInfo,
    /// The adapter's mapping of it (its column type or types).
    pub mapped: T,
}

/// One group over one file or many, as a table: files with their row counts, and columns.
#[derive(Debug, Clone)]
pub struct TablePlan<T> {
    /// Absolute path of the group.
    pub group: String,
    /// Files in table order, with the rows of each.
    pub files: Vec<TableFile>,
    /// Columns in the group's member order (or the order asked for).
    pub columns: Vec<PlanColumn<T>>,
}

/// The datasets of one file's group: relative path and description, in member order.
pub type GroupListing = Vec<(String, DatasetInfo)>;

/// Normalises a group path to an absolute HDF5 path.
pub fn group_path(group: &str) -> String {
    let g = group.trim_matches('/');
    if g.is_empty() {
        "/".to_owned()
    } else {
        format!("/{g}")
    }
}

fn not_column(name: &str, reason: impl std::fmt::Display) -> Error {
    Error::TypeMismatch {
        expected: "a dataset that can be a column".to_owned(),
        found: format!("{name}: {reason}"),
    }
}

/// The datasets of `group` in `vpath` (depth-first through subgroups with `recursive`; soft
/// links are never followed).
pub fn list_group(
    backend: &dyn Backend,
    vpath: &str,
    group: &str,
    recursive: bool,
) -> Result<GroupListing> {
    let mut out = Vec::new();
    collect(backend, vpath, &group_path(group), "", recursive, &mut out)?;
    Ok(out)
}

fn collect(
    backend: &dyn Backend,
    vpath: &str,
    group: &str,
    prefix: &str,
    recursive: bool,
    out: &mut GroupListing,
) -> Result<()> {
    let Member::Group(g) = backend.request_object(vpath, group, 0, 0)? else {
        return Err(Error::InvalidPath {
            path: format!("{vpath}:{group}"),
            reason: "not a group".to_owned(),
        });
    };
    if prefix.matches('/').count() > MAX_NESTING {
        // Hard links can make a group its own descendant; the wire carries no object identity.
        return Err(Error::InvalidPath {
            path: format!("{vpath}:{group}"),
            reason: format!(
                "subgroups nested more than {MAX_NESTING} levels deep (a hard-link cycle?)"
            ),
        });
    }
    for (name, m) in g.members {
        let rel = format!("{prefix}{name}");
        match m {
            Some(Member::Dataset(d)) => out.push((rel, d)),
            Some(Member::SoftLink { target }) => {
                tracing::debug!(name = rel, target, "soft link in the group left out")
            }
            // At depth 0 every member but a subgroup is described, so `None` is a subgroup.
            None | Some(Member::Group(_)) if recursive => {
                let sub = format!("{}/{name}", group.trim_end_matches('/'));
                collect(backend, vpath, &sub, &format!("{rel}/"), recursive, out)?;
            }
            _ => tracing::debug!(name = rel, "non-dataset member of the group left out"),
        }
    }
    Ok(())
}

/// The most common first dimension (ties: the first seen); 0 without datasets.
fn common_rows<'a>(shapes: impl Iterator<Item = &'a [u64]>) -> u64 {
    let mut counts: Vec<(u64, usize)> = Vec::new();
    for s in shapes {
        if let Some(&n) = s.first() {
            match counts.iter_mut().find(|(v, _)| *v == n) {
                Some(c) => c.1 += 1,
                None => counts.push((n, 1)),
            }
        }
    }
    let best = counts.iter().map(|c| c.1).max().unwrap_or(0);
    counts.iter().find(|c| c.1 == best).map_or(0, |c| c.0)
}

/// The row count of a group without chosen columns: the most common first dimension of its
/// own datasets.
fn listing_rows(listing: &GroupListing) -> u64 {
    common_rows(
        listing
            .iter()
            .filter(|(n, _)| !n.contains('/'))
            .map(|(_, d)| d.shape.as_slice()),
    )
}

impl<T> TablePlan<T> {
    /// Lists `group` in every file (concurrently) and plans the table; `map` turns a
    /// dataset (relative name, first file's description) into the adapter's column type,
    /// or says why it cannot be a column.
    pub fn load<F>(
        backend: &dyn Backend,
        files: &[String],
        group: &str,
        opts: &PlanOptions,
        map: F,
    ) -> Result<Self>
    where
        F: Fn(&str, &DatasetInfo) -> std::result::Result<T, String>,
    {
        let group = group_path(group);
        let nested = opts
            .columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|n| n.trim_matches('/').contains('/')));
        let recursive = opts.recursive || nested;
        let fan_out = opts.concurrency.max(super::METADATA_CONCURRENCY);
        let listings = run_parallel(files.len(), fan_out, |i| {
            let vpath = files.get(i).map(String::as_str).unwrap_or_default();
            list_group(backend, vpath, &group, recursive)
        })?;
        let files = files.iter().cloned().zip(listings).collect();
        Self::from_listings(&group, files, opts, map)
    }

    /// Plans the table from the listings of its group in each file (see [`list_group`]).
    pub fn from_listings<F>(
        group: &str,
        files: Vec<(String, GroupListing)>,
        opts: &PlanOptions,
        map: F,
    ) -> Result<Self>
    where
        F: Fn(&str, &DatasetInfo) -> std::result::Result<T, String>,
    {
        let group = group_path(group);
        let Some((vpath0, first)) = files.first() else {
            return Err(Error::InvalidPath {
                path: group,
                reason: "no file to read".to_owned(),
            });
        };
        let object_of = |name: &str| format!("{}/{name}", group.trim_end_matches('/'));
        let strict = opts.columns.is_some() || opts.on_unsupported == OnUnsupported::Error;
        // A dataset that cannot be a column: an error when strict, else a log line.
        let left_out = |name: &str, why: String| -> Result<()> {
            if strict {
                return Err(not_column(&object_of(name), why));
            }
            tracing::warn!(
                dataset = object_of(name),
                reason = why,
                "dataset left out of the table"
            );
            Ok(())
        };
        // Candidates: the named datasets, or every one listed.
        let candidates: Vec<&(String, DatasetInfo)> = match &opts.columns {
            Some(names) => {
                let mut picked = Vec::with_capacity(names.len());
                for n in names {
                    let n = n.trim_matches('/');
                    match first.iter().find(|(name, _)| name == n) {
                        Some(d) => picked.push(d),
                        None => {
                            return Err(Error::NotFound {
                                path: format!("{vpath0}:{}", object_of(n)),
                                message: "no such dataset in the group".to_owned(),
                            });
                        }
                    }
                }
                picked
            }
            None => first.iter().collect(),
        };
        let mut mapped = Vec::with_capacity(candidates.len());
        for (name, info) in candidates {
            match map(name, info) {
                Ok(t) => mapped.push((name, info, t)),
                Err(why) => left_out(name, why)?,
            }
        }
        // The row count comes from the group's own datasets; nested ones only when it has none.
        // An empty projection still has rows: those of the whole group.
        let top = mapped.iter().filter(|(n, _, _)| !n.contains('/'));
        let n0 = if mapped.is_empty() {
            listing_rows(first)
        } else if top.clone().next().is_some() {
            common_rows(top.map(|(_, d, _)| d.shape.as_slice()))
        } else {
            common_rows(mapped.iter().map(|(_, d, _)| d.shape.as_slice()))
        };
        let mut columns = Vec::with_capacity(mapped.len());
        for (name, info, t) in mapped {
            let n = info.shape.first().copied().unwrap_or(0);
            if n != n0 {
                let why = format!("it has {n} rows where the table has {n0}");
                left_out(name, why)?;
                continue;
            }
            columns.push(PlanColumn {
                name: name.clone(),
                object: object_of(name),
                info: info.clone(),
                mapped: t,
            });
        }
        let mut table_files = Vec::with_capacity(files.len());
        for (i, (vpath, listing)) in files.iter().enumerate() {
            let rows = if i == 0 {
                n0
            } else {
                file_rows(vpath, listing, &columns)?
            };
            table_files.push(TableFile {
                vpath: vpath.clone(),
                rows,
            });
        }
        let plan = Self {
            group,
            files: table_files,
            columns,
        };
        plan.offsets()?;
        Ok(plan)
    }

    /// Global index of the first row of every file, and the total row count.
    pub fn offsets(&self) -> Result<(Vec<u64>, u64)> {
        let mut out = Vec::with_capacity(self.files.len());
        let mut at = 0u64;
        for f in &self.files {
            out.push(at);
            at = at
                .checked_add(f.rows)
                .ok_or_else(|| Error::InvalidSelection {
                    reason: "the total row count overflows u64".to_owned(),
                })?;
        }
        Ok((out, at))
    }

    /// Total rows over all files.
    pub fn total_rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.rows)
            .fold(0, u64::saturating_add)
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&PlanColumn<T>> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The row count of a file after the first: every column must be there with the first
/// file's type and trailing dimensions, and all with the same number of rows.
fn file_rows<T>(vpath: &str, listing: &GroupListing, columns: &[PlanColumn<T>]) -> Result<u64> {
    if columns.is_empty() {
        return Ok(listing_rows(listing));
    }
    let mut rows: Option<u64> = None;
    for c in columns {
        let Some((_, d)) = listing.iter().find(|(n, _)| *n == c.name) else {
            return Err(Error::NotFound {
                path: format!("{vpath}:{}", c.object),
                message: "the dataset is in the first file of the table but not in this one"
                    .to_owned(),
            });
        };
        if d.dtype != c.info.dtype || d.shape.get(1..) != c.info.shape.get(1..) {
            return Err(not_column(
                &format!("{vpath}:{}", c.object),
                format!(
                    "{:?} of shape {:?} differs from the first file's {:?} of shape {:?}",
                    d.dtype, d.shape, c.info.dtype, c.info.shape
                ),
            ));
        }
        let n = d.shape.first().copied().unwrap_or(0);
        match rows {
            Some(r) if r != n => {
                return Err(not_column(
                    &format!("{vpath}:{}", c.object),
                    format!("it has {n} rows where the other columns have {r}"),
                ));
            }
            _ => rows = Some(n),
        }
    }
    Ok(rows.unwrap_or(0))
}
