//! Helpers shared by the `remote_*` cassette tests: replay sessions and expected values.

use std::sync::Arc;

use hdfstream::remote::Backend;
use hdfstream::{Node, OpenOptions, open_with};
use rmpv::Value;

use crate::support::cassette::Replay;

/// The EAGLE snapshot file used by most cassettes.
pub(crate) const E0: &str =
    "EAGLE/Fiducial_models/RefL0012N0188/snapshot_000_z020p000/snap_000_z020p000.0.hdf5";

/// The options the cassettes were recorded with (`max_depth` 0, no inlined data).
pub(crate) fn recorded_options() -> OpenOptions {
    OpenOptions::default().max_depth(0).data_size_limit(0)
}

/// A cassette replayed on a local socket plus a client connected to it.
pub(crate) struct Session {
    /// The replay server.
    pub(crate) replay: Replay,
    /// The client connection as the remote layer's backend.
    pub(crate) backend: Arc<dyn Backend>,
}

/// Starts replaying `name`; `None` (test skipped, note printed) without fixtures.
pub(crate) fn session(name: &str) -> Option<Session> {
    let replay = Replay::start(name)?;
    let conn = crate::support::connect(&replay.base_url());
    Some(Session {
        replay,
        backend: Arc::new(conn),
    })
}

impl Session {
    /// `hdfstream::open` through the replayed connection with the recorded options.
    pub(crate) fn open(&self, path: &str) -> Node {
        open_with(self.backend.clone(), path, recorded_options()).expect("open")
    }

    /// Number of requests received so far (probe excluded).
    pub(crate) fn request_count(&self) -> usize {
        self.replay
            .log()
            .iter()
            .filter(|(r, i)| i.is_some() || !(r.method == "GET" && r.target.ends_with("/msgpack/")))
            .count()
    }

    /// Asserts the client made exactly the recorded requests, in the recorded order, and that
    /// every slice request body is byte-for-byte the recorded value.
    pub(crate) fn finish(self) {
        let played: Vec<usize> = self.replay.log().iter().filter_map(|(_, i)| *i).collect();
        let n = self.replay.cassette().interactions.len();
        assert!(
            self.replay.unmatched().is_empty(),
            "unexpected requests: {:#?}",
            self.replay.unmatched()
        );
        assert_eq!(
            played,
            (0..n).collect::<Vec<_>>(),
            "requests differ from the recording"
        );
        let exact = self.replay.slice_body_mismatches();
        if !exact.is_empty() {
            // `SliceSpec` cannot say "array form with one run" (what Python sends for fancy
            // indexing), so a single run goes out as `[start, count]`: same meaning on the wire.
            // Anything beyond that difference is a failure.
            let log = self.replay.log();
            for (req, idx) in log {
                let Some(i) = idx else { continue };
                let Some(recorded) = self.replay.cassette().interactions[i].request_value() else {
                    continue;
                };
                if recorded
                    .as_map()
                    .is_none_or(|m| !m.iter().any(|(k, _)| k.as_str() == Some("slice")))
                {
                    continue;
                }
                let sent = rmpv::decode::read_value(&mut req.body.as_slice())
                    .expect("sent body is msgpack");
                assert_eq!(
                    normalise(&sent),
                    normalise(&recorded),
                    "interaction {i}: slice body differs"
                );
            }
            eprintln!("note: slice bodies equal up to the one-run array form: {exact:?}");
        }
    }

    /// The recorded response body of interaction `i`, decoded independently with rmpv.
    pub(crate) fn recorded_response(&self, i: usize) -> Value {
        let body = &self.replay.cassette().interactions[i].response_body;
        rmpv::decode::read_value(&mut body.as_slice()).expect("recorded msgpack")
    }
}

/// Looks a key up in an rmpv map.
pub(crate) fn map_get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_map()
        .expect("map")
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key}"))
}

/// Keys of an rmpv map in order.
pub(crate) fn map_keys(v: &Value) -> Vec<String> {
    v.as_map()
        .expect("map")
        .iter()
        .map(|(k, _)| k.as_str().expect("str key").to_string())
        .collect()
}

/// `eagle_expected.json` values of a dataset's first 1000 rows as f64, with the row width.
pub(crate) fn expected_rows(name: &str) -> Option<(Vec<f64>, usize)> {
    let e = crate::support::eagle_expected()?;
    let d = &e[name];
    let vals = d["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let width = d["shape"][1].as_u64().expect("shape") as usize;
    Some((vals, width))
}

/// Rows `rows` (in that order) of a row-major array with `width` columns, columns `cols`.
pub(crate) fn pick(
    vals: &[f64],
    width: usize,
    rows: &[usize],
    cols: std::ops::Range<usize>,
) -> Vec<f64> {
    rows.iter()
        .flat_map(|r| cols.clone().map(move |c| vals[r * width + c]))
        .collect()
}

/// Compares one attribute with its `eagle_expected.json` entry (dtype, shape, values, exactly).
pub(crate) fn assert_attr_matches(
    name: &str,
    got: &hdfstream::AttrValue,
    want: &serde_json::Value,
) {
    let shape: Vec<u64> = want["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(got.shape(), shape.as_slice(), "{name}: shape");
    let dtype = want["dtype"].as_str().unwrap();
    let values = want["values"].as_array().unwrap();
    if dtype.contains('S') {
        let strings: Vec<String> = values
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got.to_strings().unwrap(), strings, "{name}: strings");
    } else if dtype.contains('f') {
        let want: Vec<f64> = values.iter().map(|v| v.as_f64().unwrap()).collect();
        let kind = got
            .dtype()
            .and_then(hdfstream::remote::ElementKind::from_dtype)
            .unwrap();
        assert_eq!(
            kind.name(),
            dtype.trim_start_matches(['<', '>', '|', '=']),
            "{name}: dtype"
        );
        assert_eq!(got.to_vec::<f64>().unwrap(), want, "{name}: values");
    } else {
        let want: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
        let kind = got
            .dtype()
            .and_then(hdfstream::remote::ElementKind::from_dtype)
            .unwrap();
        assert_eq!(
            kind.name(),
            dtype.trim_start_matches(['<', '>', '|', '=']),
            "{name}: dtype"
        );
        assert_eq!(got.to_vec::<i64>().unwrap(), want, "{name}: values");
    }
}

/// A request body with one-element `[start]`/`[count]` arrays of dimension 0 made scalars.
fn normalise(v: &Value) -> Value {
    let Some(map) = v.as_map() else {
        return v.clone();
    };
    let map = map
        .iter()
        .map(|(k, val)| {
            if k.as_str() != Some("slice") {
                return (k.clone(), val.clone());
            }
            let dims = val.as_array().cloned().unwrap_or_default();
            let dims = dims
                .into_iter()
                .enumerate()
                .map(|(d, dim)| match (d, dim.as_array()) {
                    (0, Some(pair)) => Value::Array(
                        pair.iter()
                            .map(|x| match x.as_array().map(Vec::as_slice) {
                                Some([one]) => one.clone(),
                                _ => x.clone(),
                            })
                            .collect(),
                    ),
                    _ => dim,
                })
                .collect();
            (k.clone(), Value::Array(dims))
        })
        .collect();
    Value::Map(map)
}
