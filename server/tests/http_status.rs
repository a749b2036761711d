//! `<base>/status`: who may see it, and that its counters follow the requests served.

mod http_common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hdfstream_server::sample::{SampleOptions, write_sample};
use hdfstream_server::{ServeConfig, ServerHandle};
use http_common::{get, host_port};
use serde_json::Value;

fn start(root: &std::path::Path, allow: &[&str]) -> ServerHandle {
    let mut config = ServeConfig::new(root);
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.status_allow = allow
        .iter()
        .map(|a| a.parse::<IpAddr>().expect("address"))
        .collect();
    ServerHandle::start_with(config).expect("server")
}

/// GET `target` from the source address `from` over a raw connection; the status code and
/// the body.
fn get_from(from: &str, base_url: &str, target: &str) -> (u16, String) {
    let server: SocketAddr = host_port(base_url).parse().expect("server address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let std_stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from.parse().expect("source"), 0))
            .expect("bind the source address");
        socket.connect(server).await.expect("connect")
    });
    let mut stream = std_stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let head = format!("GET {target} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn status_json(handle: &ServerHandle) -> Value {
    let answer = get(&format!("{}/status?format=json", handle.base_url()), None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    serde_json::from_slice(&answer.body).expect("status JSON")
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {value}"))
}

/// Wait until only the caller's own next request can be in flight.
fn settle(handle: &ServerHandle) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while handle.log().in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(handle.log().in_flight(), 0, "requests still in flight");
}

#[test]
fn only_allowed_addresses_see_the_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local = start(dir.path(), &["127.0.0.1", "::1"]);
    let (status, body) = get_from("127.0.0.1", local.base_url(), "/hdfstream/status");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<h1>hdfstream status</h1>"), "{body}");
    assert!(body.contains("open HDF5 files"), "{body}");
    // Loopback, but not an allowed address.
    let (status, body) = get_from("127.0.0.2", local.base_url(), "/hdfstream/status");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--status-allow"), "{body}");
    assert!(!body.contains("requests served"), "{body}");

    // An allow-list of 127.0.0.2 alone turns the answers round.
    let other = start(dir.path(), &["127.0.0.2"]);
    assert_eq!(
        get_from("127.0.0.2", other.base_url(), "/hdfstream/status").0,
        200
    );
    assert_eq!(
        get_from(
            "127.0.0.1",
            other.base_url(),
            "/hdfstream/status?format=json"
        )
        .0,
        403
    );
    // No address: the page is off.
    let off = start(dir.path(), &[]);
    assert_eq!(
        get_from("127.0.0.1", off.base_url(), "/hdfstream/status").0,
        404
    );
}

#[test]
fn the_counters_follow_the_requests_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_sample(
        dir.path(),
        &SampleOptions {
            particles: 20_000,
            files: 1,
            seed: 7,
        },
    )
    .expect("sample");
    // A 32 MB dataset, for a response that outlasts the socket buffers.
    let big = hdf5_metno::File::create(dir.path().join("big.hdf5")).expect("create");
    let values: Vec<f64> = (0..1u32 << 22).map(f64::from).collect();
    big.new_dataset::<f64>()
        .shape(values.len())
        .create("Values")
        .expect("dataset")
        .write_raw(&values)
        .expect("write");
    drop(big);
    let started = Instant::now();
    let handle = start(dir.path(), &["127.0.0.1"]);
    let base = handle.base_url().to_owned();

    settle(&handle);
    let before_answer = get(&format!("{base}/status?format=json"), None);
    let before: Value = serde_json::from_slice(&before_answer.body).expect("JSON");
    assert_eq!(
        count(&before, "requests_in_flight"),
        1,
        "only itself: {before}"
    );

    // 4 threads × 10 data reads, then 5 requests for a file that does not exist.
    let mut bytes: u64 = before_answer.body.len() as u64;
    let urls: Vec<String> = (0..4)
        .map(|t| {
            format!(
                "{base}/msgpack/snap_0000.hdf5?object=/PartType0/Masses&slice={}:{}",
                t * 1000,
                t * 1000 + 5000
            )
        })
        .collect();
    let threads: Vec<_> = urls
        .into_iter()
        .map(|url| {
            std::thread::spawn(move || {
                let mut sent = 0u64;
                for _ in 0..10 {
                    let answer = get(&url, None);
                    assert_eq!(answer.status, 200);
                    sent += answer.body.len() as u64;
                }
                sent
            })
        })
        .collect();
    for thread in threads {
        bytes += thread.join().expect("load thread");
    }
    for i in 0..5 {
        let answer = get(&format!("{base}/msgpack/missing_{i}.hdf5"), None);
        assert_eq!(answer.status, 404);
        bytes += answer.body.len() as u64;
    }
    settle(&handle);
    let after = status_json(&handle);
    // The first status request, 40 reads and 5 misses ended between the two snapshots.
    assert_eq!(
        count(&after, "requests_served") - count(&before, "requests_served"),
        46
    );
    assert_eq!(
        count(&after, "bytes_sent") - count(&before, "bytes_sent"),
        bytes
    );
    assert_eq!(
        count(&after, "client_errors") - count(&before, "client_errors"),
        5
    );
    assert_eq!(count(&after, "server_errors"), 0);
    assert_eq!(count(&after, "incomplete_responses"), 0);
    assert_eq!(count(&after, "open_files"), 1);
    assert!(after["uptime_seconds"].as_f64().expect("uptime") > 0.0);
    let slowest = after["slowest_recent"].as_array().expect("slowest list");
    assert_eq!(slowest.len(), hdfstream_server::http::SLOWEST_SHOWN);
    let times: Vec<f64> = slowest
        .iter()
        .map(|r| r["ms"].as_f64().expect("ms"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // No request took longer than the whole test so far.
    assert!(
        times[0] <= started.elapsed().as_secs_f64() * 1e3,
        "{times:?}"
    );
    for r in slowest {
        let path = r["path"].as_str().expect("path");
        assert!(path.starts_with("/hdfstream/"), "{path}");
    }

    // A response the client does not read stays in flight, and the page says so.
    let mut held = TcpStream::connect(host_port(&base)).expect("connect");
    let target = "/hdfstream/msgpack/big.hdf5?object=/Values";
    write!(
        held,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut first = [0u8; 12];
    held.read_exact(&mut first).expect("response head");
    let during = status_json(&handle);
    assert_eq!(count(&during, "requests_in_flight"), 2, "{during}");
    assert_eq!(count(&during, "open_files"), 2, "{during}");
    drop(held);
}

#[test]
fn the_command_line_names_the_allowed_addresses() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: hdfstream_server::ServeArgs,
    }
    let allow = |args: &[&str]| -> Vec<IpAddr> {
        let mut argv = vec!["serve", "/data"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("parse");
        cli.serve.to_config().expect("config").status_allow
    };
    let loopback: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    assert_eq!(allow(&[]), loopback);
    assert_eq!(ServeConfig::new("/data").status_allow, loopback);
    assert_eq!(
        allow(&["--status-allow", "10.0.0.7, ::1"]),
        vec![
            "10.0.0.7".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert!(allow(&["--status-allow", "none"]).is_empty());
    for bad in ["localhost", "10.0.0.300", "", "127.0.0.1,,::1"] {
        assert!(
            Cli::try_parse_from(["serve", "/data", "--status-allow", bad]).is_err(),
            "{bad:?}"
        );
    }
}
