//! `fuzz_server`: mutated requests against the release server over HTTP (issue 11, part 2).
//!
//! Starts `hdfstream serve` (with users and access files) over a tree it makes with
//! `hdfstream sample`, then sends requests from several keep-alive connections at once:
//! mutated msgpack bodies, query strings, slice strings, paths, headers, framing and HTTP
//! syntax (see `gen.rs` and `mutate.rs`). Each request is judged beforehand by an oracle
//! that does not ask the server (`oracle.rs`).
//!
//! Failures: a 5xx (except the 501/505 HTTP prescribes), a connection closed without an
//! answer to a complete request, no answer within the timeout, the server gone, "panicked"
//! in its log, a failed liveness probe (a slice whose bytes must not change), RSS or
//! descriptors beyond their bounds, and every disagreement with the oracle (2xx for a
//! request it calls invalid, 4xx for one it calls valid; the requests are written to
//! `mismatches.txt` for inspection).
//!
//! ```text
//! fuzz_server [--requests N] [--seed S] [--connections C] [--quick] [--binary PATH]
//!             [--keep] [--show I] [--only CATEGORY]
//! ```
//! The last line is `RESULT {json}` (see `print_result`); the exit status is 1 on any failure.

mod client;
mod msgpack;
mod mutate;
mod oracle;
mod request;
mod site;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdfstream_reliability::{ServerProcess, ToolError, print_result, proc_stats};
use serde_json::json;

use client::{Conn, Failure, Reply};
use oracle::Verdict;
use request::{Ctx, Lane, Plan};
use site::Site;

/// No answer within this long is a hang.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Requests of the full run.
const FULL_REQUESTS: u64 = 1_000_000;
/// Requests of `--quick` (about a minute at the ~4500/s of two shared cores).
const QUICK_REQUESTS: u64 = 250_000;
/// Requests between two liveness probes.
const PROBE_EVERY: u64 = 5_000;
/// End RSS may exceed the RSS at half of the run by at most this (KiB). By then the
/// server's request log (at most 100 000 records and 64 MiB) is full; what remains is the
/// allocator's retention, which rises in steps of up to ~60 MiB when large transient
/// buffers (2 MiB header fields, 1 MiB response pieces) land in fragmented arenas (the 10^6
/// run: 410 MiB at half, 491 MiB at the end, in steps of 54 and 76 MiB). A leak of 300 bytes per
/// request would exceed it.
const RSS_GROWTH_KIB: u64 = 128 << 10;
/// RSS may never exceed the RSS at start by more than this (KiB); the 10^6 run peaked at
/// 491 MiB from 19 MiB.
const RSS_MAX_GROWTH_KIB: u64 = 768 << 10;
/// Source address of the wrong credentials (their per-address limit must not block the
/// right ones, sent from 127.0.0.1).
const ABUSE_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Failures and mismatches kept with their request.
const KEPT: usize = 200;

struct Args {
    requests: u64,
    seed: u64,
    connections: usize,
    binary: PathBuf,
    keep: bool,
    show: Option<u64>,
    only: Option<String>,
}

