//! Path normalisation for virtual (directory) paths and HDF5 object paths.

use crate::Error;

/// Splits a virtual path into components like `posixpath.normpath`: empty and `.` components
/// vanish, `..` removes the previous component (an error above the starting point).
pub(crate) fn normalize_vpath(path: &str) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(Error::InvalidPath {
                        path: path.to_string(),
                        reason: "'..' goes above the starting directory".to_string(),
                    });
                }
            }
            name => out.push(name.to_string()),
        }
    }
    Ok(out)
}

/// One step of an HDF5 path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Go to the member with this name.
    Name(String),
    /// Go to the parent group (`..`).
    Parent,
}

/// An HDF5 path split into steps (`.` and empty components removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectPath {
    /// Starts at the root (leading `/`).
    pub(crate) absolute: bool,
    /// The steps in order.
    pub(crate) steps: Vec<Step>,
}

/// Parses an HDF5 path relative to a group (PurePosixPath-like rules).
pub(crate) fn parse_object_path(path: &str) -> ObjectPath {
    let steps = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(|c| {
            if c == ".." {
                Step::Parent
            } else {
                Step::Name(c.to_string())
            }
        })
        .collect();
    ObjectPath {
        absolute: path.starts_with('/'),
        steps,
    }
}

/// Absolute path of member `name` of the group at `parent`.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Absolute path of the parent of `path` (the root is its own parent).
pub(crate) fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
    }
}

/// Last component of an absolute path (`"/"` for the root).
pub(crate) fn base_name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) if path.len() > 1 => path.get(i + 1..).unwrap_or(path),
        _ => path,
    }
}
