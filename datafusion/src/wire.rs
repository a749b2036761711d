//! A table and its scan as bytes, for engines that ship plans to other machines (the
//! extension codecs of Ballista): the URL, the group, the options, the projection and the
//! row ranges travel. Credentials do not: each machine takes its own, from
//! `HDFSTREAM_USER` / `HDFSTREAM_PASSWORD` or from the alias in its configuration file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;
use hdfstream::client::{ENV_PASSWORD, ENV_USER};
use serde::{Deserialize, Serialize};

use crate::exec::{HdfstreamExec, ScanSummary};
use crate::{HdfstreamError, HdfstreamOptions, HdfstreamTable, Result};

/// How long a machine reuses a table it opened to decode a scan before it asks the server
/// for the metadata again.
const TABLE_TTL: Duration = Duration::from_secs(60);
/// Tables kept for decoding scans; the cache is emptied when it holds more.
const TABLE_CACHE: usize = 64;

/// What names a table on any machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct TableSpec {
    url: String,
    group: String,
    /// [`HdfstreamOptions::to_pairs`].
    options: Vec<(String, String)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ScanSpec {
    /// Output columns, by name, in order.
    columns: Vec<String>,
    summary: ScanSummary,
}

/// The spec of `t`.
pub(crate) fn spec_of(t: &HdfstreamTable) -> TableSpec {
    TableSpec {
        url: t.url().to_owned(),
        group: t.group().to_owned(),
        options: t.options().to_pairs(),
    }
}

fn malformed(what: &str, e: impl std::fmt::Display) -> HdfstreamError {
    HdfstreamError::Usage(format!("a malformed hdfstream {what} in the plan: {e}"))
}

/// Opens the table a spec names, as a distributed scan, with this machine's credentials.
fn open_spec(spec: &TableSpec) -> Result<HdfstreamTable> {
    let mut options = spec
        .options
        .iter()
        .try_fold(HdfstreamOptions::default(), |o, (k, v)| o.set(k, v))?
        .with_distributed(true);
    if let Ok(user) = std::env::var(ENV_USER) {
        options = options.with_credentials(user, std::env::var(ENV_PASSWORD).unwrap_or_default());
    }
    HdfstreamTable::open(&spec.url, &spec.group, options)
}

/// The table `spec` names, opened at most once per [`TABLE_TTL`] on this machine.
fn cached_table(spec: &TableSpec) -> Result<Arc<HdfstreamTable>> {
    type Cache = Mutex<HashMap<TableSpec, (Instant, Arc<HdfstreamTable>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, t)) = lock().get(spec)
        && at.elapsed() < TABLE_TTL
    {
        return Ok(Arc::clone(t));
    }
    let table = Arc::new(open_spec(spec)?);
    let mut g = lock();
    if g.len() >= TABLE_CACHE {
        g.clear();
    }
    g.insert(spec.clone(), (Instant::now(), Arc::clone(&table)));
    Ok(table)
}

/// The bytes that [`decode_table`] turns back into `table` on another machine.
pub fn encode_table(table: &HdfstreamTable) -> Result<Vec<u8>> {
    serde_json::to_vec(&spec_of(table)).map_err(|e| malformed("table", e))
}

/// Opens the table `bytes` describe ([`encode_table`]) for a distributed scan
/// ([`HdfstreamOptions::with_distributed`]): metadata requests to its server.
pub fn decode_table(bytes: &[u8]) -> Result<HdfstreamTable> {
    let spec: TableSpec = serde_json::from_slice(bytes).map_err(|e| malformed("table", e))?;
    open_spec(&spec)
}

/// The bytes that [`decode_scan`] turns back into the distributed scan `exec` on another
/// machine (its row-range input is not in them: the engine encodes it as the node's child).
/// A scan whose partitions are not an input is refused: an engine that runs some of a
/// plan's partitions per task would read all of them in every task.
pub fn encode_scan(exec: &HdfstreamExec) -> Result<Vec<u8>> {
    if exec.summary().origin.is_none() {
        return Err(malformed("scan", "it was not made by HdfstreamTable::scan"));
    }
    if !exec.is_distributed() {
        return Err(HdfstreamError::Usage(
            "only a distributed scan (HdfstreamOptions::with_distributed) can be shipped"
                .to_owned(),
        ));
    }
    let spec = ScanSpec {
        columns: exec
            .table()
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        summary: exec.summary().clone(),
    };
    serde_json::to_vec(&spec).map_err(|e| malformed("scan", e))
}

/// Rebuilds a distributed scan from [`encode_scan`]'s bytes and its one child (`inputs`: the
/// row-range plan). The table's metadata is fetched from its server once per minute per
/// machine at most.
pub fn decode_scan(bytes: &[u8], inputs: &[Arc<dyn ExecutionPlan>]) -> Result<HdfstreamExec> {
    let spec: ScanSpec = serde_json::from_slice(bytes).map_err(|e| malformed("scan", e))?;
    let origin = spec
        .summary
        .origin
        .clone()
        .ok_or_else(|| malformed("scan", "it names no table"))?;
    let table = cached_table(&origin)?;
    let full = table.group_table();
    let schema = full.schema();
    let indices = spec
        .columns
        .iter()
        .map(|c| {
            schema.index_of(c).map_err(|_| {
                HdfstreamError::Usage(format!(
                    "column {c:?} of the plan is not in {} {} any more",
                    origin.url, origin.group
                ))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let projected = full.project(&indices)?;
    match inputs {
        [input] => Ok(HdfstreamExec::distributed(
            projected,
            Arc::clone(input),
            Vec::new(),
            spec.summary,
        )),
        _ => Err(malformed(
            "scan",
            format!("a distributed scan with {} inputs", inputs.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_bytes_are_errors() {
        for bytes in [
            &b""[..],
            b"{",
            b"null",
            b"[1,2]",
            b"{\"url\":1}",
            &[0xff, 0x00, 0x7f],
        ] {
            assert!(
                matches!(decode_table(bytes), Err(HdfstreamError::Usage(_))),
                "{bytes:?}"
            );
            assert!(
                matches!(decode_scan(bytes, &[]), Err(HdfstreamError::Usage(_))),
                "{bytes:?}"
            );
        }
        // A scan that names no table.
        let spec = serde_json::json!({
            "columns": ["Masses"],
            "summary": { "group": "/PartType0", "files": 1, "pushed": [], "cells": null,
                         "total_rows": 10, "exact": true, "late": [], "origin": null },
        });
        let bytes = serde_json::to_vec(&spec).expect("json");
        let err = decode_scan(&bytes, &[]).expect_err("no table");
        assert!(err.to_string().contains("names no table"), "{err}");
    }

    #[test]
    fn a_table_on_an_unreachable_server_is_an_error() {
        let spec = TableSpec {
            url: "http://127.0.0.1:1/hdfstream/msgpack/snap.hdf5".to_owned(),
            group: "PartType0".to_owned(),
            options: HdfstreamOptions::default().to_pairs(),
        };
        let bytes = serde_json::to_vec(&spec).expect("json");
        assert!(decode_table(&bytes).is_err());
        let bad_option = TableSpec {
            options: vec![("batch_size".to_owned(), "many".to_owned())],
            ..spec
        };
        let bytes = serde_json::to_vec(&bad_option).expect("json");
        assert!(matches!(
            decode_table(&bytes),
            Err(HdfstreamError::Option { .. })
        ));
    }
}
