//! Seeded, structure-aware mutation fuzzer of the client's response decoders (issue 11,
//! part 1): every input goes through `hdfstream_reliability::fuzz::check_input`, inside
//! `catch_unwind`, under a watchdog and a counting allocator.
//!
//! ```text
//! fuzz_decoders [--inputs N] [--max-seconds S] [--seed S] [--corpus DIR] [--quick]
//!               [--threads T] [--time-limit-ms MS] [--max-len BYTES] [--save DIR]
//! fuzz_decoders --replay HEX | --replay-file PATH
//! fuzz_decoders --export-seeds DIR [--corpus DIR]
//! ```
//!
//! A full run is 10^7 inputs; `--quick` is 300,000 inputs or 40 s, whichever comes first
//! (`--max-seconds` stops any run early; the RESULT line counts the inputs done).
//!
//! Seeds: the response bodies of the cassettes in `--corpus DIR` (default: the shared
//! fixtures' `cassettes/`) and responses made with the protocol crate's encoders. Inputs
//! are mutants of seeds and of earlier mutants that some decoder accepted. A panic, a
//! consistency defect or an input over the allocation bound is printed with its index and
//! the input as hex (replay it with `--replay`), and saved to `--save DIR`; an input that
//! uses more than the time limit of CPU (default 10 s; or six times it on the wall clock)
//! is a hang: printed, and the run stops. The last line
//! is `RESULT {json}`; the exit status is non-zero if anything was found.
//!
//! `--export-seeds DIR` writes the seeds as files (a starting corpus for the cargo-fuzz
//! targets in `fuzz/`; keep it outside the repository: the cassettes may not be copied
//! into it).

use std::collections::HashMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdfstream_reliability::fuzz::alloc::{self, CountingAlloc};
use hdfstream_reliability::fuzz::{
    Outcome, bound_for, check_input, corpus, from_hex, mutate, to_hex,
};
use hdfstream_reliability::{Rng, ToolError, print_result};
use serde_json::json;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Inputs of a full run.
const FULL_INPUTS: u64 = 10_000_000;
/// Inputs of a `--quick` run (about 30 s in a release build) ...
const QUICK_INPUTS: u64 = 300_000;
/// ... and its time limit (a dev-profile build gets through some 20,000).
const QUICK_SECONDS: u64 = 40;
/// Findings printed in full (all are counted, and saved with `--save`).
const PRINT_LIMIT: u64 = 10;
/// Longest seed used (mutants are cut to `--max-len`, default 64 KiB).
const MAX_SEED_LEN: usize = 1 << 20;
/// Mutants kept for further mutation, per thread.
const POOL: usize = 4096;

#[derive(Debug)]
struct Args {
    inputs: u64,
    seed: u64,
    corpus: Option<PathBuf>,
    threads: usize,
    time_limit: Duration,
    max_seconds: Option<u64>,
    max_len: usize,
    save: Option<PathBuf>,
    replay: Option<Vec<u8>>,
    export: Option<PathBuf>,
}

fn parse_args() -> Result<Args, ToolError> {
    let mut a = Args {
        inputs: FULL_INPUTS,
        seed: 1,
        corpus: None,
        threads: 1,
        time_limit: Duration::from_secs(10),
        max_seconds: None,
        max_len: 64 << 10,
        save: None,
        replay: None,
        export: None,
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> Result<u64, ToolError> {
        v.and_then(|s| s.replace('_', "").parse().ok())
            .ok_or_else(|| ToolError::new(format!("{name} needs a number")))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--inputs" => a.inputs = num(it.next(), "--inputs")?,
            "--seed" => a.seed = num(it.next(), "--seed")?,
            "--quick" => {
                a.inputs = QUICK_INPUTS;
                a.max_seconds = Some(QUICK_SECONDS);
            }
            "--max-seconds" => a.max_seconds = Some(num(it.next(), "--max-seconds")?),
            "--threads" => a.threads = num(it.next(), "--threads")?.clamp(1, 64) as usize,
            "--time-limit-ms" => {
                a.time_limit = Duration::from_millis(num(it.next(), "--time-limit-ms")?)
            }
            "--max-len" => a.max_len = num(it.next(), "--max-len")? as usize,
            "--corpus" => a.corpus = it.next().map(PathBuf::from),
            "--save" => a.save = it.next().map(PathBuf::from),
            "--export-seeds" => a.export = it.next().map(PathBuf::from),
            "--replay" => {
                let hex = it.next().unwrap_or_default();
                a.replay =
                    Some(from_hex(&hex).ok_or_else(|| ToolError::new("--replay needs hex"))?);
            }
            "--replay-file" => {
                let p = it.next().unwrap_or_default();
                a.replay = Some(
                    std::fs::read(&p)
                        .map_err(|e| ToolError::new(format!("cannot read {p}: {e}")))?,
                );
            }
            "-h" | "--help" => {
                println!(
                    "fuzz_decoders [--inputs N] [--max-seconds S] [--seed S] [--corpus DIR] [--quick] [--threads T] \
                     [--time-limit-ms MS] [--max-len BYTES] [--save DIR] | --replay HEX | --replay-file PATH \
                     | --export-seeds DIR"
                );
                std::process::exit(0);
            }
            other => return Err(ToolError::new(format!("unknown argument {other}"))),
        }
    }
    Ok(a)
}

