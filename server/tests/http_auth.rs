//! Basic authentication, role-based access rules and hidden directories over real sockets.

mod http_common;

use std::fs;
use std::io::Read;
use std::path::Path;

use hdfstream_server::{ServeConfig, ServerHandle, hash_password};
use http_common::*;

const ALICE: (&str, &str) = ("alice", "wonderland");
const BOB: (&str, &str) = ("bob", "builder");

struct Site {
    _tmp: tempfile::TempDir,
    server: ServerHandle,
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}

/// The users file, hashed once per test binary (Argon2 is slow in debug builds).
fn users_file() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "# test users\n{}:{}:restricted-access,other\n{}:{}:unrelated\n",
            ALICE.0,
            hash_password(ALICE.1).expect("hash"),
            BOB.0,
            hash_password(BOB.1).expect("hash"),
        )
    })
}

/// `top/public/{a.txt, link -> ../restricted}`, `top/restricted/{data.txt, inner/deep.txt}`;
/// alice holds `restricted-access`, bob holds an unrelated role.
fn site() -> Site {
    site_with(|_| {})
}

/// [`site`] with its configuration changed by `change` first.
fn site_with(change: impl FnOnce(&mut ServeConfig)) -> Site {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    write(&root.join("top/public/a.txt"), b"public data");
    write(&root.join("top/restricted/data.txt"), b"restricted data!");
    write(&root.join("top/restricted/inner/deep.txt"), b"deeper");
    std::os::unix::fs::symlink(root.join("top/restricted"), root.join("top/public/link"))
        .expect("symlink");
    let users = tmp.path().join("users");
    fs::write(&users, users_file()).expect("users");
    let access = tmp.path().join("access");
    fs::write(&access, "top/restricted restricted-access\n").expect("access");
    let mut config = ServeConfig::new(&root);
    config.bind = "127.0.0.1:0".parse().expect("addr");
    config.users = Some(users);
    config.access = Some(access);
    change(&mut config);
    let server = ServerHandle::start_with(config).expect("server");
    Site { _tmp: tmp, server }
}

fn listing_dirs(answer: &Answer) -> (Vec<String>, u64) {
    assert_eq!(answer.status, 200);
    let value = answer.msgpack();
    (
        keys(field(&value, "directories")),
        field(&value, "size").as_u64().expect("size"),
    )
}

#[test]
fn restricted_directories_are_hidden_from_listings_and_sizes() {
    let site = site();
    let url = format!("{}/msgpack/top", site.server.base_url());
    let public_size = "public data".len() as u64;
    let restricted_size = ("restricted data!".len() + "deeper".len()) as u64;
    // The `link` symlink resolves into the restricted tree, so it is hidden too.
    let anonymous = listing_dirs(&post(&url, EMPTY_MAP, None));
    assert_eq!(anonymous, (vec!["public".to_owned()], public_size));
    let bob = listing_dirs(&post(&url, EMPTY_MAP, Some(BOB)));
    assert_eq!(bob, (vec!["public".to_owned()], public_size));
    let alice = listing_dirs(&post(&url, EMPTY_MAP, Some(ALICE)));
    assert_eq!(
        alice,
        (
            vec!["public".to_owned(), "restricted".to_owned()],
            // alice also sees the restricted files through `public/link`.
            public_size + 2 * restricted_size
        )
    );
}

#[test]
fn direct_requests_get_401_403_or_200_by_role() {
    let site = site();
    let base = site.server.base_url();
    for path in [
        "msgpack/top/restricted/data.txt",
        "download/top/restricted/data.txt",
    ] {
        let url = format!("{base}/{path}");
        let anonymous = get(&url, None);
        assert_eq!(anonymous.status, 401, "{path}");
        assert_eq!(
            anonymous.header("www-authenticate"),
            Some("Basic realm=\"hdfstream\"")
        );
        assert_eq!(get(&url, Some(BOB)).status, 403, "{path}");
        assert_eq!(get(&url, Some(ALICE)).status, 200, "{path}");
    }
    assert_eq!(
        get(
            &format!("{base}/download/top/restricted/data.txt"),
            Some(ALICE)
        )
        .body,
        b"restricted data!"
    );
    // A symlink from a public directory cannot bypass the rule.
    let via_link = format!("{base}/download/top/public/link/data.txt");
    assert_eq!(get(&via_link, None).status, 401);
    assert_eq!(get(&via_link, Some(BOB)).status, 403);
    assert_eq!(get(&via_link, Some(ALICE)).status, 200);
}

