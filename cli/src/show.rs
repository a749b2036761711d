//! Human-readable and JSON descriptions of remote directories, groups and datasets.

use std::io::{self, Write};

use hdfstream::{AttrValue, Directory, Group, HasAttrs, Link, Object};
use hdfstream_protocol::ArrayData;
use serde_json::{Value, json};

/// Lists subdirectories (with a trailing `/`) and then files with size and media type.
pub(crate) fn list_directory(dir: &Directory, out: &mut dyn Write) -> Result<(), hdfstream::Error> {
    let io_err = |source: io::Error| hdfstream::Error::Io {
        context: "writing the listing".into(),
        source,
    };
    for (name, _) in dir.directories()? {
        writeln!(out, "{:>14}  {:<24}  {name}/", "-", "directory").map_err(io_err)?;
    }
    for (name, file) in dir.files()? {
        writeln!(
            out,
            "{:>14}  {:<24}  {name}",
            file.size(),
            file.media_type()
        )
        .map_err(io_err)?;
    }
    Ok(())
}

/// Lists the members of a group: groups with a trailing `/`, datasets with type and shape,
/// soft links with their target.
pub(crate) fn list_group(group: &Group, out: &mut dyn Write) -> Result<(), hdfstream::Error> {
    let io_err = |source: io::Error| hdfstream::Error::Io {
        context: "writing the listing".into(),
        source,
    };
    for name in group.keys() {
        let line = match group.get_link(&name)? {
            Link::Soft(target) => format!("{name} -> {target}"),
            Link::Hard => match group.get(&name)? {
                Object::Group(_) => format!("{name}/"),
                Object::Dataset(d) => format!("{name}  {} {:?}", d.dtype(), d.shape()),
            },
        };
        writeln!(out, "{line}").map_err(io_err)?;
    }
    Ok(())
}

/// A short text form of an attribute value.
fn attr_text(value: &AttrValue) -> String {
    if let Ok(strings) = value.to_strings() {
        return if value.is_scalar() && strings.len() == 1 {
            format!("{:?}", strings[0])
        } else {
            format!("{strings:?}")
        };
    }
    match value.to_vec::<f64>() {
        Ok(v) if value.is_scalar() && v.len() == 1 => number_text(value, v[0]),
        Ok(v) => format!("{v:?}"),
        Err(_) => match value.to_vec::<i64>() {
            Ok(v) => format!("{v:?}"),
            Err(_) => match value.to_vec::<u64>() {
                Ok(v) => format!("{v:?}"),
                Err(_) => "<unprintable>".into(),
            },
        },
    }
}

fn number_text(value: &AttrValue, v: f64) -> String {
    match value.as_i64() {
        Some(i)
            if value
                .dtype()
                .is_some_and(|d| !matches!(d, hdfstream_protocol::Dtype::Float { .. })) =>
        {
            i.to_string()
        }
        _ => format!("{v:?}"),
    }
}

/// Writes a text description of a group or dataset.
pub(crate) fn describe(object: &Object, out: &mut dyn Write) -> Result<(), hdfstream::Error> {
    let io_err = |source: io::Error| hdfstream::Error::Io {
        context: "writing the description".into(),
        source,
    };
    match object {
        Object::Group(g) => {
            writeln!(out, "group {}  ({} members)", g.path(), g.len()).map_err(io_err)?;
        }
        Object::Dataset(d) => {
            writeln!(
                out,
                "dataset {}  type {}  shape {:?}",
                d.path(),
                d.dtype(),
                d.shape()
            )
            .map_err(io_err)?;
        }
    }
    let attrs = object.attrs();
    if !attrs.is_empty() {
        writeln!(out, "attributes:").map_err(io_err)?;
        for (name, value) in attrs.iter() {
            writeln!(out, "  {name} = {}", attr_text(value)).map_err(io_err)?;
        }
    }
    if let Object::Group(g) = object {
        writeln!(out, "members:").map_err(io_err)?;
        let mut indented = Vec::new();
        list_group(g, &mut indented)?;
        for line in String::from_utf8_lossy(&indented).lines() {
            writeln!(out, "  {line}").map_err(io_err)?;
        }
    }
    Ok(())
}

/// An attribute value as JSON: shape, dtype and values in C order.
fn attr_json(value: &AttrValue) -> Value {
    let values = match value.to_strings() {
        Ok(s) => json!(s),
        Err(_) => match value.data() {
            ArrayData::Nd(nd) if matches!(nd.dtype, hdfstream_protocol::Dtype::Float { .. }) => {
                json!(value.to_vec::<f64>().unwrap_or_default())
            }
            _ => match value.to_vec::<i64>() {
                Ok(v) => json!(v),
                Err(_) => json!(value.to_vec::<u64>().unwrap_or_default()),
            },
        },
    };
    json!({
        "dtype": value.dtype().map(|d| d.to_string()),
        "shape": value.shape(),
        "values": values,
    })
}

/// A JSON description of a group or dataset.
pub(crate) fn object_json(object: &Object) -> Result<Value, hdfstream::Error> {
    let attrs: serde_json::Map<String, Value> = object
        .attrs()
        .iter()
        .map(|(k, v)| (k.to_string(), attr_json(v)))
        .collect();
    Ok(match object {
        Object::Dataset(d) => json!({
            "type": "dataset",
            "path": d.path(),
            "dtype": d.dtype().to_string(),
            "shape": d.shape(),
            "attributes": attrs,
        }),
        Object::Group(g) => {
            let members = group_json(g)?;
            json!({"type": "group", "path": g.path(), "attributes": attrs, "members": members})
        }
    })
}

/// The members of a group as JSON, one object each with `name` and `type` (`group`,
/// `dataset` with `dtype` and `shape`, or `soft_link` with `target`).
pub(crate) fn group_json(g: &Group) -> Result<Value, hdfstream::Error> {
    let mut members = Vec::new();
    for name in g.keys() {
        members.push(match g.get_link(&name)? {
            Link::Soft(target) => json!({"name": name, "type": "soft_link", "target": target}),
            Link::Hard => match g.get(&name)? {
                Object::Group(_) => json!({"name": name, "type": "group"}),
                Object::Dataset(d) => json!({
                    "name": name, "type": "dataset",
                    "dtype": d.dtype().to_string(), "shape": d.shape(),
                }),
            },
        });
    }
    Ok(Value::Array(members))
}

/// A directory listing as JSON: subdirectories (`type` `directory`), then files (`type`
/// `file` with `size` in bytes and `media_type`).
pub(crate) fn directory_json(dir: &Directory) -> Result<Value, hdfstream::Error> {
    let mut entries = Vec::new();
    for (name, _) in dir.directories()? {
        entries.push(json!({"name": name, "type": "directory"}));
    }
    for (name, file) in dir.files()? {
        entries.push(json!({
            "name": name, "type": "file", "size": file.size(), "media_type": file.media_type(),
        }));
    }
    Ok(Value::Array(entries))
}