thread_local! {
    /// The message of the last panic on this thread (the hook keeps it instead of printing).
    static PANIC_MESSAGE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Whether the panic hook adds a backtrace to the message (`--replay`).
static BACKTRACES: AtomicBool = AtomicBool::new(false);

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let trace = if BACKTRACES.load(Ordering::Relaxed) {
            format!("\n{}", std::backtrace::Backtrace::force_capture())
        } else {
            String::new()
        };
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = format!("{msg}{at}{trace}"));
    }));
}

/// What one input did.
enum Verdict {
    Fine(Outcome),
    Panic(String),
    Defect(String),
}

impl Verdict {
    fn outcome(&self) -> Option<&Outcome> {
        match self {
            Verdict::Fine(o) => Some(o),
            _ => None,
        }
    }
}

fn run_one(input: &[u8]) -> (Verdict, alloc::AllocStats) {
    let mark = alloc::begin();
    let r = catch_unwind(AssertUnwindSafe(|| check_input(input)));
    let stats = alloc::end(mark);
    let v = match r {
        Ok(Ok(o)) => Verdict::Fine(o),
        Ok(Err(d)) => Verdict::Defect(d.0),
        Err(_) => Verdict::Panic(PANIC_MESSAGE.with(|m| m.borrow().clone())),
    };
    (v, stats)
}

/// What the watchdog sees of a worker.
struct Slot {
    busy: AtomicBool,
    started_ms: AtomicU64,
    index: AtomicU64,
    input: Mutex<Vec<u8>>,
    /// Inputs this worker has finished.
    finished: AtomicU64,
    /// The worker thread's `/proc` stat file, for its CPU time.
    stat: Mutex<Option<PathBuf>>,
}

/// This thread's `/proc` stat file (Linux).
fn thread_stat_path() -> Option<PathBuf> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    Some(std::path::Path::new("/proc").join(link).join("stat"))
}

/// CPU time (user + system) of a thread, in ms, from its `/proc` stat file.
fn cpu_ms(stat: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // After the command name: state, ppid, ... utime (14th field) and stime (15th), in
    // ticks of 10 ms.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

#[derive(Default, Clone)]
struct Totals {
    inputs: u64,
    panics: u64,
    defects: u64,
    over_bound: u64,
    max_alloc: u64,
    max_alloc_len: usize,
    max_live: u64,
    max_ratio: f64,
    array: u64,
    path: u64,
    object: u64,
    error: u64,
    fast_path: u64,
    walked: u64,
    bytes: u64,
    max_input_ms: u64,
    kinds: HashMap<String, u64>,
}

impl Totals {
    fn add(&mut self, o: &Totals) {
        self.inputs += o.inputs;
        self.panics += o.panics;
        self.defects += o.defects;
        self.over_bound += o.over_bound;
        if o.max_alloc > self.max_alloc {
            self.max_alloc = o.max_alloc;
            self.max_alloc_len = o.max_alloc_len;
        }
        self.max_live = self.max_live.max(o.max_live);
        self.max_ratio = self.max_ratio.max(o.max_ratio);
        self.array += o.array;
        self.path += o.path;
        self.object += o.object;
        self.error += o.error;
        self.fast_path += o.fast_path;
        self.walked += o.walked;
        self.bytes += o.bytes;
        self.max_input_ms = self.max_input_ms.max(o.max_input_ms);
        for (k, v) in &o.kinds {
            *self.kinds.entry(k.clone()).or_default() += v;
        }
    }

    fn found(&self) -> u64 {
        self.panics + self.defects + self.over_bound
    }
}

struct Shared {
    printed: AtomicU64,
    save: Option<PathBuf>,
    start: Instant,
}

impl Shared {
    fn report(&self, what: &str, seed: u64, thread: usize, index: u64, detail: &str, input: &[u8]) {
        let n = self.printed.fetch_add(1, Ordering::Relaxed);
        let hash = hdfstream_reliability::fuzz::input_hash(input);
        if n < PRINT_LIMIT {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{what} seed={seed} thread={thread} index={index} len={} hash={hash:016x}: {detail}\n  input: {}",
                input.len(),
                to_hex(input)
            );
        }
        if let Some(dir) = &self.save {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(
                dir.join(format!("{}-{hash:016x}.bin", what.to_lowercase())),
                input,
            );
        }
    }
}

