//! `ServeArgs` (the `hdfstream serve` options), base paths and the embedding helpers.

mod http_common;

use clap::Parser;
use hdfstream_server::{ServeArgs, ServeConfig, ServerError, ServerHandle};
use http_common::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[test]
fn serve_args_map_to_config() {
    let cli = Cli::try_parse_from([
        "serve",
        "/data",
        "--bind",
        "0.0.0.0:9000",
        "--base-path",
        "/api/v1",
        "--max-requests-per-client",
        "3",
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
    ])
    .expect("parse");
    let config = cli.serve.to_config().expect("config");
    assert_eq!(config.root, std::path::PathBuf::from("/data"));
    assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(config.base_path, "/api/v1");
    assert_eq!(config.limits.max_requests_per_client, 3);
    assert_eq!(config.tls.map(|t| t.key), Some("k.pem".into()));

    let timed = Cli::try_parse_from([
        "serve",
        "/data",
        "--header-timeout",
        "2.5",
        "--body-timeout",
        "7",
        "--min-body-rate",
        "0",
        "--send-timeout",
        "0.25",
        "--max-connections",
        "9",
    ])
    .expect("parse");
    let limits = timed.serve.to_config().expect("config").limits;
    assert_eq!(
        limits.header_timeout,
        std::time::Duration::from_millis(2500)
    );
    assert_eq!(limits.body_timeout, std::time::Duration::from_secs(7));
    assert_eq!(limits.min_body_rate, 0);
    assert_eq!(limits.send_timeout, std::time::Duration::from_millis(250));
    assert_eq!(limits.max_connections, 9);
    for bad in ["0", "-1", "soon", "inf", "NaN"] {
        assert!(
            Cli::try_parse_from(["serve", "/data", "--header-timeout", bad]).is_err(),
            "{bad}"
        );
    }

    let defaults = Cli::try_parse_from(["serve", "/data"]).expect("parse");
    assert_eq!(defaults.serve.to_config(), Some(ServeConfig::new("/data")));
    // A certificate without a key, or no directory at all, is refused by the parser.
    assert!(Cli::try_parse_from(["serve", "/data", "--tls-cert", "c.pem"]).is_err());
    assert!(Cli::try_parse_from(["serve"]).is_err());
    let hashing = Cli::try_parse_from(["serve", "--hash-password"]).expect("parse");
    assert!(hashing.serve.hash_password && hashing.serve.to_config().is_none());
}

#[test]
fn base_paths_are_normalised_or_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f.txt"), b"f").expect("write");
    for (given, url_path) in [("", ""), ("/", ""), ("/a/b/", "/a/b")] {
        let mut config = ServeConfig::new(tmp.path());
        config.bind = "127.0.0.1:0".parse().expect("addr");
        config.base_path = given.to_owned();
        let srv = ServerHandle::start_with(config).expect("server");
        assert_eq!(base_path(srv.base_url()), url_path, "{given:?}");
        let answer = get(&format!("{}/download/f.txt", srv.base_url()), None);
        assert_eq!(answer.body, b"f");
    }
    for bad in ["no-slash", "/a//b", "/a/../b", "/{x}"] {
        let mut config = ServeConfig::new(tmp.path());
        config.base_path = bad.to_owned();
        assert!(
            matches!(
                ServerHandle::start_with(config),
                Err(ServerError::BasePath { .. })
            ),
            "{bad}"
        );
    }
    let missing = ServeConfig::new(tmp.path().join("absent"));
    assert!(matches!(
        ServerHandle::start_with(missing),
        Err(ServerError::Root { .. })
    ));
}

#[test]
fn spawn_serves_in_the_current_runtime_and_shuts_down() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("f.txt"), b"abc").expect("write");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut config = ServeConfig::new(tmp.path());
    config.bind = "127.0.0.1:0".parse().expect("addr");
    let server = runtime
        .block_on(hdfstream_server::spawn(config))
        .expect("spawn");
    let url = format!("{}/msgpack/f.txt", server.base_url());
    let answer = std::thread::spawn(move || post(&url, EMPTY_MAP, None))
        .join()
        .expect("client thread");
    assert_eq!(answer.status, 200);
    assert_eq!(field(&answer.msgpack(), "size").as_u64(), Some(3));
    let addr = server.local_addr();
    runtime.block_on(server.shutdown()).expect("clean shutdown");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "listener closed"
    );
}
