//! Directory listings, file maps, downloads and path safety over real sockets.

mod http_common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use hdfstream_server::{ServeConfig, ServerHandle};
use http_common::*;
use rmpv::Value;

/// Modification time given to every test file (the EAGLE snapshot's, from PROTOCOL.md).
const MTIME_MS: u64 = 1_495_808_965_000;

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(UNIX_EPOCH + Duration::from_millis(MTIME_MS))
        .expect("set mtime");
}

const LONG_DIR: &str = "a_directory_name_that_is_long_enough_to_push_tar_entry_names_past_the_hundred_byte_ustar_limit";

fn tree() -> Tree {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    write(&outside.join("secret.txt"), b"outside the root");
    write(&root.join("README"), b"read me\n");
    write(&root.join("a2.hdf5"), &[1u8; 100]);
    write(&root.join("a10.hdf5"), &[2u8; 1000]);
    write(&root.join("b.txt"), b"bee");
    write(&root.join("conf.yml"), b"k: v\n");
    write(&root.join("data.bin"), &(0..=255u8).collect::<Vec<_>>());
    write(&root.join(".hidden"), b"hidden");
    write(&root.join("sub/x.txt"), b"x file contents");
    write(&root.join("sub/deep/y.h5"), &[7u8; 3000]);
    let long = root.join("sub").join(LONG_DIR).join("z.bin");
    write(&long, &[9u8; 513]);
    std::os::unix::fs::symlink(&outside, root.join("escape_dir")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("escape.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(root.join("sub"), root.join("sub/loop")).expect("symlink");
    Tree {
        _tmp: tmp,
        root,
        outside,
    }
}

/// Sum of the sizes of non-hidden regular files below `dir`, not following symlinks
/// (the tree's only symlinks escape or loop, and must not count).
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let meta = fs::symlink_metadata(entry.path()).expect("meta");
        if meta.is_dir() {
            total += du(&entry.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

fn server(tree: &Tree) -> ServerHandle {
    ServerHandle::start(&tree.root).expect("server starts")
}

fn file_map(value: &Value) -> (String, u64, i64) {
    assert_eq!(keys(value), ["type", "size", "last_modified"]);
    (
        field(value, "type").as_str().expect("type").to_owned(),
        field(value, "size").as_u64().expect("size"),
        field(value, "last_modified").as_i64().expect("mtime"),
    )
}

#[test]
fn root_listing_has_protocol_shape_sizes_and_natural_order() {
    let tree = tree();
    let srv = server(&tree);
    let answer = post(&format!("{}/msgpack/", srv.base_url()), EMPTY_MAP, None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/x-msgpack"));
    let listing = answer.msgpack();
    assert_eq!(
        keys(&listing),
        [
            "type",
            "size",
            "description",
            "labels",
            "files",
            "directories"
        ]
    );
    assert_eq!(field(&listing, "type").as_str(), Some("directory"));
    assert_eq!(field(&listing, "size").as_u64(), Some(du(&tree.root)));
    assert!(field(&listing, "description").is_nil());
    assert!(field(&listing, "labels").is_nil());
    let files = field(&listing, "files");
    assert_eq!(
        keys(files),
        [
            "README", "a2.hdf5", "a10.hdf5", "b.txt", "conf.yml", "data.bin"
        ]
    );
    let expected_types = [
        "text/plain;charset=UTF-8",
        "application/x-hdf5",
        "application/x-hdf5",
        "text/plain;charset=UTF-8",
        "application/yaml",
        "application/octet-stream",
    ];
    for ((name, value), media) in files.as_map().expect("map").iter().zip(expected_types) {
        let name = name.as_str().expect("name");
        let (media_type, size, mtime) = file_map(value);
        assert_eq!(media_type, media, "{name}");
        assert_eq!(
            size,
            fs::metadata(tree.root.join(name)).expect("meta").len()
        );
        assert_eq!(mtime, MTIME_MS as i64);
    }
    // Symlinks leaving the root are not listed; `sub` is not expanded at depth 0.
    let dirs = field(&listing, "directories");
    assert_eq!(keys(dirs), ["sub"]);
    assert!(field(dirs, "sub").is_nil());
    // GET form of the same request gives the same bytes.
    let via_get = get(&format!("{}/msgpack/", srv.base_url()), None);
    assert_eq!(via_get.status, 200);
    assert_eq!(via_get.body, answer.body);
}

#[test]
fn max_depth_expands_subdirectories_and_loops_are_skipped() {
    let tree = tree();
    let srv = server(&tree);
    let answer = get(&format!("{}/msgpack/sub?max_depth=1", srv.base_url()), None);
    assert_eq!(answer.status, 200);
    let listing = answer.msgpack();
    assert_eq!(
        field(&listing, "size").as_u64(),
        Some(du(&tree.root.join("sub")))
    );
    assert_eq!(keys(field(&listing, "files")), ["x.txt"]);
    let dirs = field(&listing, "directories");
    // `loop` points back at `sub` itself (an ancestor): not listed, not counted.
    assert_eq!(keys(dirs), [LONG_DIR, "deep"]);
    let deep = field(dirs, "deep");
    assert_eq!(
        keys(deep),
        [
            "type",
            "size",
            "description",
            "labels",
            "files",
            "directories"
        ]
    );
    assert_eq!(field(deep, "size").as_u64(), Some(3000));
    assert_eq!(keys(field(deep, "files")), ["y.h5"]);
    assert_eq!(field(deep, "directories").as_map().map(Vec::len), Some(0));
}

#[test]
fn file_map_trailing_slash_and_unknown_paths() {
    let tree = tree();
    let srv = server(&tree);
    let base = srv.base_url();
    let answer = post(&format!("{base}/msgpack/sub/x.txt"), EMPTY_MAP, None);
    assert_eq!(answer.status, 200);
    let (media, size, mtime) = file_map(&answer.msgpack());
    assert_eq!(
        (media.as_str(), size, mtime),
        ("text/plain;charset=UTF-8", 15, MTIME_MS as i64)
    );

    let plain = post(&format!("{base}/msgpack/sub"), EMPTY_MAP, None);
    let slash = post(&format!("{base}/msgpack/sub/"), EMPTY_MAP, None);
    assert_eq!((plain.status, slash.status), (200, 200));
    assert_eq!(plain.body, slash.body);

    let missing = post(&format!("{base}/msgpack/sub/nope/x"), EMPTY_MAP, None);
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.error_message(),
        "Invalid path specified: sub/nope/x"
    );
    let double = post(&format!("{base}/msgpack/sub//x.txt"), EMPTY_MAP, None);
    assert_eq!(double.status, 404);
    assert_eq!(double.error_message(), "Invalid path specified: sub//x.txt");
    let headers_only = head(&format!("{base}/msgpack/sub"));
    assert_eq!(headers_only.status, 200);
    assert_eq!(
        headers_only.header("content-type"),
        Some("application/x-msgpack")
    );
    assert!(headers_only.body.is_empty());
    let hidden = post(&format!("{base}/msgpack/.hidden"), EMPTY_MAP, None);
    assert_eq!(hidden.status, 404);
    // Still serving.
    assert_eq!(
        post(&format!("{base}/msgpack/"), EMPTY_MAP, None).status,
        200
    );
}

#[test]
fn traversal_attempts_are_refused() {
    let tree = tree();
    let srv = server(&tree);
    let base = srv.base_url();
    let prefix = base_path(base);
    let secret = fs::read(tree.outside.join("secret.txt")).expect("secret");
    for endpoint in ["msgpack", "download"] {
        for target in [
            "../outside/secret.txt",
            "sub/../../outside/secret.txt",
            "%2e%2e/outside/secret.txt",
            "%2E%2E%2Foutside%2Fsecret.txt",
            "sub%2f..%2f..%2foutside%2fsecret.txt",
            "..%5coutside%5csecret.txt",
            "%2foutside/secret.txt",
            "escape.txt",
            "escape_dir/secret.txt",
            "escape_dir",
            "sub/%00",
            "./b.txt",
        ] {
            let status = raw_status(
                base,
                "GET",
                &format!("{prefix}/{endpoint}/{target}"),
                "",
                b"",
            );
            assert_eq!(status, 404, "{endpoint}/{target}");
        }
    }
    // An absolute path in the request target never reaches the file system either.
    let abs = tree.outside.join("secret.txt");
    let status = raw_status(
        base,
        "GET",
        &format!("{prefix}/download/{}", abs.display()),
        "",
        b"",
    );
    assert_eq!(status, 404);
    // The same request through a client that normalises `..` lands outside the endpoints.
    let normalised = get(&format!("{base}/download/../../secret.txt"), None);
    assert_ne!(normalised.body, secret);
    // And the server still works.
    assert_eq!(get(&format!("{base}/download/b.txt"), None).body, b"bee");
}

#[test]
fn bad_requests_get_4xx_and_the_server_keeps_serving() {
    let tree = tree();
    let mut config = ServeConfig::new(&tree.root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.limits.max_body_bytes = 4096;
    let srv = ServerHandle::start_with(config).expect("server");
    let base = srv.base_url();
    let url = format!("{base}/msgpack/");

    let wrong_type = post_typed(
        &url,
        EMPTY_MAP,
        "application/x-msgpack; charset=binary",
        None,
    );
    assert_eq!(wrong_type.status, 415);
    assert_eq!(
        wrong_type.error_message(),
        "POST requests must have content type application/x-msgpack"
    );
    let prefix = base_path(base);
    assert_eq!(
        raw_status(base, "POST", &format!("{prefix}/msgpack/"), "", EMPTY_MAP),
        415
    );

    // Unknown parameter, not a map, and a truncated body: 400 with a msgpack error.
    let unknown = post(
        &url,
        &[0x81, 0xa5, b'b', b'o', b'g', b'u', b's', 0x01],
        None,
    );
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.error_message().contains("bogus"),
        "{}",
        unknown.error_message()
    );
    assert_eq!(post(&url, &[0x93, 1, 2, 3], None).status, 400);
    assert_eq!(post(&url, &[0x82, 0xa6], None).status, 400);
    assert_eq!(get(&format!("{url}?max_depth=abc"), None).status, 400);
    assert_eq!(get(&format!("{url}?max_depth=-1"), None).status, 400);

    // Body over the limit.
    let big = vec![0u8; 8192];
    assert_eq!(post(&url, &big, None).status, 413);

    // Path over 4096 bytes.
    let long = "a/".repeat(2100);
    assert_eq!(post(&format!("{url}{long}"), EMPTY_MAP, None).status, 400);

    // Still serving, and the log saw every request with its status.
    assert_eq!(post(&url, EMPTY_MAP, None).status, 200);
    let statuses: Vec<u16> = srv.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [415, 415, 400, 400, 400, 400, 400, 413, 400, 200]);
}

#[test]
fn file_download_streams_bytes_with_headers() {
    let tree = tree();
    let srv = server(&tree);
    let base = srv.base_url();
    let answer = get(&format!("{base}/download/data.bin"), None);
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        fs::read(tree.root.join("data.bin")).expect("read")
    );
    assert_eq!(answer.header("content-length"), Some("256"));
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        answer.header("content-disposition"),
        Some("attachment; filename=\"data.bin\"")
    );

    let readme = get(&format!("{base}/download/README"), None);
    assert_eq!(
        readme.header("content-type"),
        Some("text/plain;charset=UTF-8")
    );
    assert_eq!(readme.body, b"read me\n");

    let head = head(&format!("{base}/download/a10.hdf5"));
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("1000"));
    assert_eq!(head.header("content-type"), Some("application/x-hdf5"));
    assert!(head.body.is_empty());

    assert_eq!(get(&format!("{base}/download/"), None).status, 400);
    let missing = get(&format!("{base}/download/nope.bin"), None);
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );

    // The log records the exact payload bytes of each request.
    let log = srv.request_log();
    let sizes: Vec<(u16, u64, bool)> = log
        .iter()
        .map(|r| (r.status, r.body_bytes, r.complete))
        .collect();
    assert_eq!(sizes[0], (200, 256, true));
    assert_eq!(sizes[1], (200, 8, true));
    assert_eq!((log[2].method.as_str(), log[2].body_bytes), ("HEAD", 0));
    assert_eq!(log[0].vpath.as_deref(), Some("data.bin"));
}

