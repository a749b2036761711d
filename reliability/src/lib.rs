//! Shared pieces of the reliability tools run by `scripts/reliability.sh`: a release server
//! started as a child process, its memory and file descriptors, a seeded random generator,
//! percentiles, and the one-line JSON result every tool prints last.

pub mod fuzz;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Errors of the reliability tools.
#[derive(Debug)]
pub struct ToolError(pub String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

impl ToolError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// An `hdfstream serve` child process, killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    base_url: String,
}

impl ServerProcess {
    /// Start `binary serve root --bind 127.0.0.1:0 extra...` and wait for the URL it prints;
    /// its log goes to this process's stderr.
    pub fn start(binary: &Path, root: &Path, extra: &[&str]) -> Result<Self, ToolError> {
        let mut command = Command::new(binary);
        command.stderr(Stdio::inherit());
        Self::spawn(command, binary, root, extra)
    }

    /// Like [`ServerProcess::start`], with the server's log (stderr: warnings, and panic
    /// messages) written to `log` instead, at the level `filter` (`HDFSTREAM_LOG` syntax,
    /// e.g. `warn`), so a tool can look for `panicked` in it afterwards.
    pub fn start_logged(
        binary: &Path,
        root: &Path,
        extra: &[&str],
        log: &Path,
        filter: &str,
    ) -> Result<Self, ToolError> {
        let file = std::fs::File::create(log)
            .map_err(|e| ToolError::new(format!("cannot create {}: {e}", log.display())))?;
        let mut command = Command::new(binary);
        command.stderr(file).env("HDFSTREAM_LOG", filter);
        Self::spawn(command, binary, root, extra)
    }

    fn spawn(
        mut command: Command,
        binary: &Path,
        root: &Path,
        extra: &[&str],
    ) -> Result<Self, ToolError> {
        let mut child = command
            .arg("serve")
            .arg(root)
            .args(["--bind", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| ToolError::new(format!("cannot start {}: {e}", binary.display())))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ToolError::new("server stdout is not piped"))?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let base_url = line.trim().to_string();
        if read.is_err() || !base_url.starts_with("http") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ToolError::new(format!(
                "server did not print its URL (got {base_url:?})"
            )));
        }
        Ok(Self { child, base_url })
    }

    /// The base URL the server printed, e.g. `http://127.0.0.1:41234/hdfstream`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Memory and descriptors of a process, read from `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStats {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (`VmHWM`).
    pub hwm_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// CPU time used so far (user + system), milliseconds.
    pub cpu_ms: u64,
}

/// Read [`ProcStats`] of process `pid`.
pub fn proc_stats(pid: u32) -> Result<ProcStats, ToolError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| ToolError::new(format!("cannot read /proc/{pid}/status: {e}")))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| ToolError::new(format!("cannot list /proc/{pid}/fd: {e}")))?
        .count() as u64;
    Ok(ProcStats {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        fds,
        cpu_ms: cpu_ms(pid).unwrap_or(0),
    })
}

/// User + system CPU time of process `pid` in milliseconds (`/proc/<pid>/stat` fields 14
/// and 15, in clock ticks of 1/100 s, the value on every Linux platform).
fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10)
}

/// A small seeded generator (xorshift64*), so that every run can be replayed from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One element of `items`, which the caller keeps non-empty (an empty slice panics).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The `p`-th percentile (0..=100) of `values`, nearest rank; 0 for no values.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The values of a numeric Arrow column (nested fixed-size lists flattened) cast to `f64`.
pub fn column_f64(col: &arrow::array::ArrayRef) -> Result<arrow::array::Float64Array, ToolError> {
    use arrow::array::{Array, FixedSizeListArray, Float64Array};
    if let Some(list) = col.as_any().downcast_ref::<FixedSizeListArray>() {
        return column_f64(list.values());
    }
    let f = arrow::compute::cast(col, &arrow::datatypes::DataType::Float64)
        .map_err(|e| ToolError(format!("the column does not cast to f64: {e}")))?;
    f.as_any()
        .downcast_ref::<Float64Array>()
        .cloned()
        .ok_or_else(|| ToolError("the column did not cast to f64".into()))
}

/// Print the tool's figures as the last line of its output: `RESULT {json}`, which
/// `scripts/reliability.sh` collects into its table.
pub fn print_result(tool: &str, figures: serde_json::Value) {
    let mut object = serde_json::Map::new();
    object.insert("tool".into(), tool.into());
    if let serde_json::Value::Object(map) = figures {
        object.extend(map);
    }
    println!("RESULT {}", serde_json::Value::Object(object));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), 50.0);
        assert_eq!(percentile(&mut v, 99.0), 99.0);
        assert_eq!(percentile(&mut v, 100.0), 100.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }

    #[test]
    fn rng_replays_from_its_seed() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn own_process_stats_are_read() {
        let before = proc_stats(std::process::id()).unwrap();
        assert!(before.rss_kib > 0 && before.fds >= 3);
        // Burn CPU until the counter moves (ticks are 10 ms); a stuck counter fails.
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after.cpu_ms == before.cpu_ms && t0.elapsed() < std::time::Duration::from_secs(60) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = proc_stats(std::process::id()).unwrap();
        }
        assert!(
            after.cpu_ms >= before.cpu_ms + 10,
            "{before:?} -> {after:?}"
        );
    }
}
