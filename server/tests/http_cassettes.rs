//! Byte-for-byte conformance with the recorded reference server (the cassettes in
//! `shared/fixtures`): every recorded path request whose answer can be rebuilt from the
//! recording alone (directory listings without subdirectories, file maps, 404 errors,
//! downloads) is replayed against our server over a tree made to match the recording
//! (sparse files with the recorded sizes and modification times), and the response body
//! and key headers must be identical.
//!
//! Skips with a message when the fixtures are absent.

mod http_common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdfstream_server::ServerHandle;
use http_common::*;
use rmpv::Value;

const RECORDED_BASE: &str = "https://localhost:8444/hdfstream/";

fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("HDFSTREAM_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    dir.join("cassettes").is_dir().then_some(dir)
}

struct Interaction {
    method: String,
    /// Path after the base, e.g. `msgpack/EAGLE`.
    path: String,
    request_body: Vec<u8>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn get_key<'a>(map: &'a Value, key: &str) -> &'a Value {
    field(map, key)
}

fn bytes_of(value: &Value) -> Vec<u8> {
    match value {
        Value::Binary(b) => b.clone(),
        Value::String(s) => s.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

fn load(path: &Path) -> Vec<Interaction> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(path).expect("open cassette"))
        .read_to_end(&mut raw)
        .expect("gunzip");
    let cassette = rmpv::decode::read_value(&mut &raw[..]).expect("msgpack cassette");
    let interactions = get_key(&cassette, "interactions")
        .as_array()
        .expect("array");
    interactions
        .iter()
        .map(|i| {
            let req = get_key(i, "request");
            let resp = get_key(i, "response");
            let uri = get_key(req, "uri").as_str().expect("uri");
            let headers = get_key(resp, "headers")
                .as_map()
                .expect("headers")
                .iter()
                .map(|(k, v)| {
                    let value = v.as_array().and_then(|a| a.first()).and_then(Value::as_str);
                    (
                        k.as_str().unwrap_or("").to_ascii_lowercase(),
                        value.unwrap_or("").to_owned(),
                    )
                })
                .collect();
            Interaction {
                method: get_key(req, "method").as_str().expect("method").to_owned(),
                path: uri
                    .strip_prefix(RECORDED_BASE)
                    .expect("recorded base")
                    .to_owned(),
                request_body: bytes_of(get_key(req, "body")),
                status: get_key(get_key(resp, "status"), "code")
                    .as_u64()
                    .expect("code") as u16,
                headers,
                body: bytes_of(get_key(get_key(resp, "body"), "string")),
            }
        })
        .collect()
}

/// What the recordings say a file is.
#[derive(Clone, Debug, PartialEq)]
struct FileFact {
    size: u64,
    mtime_ms: u64,
    contents: Option<Vec<u8>>,
}

fn file_fact(map: &Value) -> FileFact {
    FileFact {
        size: get_key(map, "size").as_u64().expect("size"),
        mtime_ms: get_key(map, "last_modified").as_u64().expect("mtime"),
        contents: None,
    }
}

fn is_directory(value: &Value) -> bool {
    value
        .as_map()
        .is_some_and(|m| m.iter().any(|(k, _)| k.as_str() == Some("directories")))
}

#[test]
fn path_requests_match_the_recorded_server_byte_for_byte() {
    let Some(fixtures) = fixtures() else {
        println!("SKIP: fixtures not found (set HDFSTREAM_FIXTURES or provide ../shared/fixtures)");
        return;
    };
    let mut interactions = Vec::new();
    for module in ["test_directory_listing", "test_errors"] {
        let dir = fixtures.join("cassettes").join(module);
        let mut names: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("cassette dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for name in names {
            interactions.extend(load(&name));
        }
    }

    // Facts: files (from file maps, flat listings and downloads) and which listings are flat.
    let mut files: BTreeMap<String, FileFact> = BTreeMap::new();
    let mut replayable = Vec::new();
    for i in &interactions {
        let Some(vpath) = i
            .path
            .strip_prefix("msgpack/")
            .or(i.path.strip_prefix("download/"))
        else {
            continue;
        };
        let vpath = vpath.trim_end_matches('/').to_owned();
        if i.status == 404 {
            replayable.push(i);
            continue;
        }
        if i.status != 200 {
            continue;
        }
        if i.path.starts_with("download/") {
            let fact = files
                .get_mut(&vpath)
                .expect("downloaded file has a file map");
            fact.contents = Some(i.body.clone());
            replayable.push(i);
            continue;
        }
        if i.request_body != [0x80] && !i.request_body.is_empty() {
            continue; // object requests are the HDF5 layer's business
        }
        let value = rmpv::decode::read_value(&mut &i.body[..]).expect("msgpack body");
        if is_directory(&value) {
            let dirs = get_key(&value, "directories").as_map().expect("map");
            if !dirs.is_empty() {
                continue; // sizes of unrecorded subtrees cannot be rebuilt
            }
            for (name, map) in get_key(&value, "files").as_map().expect("files") {
                let name = name.as_str().expect("name");
                let full = if vpath.is_empty() {
                    name.to_owned()
                } else {
                    format!("{vpath}/{name}")
                };
                files.insert(full, file_fact(map));
            }
        } else {
            files.insert(vpath.clone(), file_fact(&value));
        }
        replayable.push(i);
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    for (vpath, fact) in &files {
        let path = tmp.path().join(vpath);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let file = fs::File::create(&path).expect("create");
        match &fact.contents {
            Some(bytes) => fs::write(&path, bytes).expect("write"),
            None => file.set_len(fact.size).expect("sparse size"),
        }
        let file = fs::File::options().write(true).open(&path).expect("reopen");
        file.set_modified(UNIX_EPOCH + Duration::from_millis(fact.mtime_ms))
            .expect("mtime");
    }
    let srv = ServerHandle::start(tmp.path()).expect("server");
    let base = srv.base_url();

    let mut compared = 0;
    for i in &replayable {
        let url = format!("{base}/{}", i.path);
        let ours = match i.method.as_str() {
            "POST" => post(&url, &i.request_body, None),
            _ => get(&url, None),
        };
        let what = format!("{} {}", i.method, i.path);
        assert_eq!(ours.status, i.status, "{what}");
        assert_eq!(ours.body, i.body, "{what}: body differs from the recording");
        for header in ["content-type", "content-disposition"] {
            let recorded = i
                .headers
                .iter()
                .find(|(k, _)| k == header)
                .map(|(_, v)| v.as_str());
            assert_eq!(ours.header(header), recorded, "{what}: {header}");
        }
        compared += 1;
    }
    // The recorded 401: a bad Authorization header on the public probe `GET /msgpack/`.
    let unauthorized: Vec<&Interaction> = interactions.iter().filter(|i| i.status == 401).collect();
    assert_eq!(unauthorized.len(), 1);
    for i in unauthorized {
        let target = format!("{}/{}", base_path(base), i.path);
        let status = raw_status(base, &i.method, &target, "Authorization: DUMMY\r\n", b"");
        assert_eq!(status, 401, "{} {}", i.method, i.path);
        compared += 1;
    }
    println!("compared {compared} recorded interactions byte for byte");
    // Flat listings (2 snapshot directories), file maps, the README download and 404s.
    assert!(
        compared >= 8,
        "only {compared} interactions were replayable"
    );
}