fn parse_args() -> Result<Args, ToolError> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let mut args = Args {
        requests: FULL_REQUESTS,
        seed: 1,
        connections: 16,
        binary: target.join("release/hdfstream"),
        keep: false,
        show: None,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, name: &str| -> Result<u64, ToolError> {
        v.and_then(|v| v.replace('_', "").parse().ok())
            .ok_or_else(|| ToolError::new(format!("{name} needs a number")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--requests" => args.requests = number(it.next(), "--requests")?,
            "--seed" => args.seed = number(it.next(), "--seed")?,
            "--connections" => {
                args.connections = number(it.next(), "--connections")?.clamp(1, 128) as usize
            }
            "--quick" => args.requests = QUICK_REQUESTS,
            "--binary" => {
                args.binary = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or_else(|| ToolError::new("--binary needs a path"))?
            }
            "--keep" => args.keep = true,
            "--show" => args.show = Some(number(it.next(), "--show")?),
            "--only" => {
                let name = it.next().unwrap_or_default();
                if !request::CATEGORIES.iter().any(|(c, _)| *c == name) {
                    return Err(ToolError::new(format!(
                        "--only takes one of {:?}",
                        request::CATEGORIES.map(|(c, _)| c)
                    )));
                }
                args.only = Some(name);
            }
            other => {
                return Err(ToolError::new(format!(
                    "unknown argument {other}; usage: fuzz_server [--requests N] [--seed S] \
                     [--connections C] [--quick] [--binary PATH] [--keep] [--show I] [--only CATEGORY]"
                )));
            }
        }
    }
    Ok(args)
}

/// Counts of one run.
#[derive(Default)]
struct Stats {
    by_status: BTreeMap<u16, u64>,
    by_category: BTreeMap<&'static str, u64>,
    by_verdict: BTreeMap<&'static str, u64>,
    closed_as_allowed: u64,
    server_errors: u64,
    drops: u64,
    hangs: u64,
    mismatches: u64,
    stale_retries: u64,
    failures: Vec<String>,
    mismatch_kinds: BTreeMap<String, u64>,
    mismatch_log: Vec<String>,
}

/// The request as text for a report (escaped, cut at 1500 bytes).
fn shown(wire: &[u8]) -> String {
    let cut = &wire[..wire.len().min(1500)];
    let mut text = String::new();
    for chunk in cut.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => text.push_str("\\r"),
                '\n' => text.push_str("\\n\n"),
                c if c.is_control() => text.push_str(&format!("\\x{:02x}", c as u32)),
                c => text.push(c),
            }
        }
        for b in chunk.invalid() {
            text.push_str(&format!("\\x{b:02x}"));
        }
    }
    if wire.len() > cut.len() {
        text.push_str(&format!("... ({} bytes)", wire.len()));
    }
    text
}

/// The connections of one worker.
struct Worker {
    addr: SocketAddr,
    keep: Option<(Conn, bool)>,
    abuse: Option<(Conn, bool)>,
}

