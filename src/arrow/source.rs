//! Resolving `FILE_OR_GLOB` + `GROUP` into the groups of a table, one per file, in order.

use std::sync::Arc;

use crate::Result;
use crate::remote::glob::expand_files;
use crate::remote::{Backend, Group, OpenOptions, open_group_with};
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
    run_parallel(files.len(), concurrency, |i| {
        let f = files.get(i).map(String::as_str).unwrap_or_default();
        open_group_with(Arc::clone(backend), f, group, options)
    })
}
