//! Resolving `FILE_OR_GLOB` + `GROUP` into the groups of a table, one per file, in order.

use std::sync::Arc;

use crate::Result;
use crate::remote::glob::expand_files;
use crate::remote::{Backend, Group, OpenOptions, open_group_with, prefetch_object};
use crate::table::parallel::run_parallel;

/// Opens `group` in every file `file_or_glob` names, `concurrency` files at a time.
pub(crate) fn open_groups(
    backend: &Arc<dyn Backend>,
    file_or_glob: &str,
    group: &str,
    options: OpenOptions,
    concurrency: usize,
) -> Result<Vec<Arc<Group>>> {
    let files = expand_files(backend.as_ref(), file_or_glob)?;
    // The schema takes the attributes of the first file's `/Header`: asked for together with
    // the groups (a metadata cache keeps the answer, `open_with` wraps one) rather than one
    // round trip after them.
    let header = files
        .first()
        .filter(|_| options.data_size_limit == 0 && group.trim_matches('/') != "Header");
    let extra = usize::from(header.is_some());
    let opened = run_parallel(files.len() + extra, concurrency, |i| {
        match (i.checked_sub(extra), header) {
            (None, Some(first)) => {
                prefetch_object(backend.as_ref(), first, "/Header", options);
                Ok(None)
            }
            (Some(i), _) => {
                let f = files.get(i).map(String::as_str).unwrap_or_default();
                open_group_with(Arc::clone(backend), f, group, options).map(Some)
            }
            (None, None) => Ok(None),
        }
    })?;
    Ok(opened.into_iter().flatten().collect())
}