fn now_ms(start: Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

fn worker(
    thread: usize,
    args: &Args,
    seeds: &[Vec<u8>],
    inputs: u64,
    slot: &Slot,
    shared: &Shared,
) -> Totals {
    let seed = args.seed.wrapping_add(thread as u64);
    let mut rng = Rng::new(seed);
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    let mut t = Totals::default();
    if let Ok(mut p) = slot.stat.lock() {
        *p = thread_stat_path();
    }
    let deadline = args
        .max_seconds
        .map(|s| shared.start + Duration::from_secs(s));
    for i in 0..inputs {
        if i % 256 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let input = if thread == 0 && (i as usize) < seeds.len() {
            seeds[i as usize].clone()
        } else {
            let parent = &pool[rng.below(pool.len() as u64) as usize];
            mutate::mutate(&mut rng, parent, &pool, args.max_len)
        };
        slot.input
            .lock()
            .map(|mut s| s.clone_from(&input))
            .unwrap_or_default();
        slot.index.store(i, Ordering::Relaxed);
        slot.started_ms
            .store(now_ms(shared.start), Ordering::Relaxed);
        slot.busy.store(true, Ordering::Release);
        let (verdict, stats) = run_one(&input);
        slot.busy.store(false, Ordering::Release);
        slot.finished.fetch_add(1, Ordering::Relaxed);
        t.max_input_ms = t
            .max_input_ms
            .max(now_ms(shared.start).saturating_sub(slot.started_ms.load(Ordering::Relaxed)));

        t.inputs += 1;
        t.bytes += input.len() as u64;
        let bound = bound_for(input.len(), verdict.outcome());
        let used = stats.largest_bytes.max(stats.peak_bytes);
        if stats.largest_bytes > t.max_alloc {
            t.max_alloc = stats.largest_bytes;
            t.max_alloc_len = input.len();
        }
        t.max_live = t.max_live.max(stats.peak_bytes);
        t.max_ratio = t.max_ratio.max(used as f64 / bound as f64);
        if used > bound {
            t.over_bound += 1;
            shared.report(
                "OVER_BOUND",
                seed,
                thread,
                i,
                &format!(
                    "largest allocation {} B, peak live {} B, bound {bound} B",
                    stats.largest_bytes, stats.peak_bytes
                ),
                &input,
            );
        }
        match verdict {
            Verdict::Fine(o) => {
                t.array += u64::from(o.array);
                t.path += u64::from(o.path);
                t.object += u64::from(o.object);
                t.error += u64::from(o.error);
                t.fast_path += u64::from(o.fast_path);
                t.walked += u64::from(o.walked);
                // Keep accepted mutants (and a few others) as parents of later inputs.
                let keep = o.array || o.path || o.object || o.error || o.fast_path;
                if keep && rng.chance(0.05) || rng.chance(0.001) {
                    if pool.len() < seeds.len() + POOL {
                        pool.push(input);
                    } else {
                        pool[seeds.len() + rng.below(POOL as u64) as usize] = input;
                    }
                }
            }
            Verdict::Panic(msg) => {
                t.panics += 1;
                *t.kinds.entry(format!("panic: {msg}")).or_default() += 1;
                shared.report("PANIC", seed, thread, i, &msg, &input);
            }
            Verdict::Defect(msg) => {
                t.defects += 1;
                *t.kinds.entry(format!("defect: {msg}")).or_default() += 1;
                shared.report("DEFECT", seed, thread, i, &msg, &input);
            }
        }
        if thread == 0 && i % 100_000 == 0 && i > 0 {
            let secs = shared.start.elapsed().as_secs_f64();
            eprintln!(
                "[fuzz_decoders] thread 0: {i} inputs, {:.0}/s, {} found so far",
                i as f64 / secs,
                t.found()
            );
        }
    }
    t
}

fn figures(args: &Args, t: &Totals, seeds: usize, hangs: u64, secs: f64) -> serde_json::Value {
    let mut kinds: Vec<(&String, &u64)> = t.kinds.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1));
    json!({
        "inputs": t.inputs,
        "panics": t.panics,
        "hangs": hangs,
        "defects": t.defects,
        "over_alloc_bound": t.over_bound,
        "max_alloc_bytes": t.max_alloc,
        "max_alloc_input_len": t.max_alloc_len,
        "max_live_bytes": t.max_live,
        "max_bound_ratio": (t.max_ratio * 1000.0).round() / 1000.0,
        "bound": "64 x input length + 1 MiB (largest allocation and peak live bytes; a walk's total answer bytes instead of the input length when more)",
        "time_limit_ms": args.time_limit.as_millis() as u64,
        "hang_rule": "an input still running after using the time limit in CPU time (or 6 times it on the wall clock)",
        "max_input_ms": t.max_input_ms,
        "rate_per_s": (t.inputs as f64 / secs.max(1e-9)).round(),
        "seconds": (secs * 10.0).round() / 10.0,
        "mean_input_bytes": t.bytes.checked_div(t.inputs).unwrap_or(0),
        "seeds": seeds,
        "seed": args.seed,
        "threads": args.threads,
        "inputs_asked": args.inputs,
        "max_seconds": args.max_seconds,
        "accepted": {"array": t.array, "path": t.path, "object": t.object, "error": t.error,
                     "fast_path": t.fast_path, "walked": t.walked},
        "findings": kinds.iter().take(20).map(|(k, v)| json!({"what": k, "count": v})).collect::<Vec<_>>(),
    })
}

