//! Alias configuration file: parsing, validation, default file, resolution, builder use.

#[allow(dead_code)] // each test crate uses a subset of the helpers
mod support;

use hdfstream::config::{Alias, DEFAULT_ALIAS_URL};
use hdfstream::{ClientBuilder, Config, Error};
use support::cassette::synthetic_root_listing;
use support::http::{MockResponse, MockServer};

/// The file the Python client writes when none exists (yaml.dump of its default dict).
const PYTHON_DEFAULT: &str = "aliases:\n  cosma:\n    url: https://dataweb.cosma.dur.ac.uk:8443/hdfstream\n    use_keyring: false\n    user: null\n";

#[test]
fn parses_python_client_default_file() {
    let c = Config::from_yaml_str(PYTHON_DEFAULT).expect("valid");
    assert_eq!(c, Config::default());
    let cosma = &c.aliases["cosma"];
    assert_eq!(cosma.url, DEFAULT_ALIAS_URL);
    assert_eq!((cosma.user.as_deref(), cosma.use_keyring), (None, false));
}

#[test]
fn writes_the_same_layout_as_python() {
    let text = Config::default().to_yaml_string().expect("serialise");
    assert_eq!(text, PYTHON_DEFAULT);
}

#[test]
fn optional_fields_default() {
    let c = Config::from_yaml_str("aliases:\n  local:\n    url: http://localhost:8080/hdfstream\n")
        .expect("valid");
    assert_eq!(
        c.aliases["local"],
        Alias {
            url: "http://localhost:8080/hdfstream".into(),
            use_keyring: false,
            user: None
        }
    );
}

#[test]
fn validation_errors_are_clear() {
    let cases = [
        ("aliases: [1, 2]\n", "aliases"),
        ("aliases:\n  x:\n    user: bob\n", "url"),
        ("aliases:\n  x:\n    url: 42\n", "42"),
        ("aliases:\n  x:\n    url: ftp://host/x\n", "http"),
        (
            "aliases:\n  x:\n    url: http://h/x\n    use_keyring: maybe\n",
            "use_keyring",
        ),
        (
            "aliases:\n  x:\n    url: http://h/x\n    colour: red\n",
            "colour",
        ),
        ("not yaml: [\n", "invalid config"),
    ];
    for (text, needle) in cases {
        let err = Config::from_yaml_str(text).expect_err(text);
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(err.to_string().contains(needle), "{text:?} -> {err}");
    }
}

#[test]
fn load_or_create_writes_default_only_when_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub").join("config.yml");
    let c = Config::load_or_create(&path).expect("created");
    assert_eq!(c, Config::default());
    assert_eq!(
        std::fs::read_to_string(&path).expect("written"),
        PYTHON_DEFAULT
    );
    // An existing file is read, not overwritten.
    std::fs::write(
        &path,
        "aliases:\n  mine:\n    url: https://example.invalid/h\n    user: me\n",
    )
    .expect("write");
    let c = Config::load_or_create(&path).expect("read");
    assert_eq!(c.aliases.keys().collect::<Vec<_>>(), ["mine"]);
    assert_eq!(c.aliases["mine"].user.as_deref(), Some("me"));
}

#[test]
fn load_reports_the_file_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yml");
    std::fs::write(&path, "aliases:\n  x:\n    url: nope\n").expect("write");
    let err = Config::load(&path).expect_err("invalid url");
    match &err {
        Error::Config { path: Some(p), .. } => assert_eq!(p, &path),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("config.yml"));
}

#[test]
fn resolve_alias_and_url() {
    let c = Config::from_yaml_str(
        "aliases:\n  dev:\n    url: https://dev.example.invalid/hdfstream/\n    user: alice\n    use_keyring: true\n",
    )
    .expect("valid");
    let r = c.resolve("dev").expect("alias");
    assert_eq!(r.url, "https://dev.example.invalid/hdfstream");
    assert_eq!((r.user.as_deref(), r.use_keyring), (Some("alice"), true));
    assert_eq!(r.alias.as_deref(), Some("dev"));
    let u = c.resolve("http://other.invalid:81/h/").expect("url");
    assert_eq!(
        (u.url.as_str(), u.user, u.alias),
        ("http://other.invalid:81/h", None, None)
    );
    let err = c.resolve("unknown").expect_err("neither");
    assert!(err.to_string().contains("dev"), "{err}");
}

#[test]
fn builder_resolves_alias_from_injected_config_path() {
    let server = MockServer::start(|_| {
        MockResponse::new(200, "application/x-msgpack", synthetic_root_listing())
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        format!(
            "aliases:\n  test:\n    url: {}/hdfstream\n    user: alias-user\n",
            server.url()
        ),
    )
    .expect("write");
    // Explicit credentials override the alias user.
    let c = ClientBuilder::new()
        .with_alias("test")
        .with_config_path(&path)
        .with_credentials("explicit", "pw")
        .build()
        .expect("alias resolves and probe passes");
    assert_eq!(c.base_url(), format!("{}/hdfstream", server.url()));
    assert_eq!(c.user(), Some("explicit"));
    // base64("explicit:pw")
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some("Basic ZXhwbGljaXQ6cHc=")
    );
    // The alias user alone has no password: a clear configuration error, no request.
    let err = ClientBuilder::new()
        .with_alias("test")
        .with_config_path(&path)
        .build()
        .expect_err("no password");
    assert!(err.to_string().contains("alias-user"), "{err}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn builder_with_injected_config_value() {
    let mut cfg = Config::default();
    cfg.aliases.insert(
        "x".into(),
        Alias {
            url: "http://127.0.0.1:9/y".into(),
            use_keyring: false,
            user: None,
        },
    );
    let c = ClientBuilder::new()
        .with_alias("x")
        .with_config(cfg)
        .with_probe(false)
        .build()
        .expect("resolved");
    assert_eq!(c.base_url(), "http://127.0.0.1:9/y");
    let err = ClientBuilder::new()
        .with_alias("nope")
        .with_config(Config::default())
        .with_probe(false)
        .build()
        .expect_err("unknown alias");
    assert!(err.to_string().contains("cosma"), "{err}");
}
