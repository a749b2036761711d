//! Every recorded interaction of every cassette, replayed through the matching
//! `Connection` method in recorded order:
//!
//! * the request sent must match the recorded one: same method and URL; for POSTs the
//!   body is byte-identical (the client is given the recorded parameters), except that a
//!   single-run slice may use the equivalent short form;
//! * the answer must decode, and agree with an independent `rmpv` decode of the recorded
//!   body: slice shapes and payload bytes, object member and attribute names in order,
//!   path listings, download bytes, 404 messages.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use hdfstream::{Connection, Error};
use hdfstream_protocol::{ArrayData, Member, ObjectRequest, PathInfo};
use rmpv::Value;
use support::cassette::{Interaction, Replay, fixtures_dir};

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

fn decode(body: &[u8]) -> Value {
    let mut b = body;
    let v = rmpv::decode::read_value(&mut b).expect("recorded msgpack");
    assert!(b.is_empty(), "bytes after recorded value");
    v
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|(k, _)| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Shape and concatenated payload of a recorded ndarray map.
fn recorded_array(v: &Value) -> (Vec<u64>, Vec<u8>) {
    let shape = get(v, "shape")
        .and_then(Value::as_array)
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim"))
        .collect();
    let mut payload = Vec::new();
    for bin in get(v, "data").and_then(Value::as_array).expect("data") {
        match bin {
            Value::Binary(b) => payload.extend_from_slice(b),
            other => panic!("data entry is not bin: {other}"),
        }
    }
    (shape, payload)
}

fn check_array(got: &ArrayData, recorded: &Value, ctx: &str) {
    let (shape, payload) = recorded_array(recorded);
    assert_eq!(got.shape(), shape.as_slice(), "{ctx}: shape");
    match got {
        ArrayData::Nd(nd) => {
            // Every recorded type is little endian, as is this host.
            assert!(
                nd.data.as_bytes() == payload.as_slice(),
                "{ctx}: payload bytes"
            );
        }
        ArrayData::Vlen(_) => panic!("{ctx}: no vlen data in the cassettes"),
    }
}

fn check_member(got: &Member, recorded: &Value, ctx: &str) {
    let names = |attrs: &[(String, ArrayData)]| -> Vec<String> {
        attrs.iter().map(|(n, _)| n.clone()).collect()
    };
    match got {
        Member::Group(g) => {
            assert_eq!(
                get(recorded, "hdf5_object").and_then(Value::as_str),
                Some("group")
            );
            assert_eq!(
                names(&g.attributes),
                keys(get(recorded, "attributes")),
                "{ctx}"
            );
            let members: Vec<String> = g.members.iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(
                members,
                keys(get(recorded, "members")),
                "{ctx}: member order"
            );
            let rmembers = get(recorded, "members")
                .and_then(Value::as_map)
                .expect("members");
            for ((name, m), (_, rm)) in g.members.iter().zip(rmembers) {
                match m {
                    None => assert!(rm.is_nil(), "{ctx}/{name}"),
                    Some(m) => check_member(m, rm, &format!("{ctx}/{name}")),
                }
            }
            for ((name, a), (_, ra)) in g.attributes.iter().zip(
                get(recorded, "attributes")
                    .and_then(Value::as_map)
                    .expect("attrs"),
            ) {
                check_array(a, ra, &format!("{ctx} attr {name}"));
            }
        }
        Member::Dataset(d) => {
            assert_eq!(
                get(recorded, "hdf5_object").and_then(Value::as_str),
                Some("dataset")
            );
            assert_eq!(
                names(&d.attributes),
                keys(get(recorded, "attributes")),
                "{ctx}"
            );
            let shape: Vec<u64> = get(recorded, "shape")
                .and_then(Value::as_array)
                .expect("shape")
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            assert_eq!(d.shape, shape, "{ctx}: shape");
            assert_eq!(
                d.data.is_some(),
                get(recorded, "data").is_some(),
                "{ctx}: inline data"
            );
            if let (Some(a), Some(ra)) = (&d.data, get(recorded, "data")) {
                check_array(a, ra, &format!("{ctx} data"));
            }
        }
        Member::SoftLink { target } => {
            assert_eq!(
                get(recorded, "hdf5_object").and_then(Value::as_str),
                Some("soft_link")
            );
            assert_eq!(
                Some(target.as_str()),
                get(recorded, "target").and_then(Value::as_str)
            );
        }
        other => panic!("{ctx}: unexpected {other:?}"),
    }
}

fn check_path(got: &PathInfo, recorded: &Value, ctx: &str) {
    match got {
        PathInfo::Directory(d) => {
            let files: Vec<String> = d.files.iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(files, keys(get(recorded, "files")), "{ctx}");
            let dirs: Vec<String> = d.directories.iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(dirs, keys(get(recorded, "directories")), "{ctx}");
            assert_eq!(
                Some(d.size),
                get(recorded, "size").and_then(Value::as_u64),
                "{ctx}"
            );
        }
        PathInfo::File(f) => {
            assert_eq!(
                Some(f.size),
                get(recorded, "size").and_then(Value::as_u64),
                "{ctx}"
            );
            assert_eq!(
                Some(f.media_type.as_str()),
                get(recorded, "type").and_then(Value::as_str),
                "{ctx}"
            );
        }
    }
}

/// Plays one interaction through the client; returns whether the sent body was the
/// recorded one byte for byte.
fn play(conn: &Connection, it: &Interaction, ctx: &str) -> bool {
    let key = it.key_path();
    if it.method == "GET" {
        if key == "/msgpack/" {
            // The probe: same request as `build()` sends.
            let r = conn.probe();
            assert_eq!(r.is_ok(), it.status == 200, "{ctx}: {r:?}");
        } else {
            let vpath = key.strip_prefix("/download/").expect("download");
            let mut out = Vec::new();
            conn.download(vpath, &mut out).expect(ctx);
            assert!(out == it.response_body, "{ctx}: download bytes");
        }
        return true;
    }
    let vpath = key.strip_prefix("/msgpack/").expect("msgpack POST");
    let body = it.request_body.as_deref().expect("POST body");
    let req = ObjectRequest::decode_body(body).expect("recorded body is valid");
    let recorded = decode(&it.response_body);
    let result: Result<(), Error> = match (&req.object, &req.slice) {
        (None, _) => conn
            .request_path(vpath)
            .map(|p| check_path(&p, &recorded, ctx)),
        (Some(obj), None) => conn
            .request_object(
                vpath,
                obj,
                req.max_depth.unwrap_or(0),
                req.data_size_limit.unwrap_or(0),
            )
            .map(|m| check_member(&m, &recorded, ctx)),
        (Some(obj), Some(spec)) => conn
            .request_slice(vpath, obj, spec)
            .map(|a| check_array(&a, &recorded, ctx)),
    };
    match result {
        Ok(()) => assert_eq!(it.status, 200, "{ctx}"),
        Err(Error::NotFound { message, .. }) => {
            assert_eq!(it.status, 404, "{ctx}");
            assert_eq!(
                Some(message.as_str()),
                get(&recorded, "error").and_then(Value::as_str)
            );
        }
        Err(e) => panic!("{ctx}: {e}"),
    }
    ObjectRequest::encode_body(&req) == body
}

#[test]
fn every_cassette_interaction_round_trips_through_the_client() {
    let Some(dir) = fixtures_dir() else { return };
    let mut names = Vec::new();
    for module in std::fs::read_dir(dir.join("cassettes")).expect("cassettes dir") {
        let module = module.expect("entry").path();
        for f in std::fs::read_dir(&module).expect("module dir") {
            let f = f.expect("entry").path();
            let file = f
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            if let Some(test) = file.strip_suffix(".msgpack.gz") {
                let m = module.file_name().and_then(|n| n.to_str()).expect("module");
                names.push(format!("{m}/{test}"));
            }
        }
    }
    names.sort();
    assert!(names.len() >= 45, "{} cassettes", names.len());
    let (mut played, mut identical, mut short_form) = (0, 0, 0);
    for name in &names {
        let replay = Replay::start(name).expect("fixtures present");
        let conn = hdfstream::ClientBuilder::new()
            .with_url(replay.base_url())
            .with_retry(hdfstream::RetryConfig::none())
            .with_probe(false)
            .with_progress(false)
            .build()
            .expect("connection");
        for (i, it) in replay.cassette().interactions.clone().iter().enumerate() {
            let same = play(&conn, it, &format!("{name}#{i}"));
            played += 1;
            if same {
                identical += 1;
            } else {
                short_form += 1;
            }
        }
        assert!(
            replay.unmatched().is_empty(),
            "{name}: {:?}",
            replay.unmatched()
        );
        assert!(
            replay.unplayed().is_empty(),
            "{name}: {:?}",
            replay.unplayed()
        );
        assert_eq!(replay.object_mismatches(), Vec::<String>::new(), "{name}");
        // The bodies actually sent were the re-encoded recorded ones.
        for (req, idx) in replay.log() {
            let Some(i) = idx else { continue };
            let it = &replay.cassette().interactions[i];
            if let Some(recorded) = &it.request_body {
                let parsed = ObjectRequest::decode_body(recorded).expect("valid");
                assert_eq!(req.body, parsed.encode_body(), "{name}#{i}");
            }
        }
    }
    println!(
        "{} cassettes, {played} interactions: {identical} byte-identical requests, \
         {short_form} single-run slices in the short form",
        names.len()
    );
    // Only `dset[np.arange(..)]` cassettes use the long single-run form: 4 recordings with
    // one such slice each.
    assert_eq!(short_form, 4);
}