fn load_seeds(args: &Args) -> Result<Vec<Vec<u8>>, ToolError> {
    let mut seeds = Vec::new();
    match args.corpus.clone().or_else(corpus::default_corpus_dir) {
        Some(dir) => {
            let s = corpus::load_dir(&dir)?;
            eprintln!("[fuzz_decoders] {} bodies from {}", s.len(), dir.display());
            seeds.extend(s);
        }
        None => eprintln!(
            "[fuzz_decoders] no cassettes (set HDFSTREAM_FIXTURES or --corpus): generated seeds only"
        ),
    }
    seeds.extend(corpus::generated());
    Ok(corpus::dedup(seeds, MAX_SEED_LEN)
        .into_iter()
        .map(|s| s.body)
        .collect())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fuzz_decoders: {e}");
            std::process::exit(2);
        }
    };
    install_panic_hook();
    if let Some(input) = &args.replay {
        BACKTRACES.store(true, Ordering::Relaxed);
        let (v, stats) = run_one(input);
        let bound = bound_for(input.len(), v.outcome());
        let verdict = match &v {
            Verdict::Fine(o) => format!("fine {o:?}"),
            Verdict::Panic(m) => format!("PANIC {m}"),
            Verdict::Defect(m) => format!("DEFECT {m}"),
        };
        println!(
            "replay of {} bytes: {verdict}; largest allocation {} B, peak live {} B, bound {bound} B",
            input.len(),
            stats.largest_bytes,
            stats.peak_bytes
        );
        let bad =
            !matches!(v, Verdict::Fine(_)) || stats.largest_bytes.max(stats.peak_bytes) > bound;
        std::process::exit(i32::from(bad));
    }
    let seeds = match load_seeds(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fuzz_decoders: {e}");
            std::process::exit(2);
        }
    };
    if let Some(dir) = &args.export {
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            seeds.iter().try_for_each(|s| {
                let name = format!("seed-{:016x}", hdfstream_reliability::fuzz::input_hash(s));
                std::fs::write(dir.join(name), s)
            })
        });
        if let Err(e) = written {
            eprintln!(
                "fuzz_decoders: cannot write seeds to {}: {e}",
                dir.display()
            );
            std::process::exit(2);
        }
        println!("{} seeds written to {}", seeds.len(), dir.display());
        return;
    }
    let shared = Arc::new(Shared {
        printed: AtomicU64::new(0),
        save: args.save.clone(),
        start: Instant::now(),
    });
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..args.threads)
            .map(|_| Slot {
                busy: AtomicBool::new(false),
                started_ms: AtomicU64::new(0),
                index: AtomicU64::new(0),
                input: Mutex::new(Vec::new()),
                finished: AtomicU64::new(0),
                stat: Mutex::new(None),
            })
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let args = Arc::new(args);
    let seeds = Arc::new(seeds);

    // The watchdog: an input that has used the time limit in CPU time (counted once it
    // has run a second, so a loaded machine does not make hangs), or six times it on the
    // wall clock, is a hang: report it and stop.
    {
        let (slots, shared, done, args, nseeds) = (
            slots.clone(),
            shared.clone(),
            done.clone(),
            args.clone(),
            seeds.len(),
        );
        std::thread::spawn(move || {
            let limit = args.time_limit.as_millis() as u64;
            // Per worker: the input watched and its CPU time when first seen running long.
            let mut watched: Vec<(u64, Option<u64>)> = vec![(u64::MAX, None); slots.len()];
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                let now = now_ms(shared.start);
                for (thread, s) in slots.iter().enumerate() {
                    if !s.busy.load(Ordering::Acquire) {
                        continue;
                    }
                    let index = s.index.load(Ordering::Relaxed);
                    let wall = now.saturating_sub(s.started_ms.load(Ordering::Relaxed));
                    let stat = s.stat.lock().ok().and_then(|p| p.clone());
                    let cpu = || stat.as_deref().and_then(cpu_ms);
                    let w = &mut watched[thread];
                    if w.0 != index {
                        *w = (index, None);
                    }
                    if wall >= limit.min(1000) && w.1.is_none() {
                        w.1 = Some(cpu().unwrap_or(0));
                    }
                    let cpu_used = match (w.1, cpu()) {
                        (Some(c0), Some(c)) => c.saturating_sub(c0),
                        _ => wall,
                    };
                    if cpu_used < limit && wall < 6 * limit {
                        continue;
                    }
                    let input = s.input.lock().map(|g| g.clone()).unwrap_or_default();
                    shared.report(
                        "HANG",
                        args.seed.wrapping_add(thread as u64),
                        thread,
                        index,
                        &format!("still running after {wall} ms ({cpu_used} ms of CPU seen)"),
                        &input,
                    );
                    let t = Totals {
                        inputs: slots
                            .iter()
                            .map(|s| s.finished.load(Ordering::Relaxed))
                            .sum(),
                        ..Totals::default()
                    };
                    print_result(
                        "fuzz_decoders",
                        figures(&args, &t, nseeds, 1, shared.start.elapsed().as_secs_f64()),
                    );
                    let _ = std::io::stdout().flush();
                    std::process::exit(3);
                }
            }
        });
    }

    eprintln!(
        "[fuzz_decoders] {} inputs, seed {}, {} seeds, {} thread(s)",
        args.inputs,
        args.seed,
        seeds.len(),
        args.threads
    );
    let per = args.inputs / args.threads as u64;
    let extra = args.inputs % args.threads as u64;
    let handles: Vec<_> = (0..args.threads)
        .map(|thread| {
            let (args, seeds, slots, shared) =
                (args.clone(), seeds.clone(), slots.clone(), shared.clone());
            let n = per + u64::from((thread as u64) < extra);
            std::thread::Builder::new()
                .name(format!("fuzz-{thread}"))
                .stack_size(64 << 20)
                .spawn(move || worker(thread, &args, &seeds, n, &slots[thread], &shared))
        })
        .collect();
    let mut total = Totals::default();
    for h in handles {
        match h
            .map_err(|e| e.to_string())
            .and_then(|h| h.join().map_err(|_| "worker died".into()))
        {
            Ok(t) => total.add(&t),
            Err(e) => {
                eprintln!("fuzz_decoders: {e}");
                total.panics += 1;
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let secs = shared.start.elapsed().as_secs_f64();
    let found = total.found();
    print_result(
        "fuzz_decoders",
        figures(&args, &total, seeds.len(), 0, secs),
    );
    std::process::exit(i32::from(found > 0));
}
