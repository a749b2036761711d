//! Resolving `FILE_OR_GLOB` + `GROUP` into the groups of a table, one per file, in order.

use std::sync::Arc;

use crate::Result;
use crate::remote::glob::expand_files;
use crate::remote::{Backend, Group, OpenOptions, open_with};

/// Opens `group` in every file `file_or_glob` names.
pub(crate) fn open_groups(
    backend: &Arc<dyn Backend>,
    file_or_glob: &str,
    group: &str,
    options: OpenOptions,
) -> Result<Vec<Arc<Group>>> {
    expand_files(backend.as_ref(), file_or_glob)?
        .iter()
        .map(|f| {
            open_with(Arc::clone(backend), f, options)?
                .into_file()?
                .group(group)
        })
        .collect()
}