impl Worker {
    /// Send `plan` on its lane and read the answer. A keep-alive connection the server has
    /// closed meanwhile (after a `Connection: close` it did not announce, say) is retried
    /// once on a new one, as clients do; a new connection is never retried.
    fn exchange(
        &mut self,
        plan: &Plan,
        refused: bool,
        stats: &mut Stats,
    ) -> Result<Reply, Failure> {
        // Credentials the server refuses count against their address; they come from the
        // second one.
        let lane = match plan.lane {
            Lane::Keep if refused => Lane::Abuse,
            lane => lane,
        };
        let source = match lane {
            Lane::Fresh { half_close } => {
                let from = refused.then_some(ABUSE_SOURCE);
                let mut conn = connect(self.addr, from)?;
                let _ = conn.send(&plan.wire);
                if half_close {
                    conn.shutdown_write();
                }
                return conn.read_reply(plan.head, true);
            }
            Lane::Keep => None,
            Lane::Abuse => Some(ABUSE_SOURCE),
        };
        for attempt in 0..2 {
            let slot = if source.is_some() {
                &mut self.abuse
            } else {
                &mut self.keep
            };
            let kept = slot.take().filter(|(conn, _)| !conn.closed_by_peer());
            let (mut conn, reused) = match kept {
                Some(found) => found,
                None => (connect(self.addr, source)?, false),
            };
            let sent = conn.send(&plan.wire);
            let reply = match sent {
                Ok(()) => conn.read_reply(plan.head, true),
                Err(e) => Err(Failure::Io {
                    error: e.to_string(),
                    partial: false,
                }),
            };
            match reply {
                Ok(reply) => {
                    if !reply.close && !plan.closes {
                        *slot = Some((conn, true));
                    }
                    return Ok(reply);
                }
                Err(Failure::Closed { partial: false } | Failure::Io { partial: false, .. })
                    if reused && attempt == 0 =>
                {
                    stats.stale_retries += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Failure::Closed { partial: false })
    }
}

fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Result<Conn, Failure> {
    Conn::connect(addr, source, TIMEOUT).map_err(|e| Failure::Io {
        error: format!("connect: {e}"),
        partial: false,
    })
}

/// Judge one answer (or its absence) against the verdict.
fn record(
    stats: &mut Stats,
    index: u64,
    plan: &Plan,
    verdict: (Verdict, &'static str),
    outcome: Result<Reply, Failure>,
) {
    *stats.by_category.entry(plan.category).or_default() += 1;
    *stats
        .by_verdict
        .entry(match verdict.0 {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Either => "either",
        })
        .or_default() += 1;
    let describe = |what: &str| {
        format!(
            "#{index} [{}] {what}; oracle: {:?} ({})\n{}\n",
            plan.category,
            verdict.0,
            verdict.1,
            shown(&plan.wire)
        )
    };
    let fail = |stats: &mut Stats, what: String| {
        if stats.failures.len() < KEPT {
            stats.failures.push(describe(&what));
        }
    };
    match outcome {
        Ok(reply) => {
            *stats.by_status.entry(reply.status).or_default() += 1;
            let mismatch = match reply.status {
                200..=299 => verdict.0 == Verdict::Invalid,
                400..=499 => verdict.0 == Verdict::Valid,
                s if plan.also_ok.contains(&s) => verdict.0 == Verdict::Valid,
                s @ 500..=599 => {
                    stats.server_errors += 1;
                    fail(stats, format!("server error {s}"));
                    false
                }
                s => {
                    stats.server_errors += 1;
                    fail(stats, format!("unexpected status {s}"));
                    false
                }
            };
            if mismatch {
                stats.mismatches += 1;
                let kind = format!(
                    "{} for {:?} ({}) [{}]",
                    reply.status, verdict.0, verdict.1, plan.category
                );
                *stats.mismatch_kinds.entry(kind).or_default() += 1;
                if stats.mismatch_log.len() < KEPT {
                    stats.mismatch_log.push(describe(&format!(
                        "status {} {:?}",
                        reply.status,
                        String::from_utf8_lossy(&reply.body[..reply.body.len().min(120)])
                    )));
                }
            }
        }
        Err(Failure::Closed { partial: false } | Failure::Io { partial: false, .. })
            if plan.allow_close =>
        {
            stats.closed_as_allowed += 1;
        }
        Err(Failure::Timeout) => {
            stats.hangs += 1;
            fail(stats, "no answer within the timeout".to_owned());
        }
        Err(e) => {
            stats.drops += 1;
            fail(stats, e.to_string());
        }
    }
}

/// The liveness probe: rows 0..2 of the gas coordinates.
struct Probe {
    addr: SocketAddr,
    wire: Vec<u8>,
    expected: Vec<u8>,
    conn: Option<Conn>,
}

impl Probe {
    fn new(addr: SocketAddr, base: &str, site: &Site) -> Result<Probe, ToolError> {
        let body = hdfstream_protocol::ObjectRequest::slice(
            "/PartType0/Coordinates",
            hdfstream_protocol::SliceSpec::parse_str("0:2,0:3")
                .map_err(|e| ToolError::new(e.message))?,
        )
        .encode_body();
        let mut wire = format!(
            "POST {base}/msgpack/sample/snap_0000.hdf5 HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-msgpack\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        wire.extend(body);
        let mut probe = Probe {
            addr,
            wire,
            expected: Vec::new(),
            conn: None,
        };
        let first = probe
            .ask()
            .map_err(|e| ToolError::new(format!("first probe: {e}")))?;
        // The answer's values against libhdf5's.
        let want = site.coordinates(6)?;
        match hdfstream_protocol::decode_array(&first) {
            Ok(hdfstream_protocol::ArrayData::Nd(nd))
                if nd.shape == [2, 3]
                    && matches!(&nd.data, hdfstream_protocol::TypedBuffer::F64(v) if *v == want) => {
            }
            other => {
                return Err(ToolError::new(format!(
                    "first probe: not the coordinates libhdf5 reads: {other:?}"
                )));
            }
        }
        probe.expected = first;
        Ok(probe)
    }

    fn ask(&mut self) -> Result<Vec<u8>, String> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => Conn::connect(self.addr, None, TIMEOUT).map_err(|e| e.to_string())?,
        };
        conn.send(&self.wire).map_err(|e| e.to_string())?;
        let reply = conn.read_reply(false, true).map_err(|e| e.to_string())?;
        if reply.status != 200 {
            return Err(format!("status {}", reply.status));
        }
        if !reply.close {
            self.conn = Some(conn);
        }
        Ok(reply.body)
    }

    /// Whether the server answers the probe byte for byte as at the start.
    fn check(&mut self) -> Result<(), String> {
        let body = self.ask().or_else(|_| {
            self.conn = None;
            self.ask()
        })?;
        if body == self.expected {
            Ok(())
        } else {
            Err(format!("probe answer changed ({} bytes)", body.len()))
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fuzz_server: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, ToolError> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("fuzz_server-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ToolError::new(format!("cannot create {}: {e}", dir.display())))?;
    let site = Site::create(&dir, &args.binary)?;
    if let Some(index) = args.show {
        let ctx = Ctx::new(&site, "127.0.0.1:8080".into(), "/hdfstream".into());
        let plan = request::generate(&ctx, args.seed, index, args.only.as_deref());
        let verdict = oracle::judge(&site, "/hdfstream", &plan);
        println!(
            "#{index} [{}] lane {:?}, oracle {:?} ({})\n{}",
            plan.category,
            plan.lane,
            verdict.0,
            verdict.1,
            shown(&plan.wire)
        );
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(true);
    }
    let ok = fuzz(&args, &site, &dir)?;
    if ok && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {}", dir.display());
    }
    Ok(ok)
}

/// What the monitor measured.
#[derive(Default)]
struct Health {
    rss_start: u64,
    rss_half: u64,
    rss_max: u64,
    rss_end: u64,
    fds_start: u64,
    fds_end: u64,
    probes: u64,
    probe_failures: Vec<String>,
    server_alive: bool,
}

fn fuzz(args: &Args, site: &Site, dir: &Path) -> Result<bool, ToolError> {
    let log = dir.join("server.log");
    let users = dir.join("users").display().to_string();
    let access = dir.join("access").display().to_string();
    let per_client = (args.connections * 2 + 8).to_string();
    let mut server = ServerProcess::start_logged(
        &args.binary,
        &site.root,
        &[
            "--users",
            &users,
            "--access",
            &access,
            "--max-requests-per-client",
            &per_client,
        ],
        &log,
        "warn",
    )?;
    let url = server.base_url().to_owned();
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let (host, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host
        .parse()
        .map_err(|_| ToolError::new(format!("server URL without an address: {url}")))?;
    let base = base.to_owned();
    Conn::connect(addr, Some(ABUSE_SOURCE), TIMEOUT)
        .map_err(|e| ToolError::new(format!("cannot connect from {ABUSE_SOURCE}: {e}")))?;
    let mut probe = Probe::new(addr, &base, site)?;
    let pid = server.pid();
    let stats0 = proc_stats(pid)?;
    let mut health = Health {
        rss_start: stats0.rss_kib,
        rss_max: stats0.rss_kib,
        fds_start: stats0.fds,
        server_alive: true,
        ..Health::default()
    };
    eprintln!(
        "fuzz_server: {} requests, seed {}, {} connections, server {url} (pid {pid}), RSS {} KiB",
        args.requests, args.seed, args.connections, stats0.rss_kib
    );

    let ctx = Ctx::new(site, host.to_owned(), base.clone());
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let totals = Mutex::new(Stats::default());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.connections {
            scope.spawn(|| {
                let mut worker = Worker {
                    addr,
                    keep: None,
                    abuse: None,
                };
                let mut stats = Stats::default();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= args.requests || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let plan = request::generate(&ctx, args.seed, index, args.only.as_deref());
                    let verdict = oracle::judge(site, &base, &plan);
                    let refused = verdict.1 == oracle::REFUSED_CREDENTIALS;
                    let outcome = worker.exchange(&plan, refused, &mut stats);
                    record(&mut stats, index, &plan, verdict, outcome);
                }
                merge(&mut totals.lock().unwrap_or_else(|e| e.into_inner()), stats);
            });
        }
        // The monitor: a probe and /proc figures every PROBE_EVERY requests.
        let mut last = 0;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let done = next.load(Ordering::Relaxed).min(args.requests);
            let finished = done >= args.requests || stop.load(Ordering::Relaxed);
            if done >= last + PROBE_EVERY || finished {
                last = done;
                monitor(
                    &mut server,
                    &mut probe,
                    &mut health,
                    done,
                    args.requests,
                    &stop,
                );
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!(
                    "  {done} requests, {:.0}/s, RSS {} KiB, max {} KiB",
                    done as f64 / elapsed,
                    health.rss_end,
                    health.rss_max
                );
            }
            if finished {
                break;
            }
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    let sent: u64 = stats.by_category.values().sum();
    // Once every client connection is closed, the server's descriptors must be back.
    std::thread::sleep(Duration::from_millis(500));
    let final_check = probe.check();
    probe.conn = None;
    std::thread::sleep(Duration::from_millis(500));
    if let Err(e) = final_check {
        health.probe_failures.push(format!("final probe: {e}"));
    }
    health.server_alive = server.alive();
    if let Ok(s) = proc_stats(pid) {
        health.fds_end = s.fds;
        health.rss_end = s.rss_kib;
        health.rss_max = health.rss_max.max(s.rss_kib);
    }
    drop(server);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let panics = log_text.matches("panicked").count() as u64;

    let report = dir.join("mismatches.txt");
    let mut text = String::new();
    for (kind, n) in &stats.mismatch_kinds {
        text.push_str(&format!("{n:>8}  {kind}\n"));
    }
    text.push('\n');
    for entry in stats.failures.iter().chain(&stats.mismatch_log) {
        text.push_str(entry);
        text.push('\n');
    }
    let _ = std::fs::write(&report, &text);

    let rss_ok = health.rss_end <= health.rss_half.max(health.rss_start) + RSS_GROWTH_KIB
        && health.rss_max <= health.rss_start + RSS_MAX_GROWTH_KIB;
    let fds_ok = health.fds_end <= health.fds_start + 4;
    let failures = stats.server_errors
        + stats.drops
        + stats.hangs
        + stats.mismatches
        + panics
        + health.probe_failures.len() as u64
        + u64::from(!health.server_alive)
        + u64::from(!rss_ok)
        + u64::from(!fds_ok)
        + u64::from(sent < args.requests);
    for f in stats.failures.iter().take(10) {
        eprintln!("FAILED {f}");
    }
    for (kind, n) in stats.mismatch_kinds.iter().take(30) {
        eprintln!("MISMATCH {n:>7}  {kind}");
    }
    if !rss_ok {
        eprintln!(
            "FAILED RSS start {} KiB, half {} KiB, max {} KiB, end {} KiB",
            health.rss_start, health.rss_half, health.rss_max, health.rss_end
        );
    }
    if !fds_ok {
        eprintln!(
            "FAILED descriptors: {} at start, {} at the end",
            health.fds_start, health.fds_end
        );
    }
    for f in &health.probe_failures {
        eprintln!("FAILED {f}");
    }
    if panics > 0 {
        eprintln!("FAILED server log has {panics} panics:\n{log_text}");
    }
    if failures > 0 {
        eprintln!("details: {}", report.display());
    }
    let by_status: BTreeMap<String, u64> = stats
        .by_status
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    let count = |range: std::ops::RangeInclusive<u16>| -> u64 {
        stats
            .by_status
            .iter()
            .filter(|(s, _)| range.contains(s))
            .map(|(_, n)| n)
            .sum()
    };
    print_result(
        "fuzz_server",
        json!({
            "requests": sent,
            "seed": args.seed,
            "connections": args.connections,
            "status_2xx": count(200..=299),
            "status_4xx": count(400..=499),
            "status_5xx": count(500..=599),
            "by_status": by_status,
            "by_category": stats.by_category,
            "oracle": stats.by_verdict,
            "closed_as_allowed": stats.closed_as_allowed,
            "stale_retries": stats.stale_retries,
            "failures": failures,
            "server_errors": stats.server_errors,
            "panics": panics,
            "drops": stats.drops,
            "hangs": stats.hangs,
            "mismatches": stats.mismatches,
            "probes": health.probes,
            "probe_failures": health.probe_failures.len(),
            "server_alive": health.server_alive,
            "rss_start_kib": health.rss_start,
            "rss_half_kib": health.rss_half,
            "rss_max_kib": health.rss_max,
            "rss_end_kib": health.rss_end,
            "rss_ok": rss_ok,
            "rss_bound": format!(
                "end <= half + {} MiB, max <= start + {} MiB",
                RSS_GROWTH_KIB >> 10,
                RSS_MAX_GROWTH_KIB >> 10
            ),
            "fds_ok": fds_ok,
            "fds_start": health.fds_start,
            "fds_end": health.fds_end,
            "seconds": (elapsed * 10.0).round() / 10.0,
            "rate_per_s": (sent as f64 / elapsed).round(),
        }),
    );
    Ok(failures == 0)
}

fn monitor(
    server: &mut ServerProcess,
    probe: &mut Probe,
    health: &mut Health,
    done: u64,
    total: u64,
    stop: &AtomicBool,
) {
    if !server.alive() {
        health.server_alive = false;
        health
            .probe_failures
            .push(format!("server exited after {done} requests"));
        stop.store(true, Ordering::Relaxed);
        return;
    }
    health.probes += 1;
    if let Err(e) = probe.check() {
        health
            .probe_failures
            .push(format!("probe after {done} requests: {e}"));
    }
    if let Ok(s) = proc_stats(server.pid()) {
        health.rss_max = health.rss_max.max(s.rss_kib);
        health.rss_end = s.rss_kib;
        if health.rss_half == 0 && done * 2 >= total {
            health.rss_half = s.rss_kib;
        }
    }
}

fn merge(total: &mut Stats, part: Stats) {
    for (k, v) in part.by_status {
        *total.by_status.entry(k).or_default() += v;
    }
    for (k, v) in part.by_category {
        *total.by_category.entry(k).or_default() += v;
    }
    for (k, v) in part.by_verdict {
        *total.by_verdict.entry(k).or_default() += v;
    }
    for (k, v) in part.mismatch_kinds {
        *total.mismatch_kinds.entry(k).or_default() += v;
    }
    total.closed_as_allowed += part.closed_as_allowed;
    total.server_errors += part.server_errors;
    total.drops += part.drops;
    total.hangs += part.hangs;
    total.mismatches += part.mismatches;
    total.stale_retries += part.stale_retries;
    let room = KEPT.saturating_sub(total.failures.len());
    total.failures.extend(part.failures.into_iter().take(room));
    let room = KEPT.saturating_sub(total.mismatch_log.len());
    total
        .mismatch_log
        .extend(part.mismatch_log.into_iter().take(room));
}