#[test]
fn wrong_or_malformed_credentials_get_401_everywhere() {
    let site = site();
    let base = site.server.base_url();
    let root = format!("{base}/msgpack/");
    let wrong = get(&root, Some((ALICE.0, "wrong password")));
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.header("www-authenticate"),
        Some("Basic realm=\"hdfstream\"")
    );
    assert!(
        wrong
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert_eq!(get(&root, Some(("nobody", "x"))).status, 401);
    let prefix = base_path(base);
    for header in [
        "Authorization: DUMMY\r\n",
        "Authorization: Basic !!!notbase64\r\n",
        "Authorization: Bearer abc\r\n",
    ] {
        assert_eq!(
            raw_status(base, "GET", &format!("{prefix}/msgpack/"), header, b""),
            401
        );
    }
    // Right credentials, repeated (the second is answered from the verification cache).
    assert_eq!(get(&root, Some(ALICE)).status, 200);
    assert_eq!(get(&root, Some(ALICE)).status, 200);
    let log = site.server.request_log();
    assert_eq!(log.last().and_then(|r| r.user.as_deref()), Some("alice"));
    assert_eq!(
        log.first().map(|r| (r.status, r.user.clone())),
        Some((401, None))
    );
}

#[test]
fn repeated_wrong_credentials_get_429_without_a_password_check() {
    let site = site_with(|c| c.limits.max_failed_logins = 3);
    let root = format!("{}/msgpack/", site.server.base_url());
    for _ in 0..3 {
        assert_eq!(get(&root, Some((ALICE.0, "guess"))).status, 401);
    }
    // The address has used up its failures: credentials, right or wrong, now get 429 with
    // the rest of the minute to wait; a request without credentials is still served.
    let blocked = get(&root, Some((ALICE.0, "guess again")));
    assert_eq!(blocked.status, 429);
    let wait: u64 = blocked
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert_eq!(get(&root, Some(ALICE)).status, 429);
    assert_eq!(get(&root, None).status, 200);
    // The 429s were answered without the password check: none of them is logged as a user.
    let log = site.server.request_log();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429, 200]);
    assert!(log.iter().all(|r| r.user.is_none()));
}

/// An unknown user name costs a password check like a known one with a wrong password, so
/// the time of a 401 does not tell which user names exist (without it, the unknown name is
/// answered in microseconds against milliseconds).
#[test]
fn unknown_user_names_cost_a_password_check() {
    let hash = hash_password("secret").expect("hash");
    let users =
        hdfstream_server::auth::Users::parse(&format!("carol:{hash}:r\n"), Path::new("users"))
            .expect("parse");
    // Every miss costs exactly one Argon2 verification, whether the name exists or not
    // (counted, not timed: the machine's load must not decide the test).
    for (i, name) in ["carol", "mallory", "nobody", "carol", ""]
        .iter()
        .enumerate()
    {
        let before = users.password_checks();
        assert!(users.verify(name, &format!("wrong{i}")).is_none());
        assert_eq!(users.password_checks(), before + 1, "{name:?}");
    }
    // A right password is verified once, then answered from the cache.
    let before = users.password_checks();
    assert!(users.verify("carol", "secret").is_some());
    assert!(users.verify("carol", "secret").is_some());
    assert_eq!(users.password_checks(), before + 1);
}

fn tar_names(body: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(body);
    let mut names = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let mut sink = Vec::new();
        entry.read_to_end(&mut sink).expect("read");
        names.push(entry.path().expect("path").to_string_lossy().into_owned());
    }
    names.sort();
    names
}

#[test]
fn tar_downloads_contain_only_accessible_files() {
    let site = site();
    let url = format!("{}/download/top", site.server.base_url());
    let anonymous = get(&url, None);
    assert_eq!(anonymous.status, 200);
    assert_eq!(tar_names(&anonymous.body), ["top/public/a.txt"]);
    let alice = get(&url, Some(ALICE));
    assert_eq!(
        alice.header("content-length").map(str::to_owned),
        Some(alice.body.len().to_string())
    );
    assert_eq!(
        tar_names(&alice.body),
        [
            "top/public/a.txt",
            "top/public/link/data.txt",
            "top/public/link/inner/deep.txt",
            "top/restricted/data.txt",
            "top/restricted/inner/deep.txt",
        ]
    );
}

#[test]
fn debug_output_never_shows_hashes() {
    let hash = hash_password("secret").expect("hash");
    let users =
        hdfstream_server::auth::Users::parse(&format!("carol:{hash}:r\n"), Path::new("users"))
            .expect("parse");
    let shown = format!("{users:?}");
    assert!(shown.contains("carol"));
    assert!(
        !shown.contains(&hash) && !shown.contains("argon2"),
        "{shown}"
    );
    assert!(users.verify("carol", "secret").is_some());
    assert!(users.verify("carol", "Secret").is_none());
    assert!(users.verify("mallory", "secret").is_none());
    // Malformed files are rejected with the line number.
    let bad = hdfstream_server::auth::Users::parse("x\n", Path::new("users"));
    assert!(matches!(
        bad,
        Err(hdfstream_server::ServerError::UsersFile { line: 1, .. })
    ));
}