fn extract(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(body);
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("data");
        out.push((name, data));
    }
    out
}

#[test]
fn directory_download_is_an_exact_length_tar() {
    let tree = tree();
    let srv = server(&tree);
    let base = srv.base_url();
    let answer = get(&format!("{base}/download/sub"), None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/x-tar"));
    assert_eq!(
        answer.header("content-disposition"),
        Some("attachment; filename=\"sub.tar\"")
    );
    let declared: usize = answer
        .header("content-length")
        .expect("length")
        .parse()
        .expect("int");
    assert_eq!(declared, answer.body.len());
    assert_eq!(declared % 10240, 0);
    let mut entries = extract(&answer.body);
    entries.sort();
    // Every regular file below `sub`, read independently; symlinked loops are not followed.
    let mut expected = vec![
        (
            format!("sub/{LONG_DIR}/z.bin"),
            fs::read(tree.root.join("sub").join(LONG_DIR).join("z.bin")).expect("z"),
        ),
        (
            "sub/deep/y.h5".to_owned(),
            fs::read(tree.root.join("sub/deep/y.h5")).expect("y"),
        ),
        (
            "sub/x.txt".to_owned(),
            fs::read(tree.root.join("sub/x.txt")).expect("x"),
        ),
    ];
    expected.sort();
    assert_eq!(entries, expected);

    let head = head(&format!("{base}/download/sub/deep"));
    assert_eq!(
        head.header("content-disposition"),
        Some("attachment; filename=\"sub_deep.tar\"")
    );
    let tar = get(&format!("{base}/download/sub/deep"), None);
    assert_eq!(
        head.header("content-length").map(str::to_owned),
        Some(tar.body.len().to_string())
    );
}
