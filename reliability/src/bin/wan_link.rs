//! A user-space WAN link between two network namespaces, for `scripts/bench_wan.sh` on kernels
//! without `sch_netem`.
//!
//! usage: `wan_link NS_A NS_B DEV ONE_WAY_DELAY_MS RATE_MBIT [MTU]`
//!
//! It creates a TUN device named DEV in each of the two (existing) namespaces and forwards
//! every IP packet from one to the other after netem's model of a link: a packet leaves when
//! the link has finished sending the packets before it (RATE_MBIT in each direction) and
//! arrives ONE_WAY_DELAY_MS later; a packet that would wait longer than one round trip (or
//! 64 packets' worth) to be sent is dropped, as a router's queue of one bandwidth-delay
//! product would. It prints `ready` once both devices exist; the caller then gives them
//! addresses and brings them up. The devices vanish when the process ends (kill it). It sends
//! nothing anywhere else: packets only move between the two devices.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() {
    if let Err(message) = run() {
        eprintln!("wan_link: {message}");
        std::process::exit(1);
    }
}

/// The link's parameters, the same in both directions.
#[derive(Clone, Copy, Debug)]
struct Link {
    /// One-way propagation delay.
    delay: Duration,
    /// Bytes per second.
    rate: f64,
    /// Longest a packet may wait for the link before it is dropped.
    max_wait: Duration,
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 || args.len() > 6 {
        return Err("usage: wan_link NS_A NS_B DEV ONE_WAY_DELAY_MS RATE_MBIT [MTU]".into());
    }
    let delay_ms: f64 = parse(&args[3], "ONE_WAY_DELAY_MS")?;
    let rate_mbit: f64 = parse(&args[4], "RATE_MBIT")?;
    let mtu: usize = match args.get(5) {
        Some(m) => parse(m, "MTU")?,
        None => 9000,
    };
    if !(0.0..=10_000.0).contains(&delay_ms) || !(0.001..=100_000.0).contains(&rate_mbit) {
        return Err("delay must be 0..10000 ms and rate 0.001..100000 Mbit/s".into());
    }
    if !(576..=65_535).contains(&mtu) {
        return Err("MTU must be 576..65535".into());
    }
    let rate = rate_mbit * 1e6 / 8.0;
    let delay = Duration::from_secs_f64(delay_ms / 1e3);
    // One bandwidth-delay product of queue (round trip), at least 64 packets.
    let bdp_wait = 2.0 * delay.as_secs_f64();
    let min_wait = 64.0 * mtu as f64 / rate;
    let link = Link {
        delay,
        rate,
        max_wait: Duration::from_secs_f64(bdp_wait.max(min_wait)),
    };
    let dev = &args[2];
    let a = tun::open_in(&args[0], dev)?;
    let b = tun::open_in(&args[1], dev)?;
    let (a_read, b_read) = (
        a.try_clone().map_err(|e| e.to_string())?,
        b.try_clone().map_err(|e| e.to_string())?,
    );
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let forward_ab = std::thread::spawn(move || forward(a_read, b, link, mtu));
    let forward_ba = std::thread::spawn(move || forward(b_read, a, link, mtu));
    let _ = forward_ab.join();
    let _ = forward_ba.join();
    Err("a device closed".into())
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{what}: not a number: {text:?}"))
}

/// Move packets from `src` to `dst` through the link model: this thread reads and stamps,
/// a second one delivers each packet at its time (stamps never decrease, so a FIFO suffices).
fn forward(mut src: File, mut dst: File, link: Link, mtu: usize) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (at, packet) in rx {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            // A full queue on the receiving side drops the packet, as a link would.
            let _ = dst.write(&packet);
        }
    });
    let mut buf = vec![0u8; mtu + 64];
    let mut shaper = Shaper::new(link, Instant::now());
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(arrives) = shaper.admit(Instant::now(), n) else {
            continue; // queue full: tail drop
        };
        if tx.send((arrives, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

/// One direction of the link: when each packet arrives, or that it is dropped.
#[derive(Debug)]
struct Shaper {
    link: Link,
    /// When the link has finished sending the packets admitted so far.
    free_at: Instant,
}

impl Shaper {
    fn new(link: Link, now: Instant) -> Self {
        Self { link, free_at: now }
    }

    /// A packet of `bytes` handed to the link at `now`: its arrival time at the other end,
    /// or `None` if it would wait longer than `max_wait` for the link (dropped).
    fn admit(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        let start = self.free_at.max(now);
        if start - now > self.link.max_wait {
            return None;
        }
        self.free_at = start + Duration::from_secs_f64(bytes as f64 / self.link.rate);
        Some(self.free_at + self.link.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Duration) -> f64 {
        t.as_secs_f64() * 1e3
    }

    #[test]
    fn packets_are_serialised_at_the_rate_then_delayed() {
        // 1 MB/s, 10 ms one way, at most 5 ms of queue.
        let link = Link {
            delay: Duration::from_millis(10),
            rate: 1e6,
            max_wait: Duration::from_millis(5),
        };
        let t0 = Instant::now();
        let mut s = Shaper::new(link, t0);
        // 1000 bytes take 1 ms on the link: arrives at 1 + 10 ms.
        let a = s.admit(t0, 1000).map(|t| ms(t - t0));
        assert!((a.unwrap_or(0.0) - 11.0).abs() < 1e-6, "{a:?}");
        // Sent at the same time: waits for the first, arrives 1 ms later.
        let b = s.admit(t0, 1000).map(|t| ms(t - t0));
        assert!((b.unwrap_or(0.0) - 12.0).abs() < 1e-6, "{b:?}");
        // Queue now 2 ms: four more fit (waits of 2 to 5 ms); the next would wait 6 ms > 5 ms...
        for _ in 0..4 {
            assert!(s.admit(t0, 1000).is_some());
        }
        assert_eq!(s.admit(t0, 1000), None, "beyond the queue limit: dropped");
        // ...and once the link has drained, a packet goes at once.
        let later = t0 + Duration::from_millis(100);
        let c = s.admit(later, 500).map(|t| ms(t - later));
        assert!((c.unwrap_or(0.0) - 10.5).abs() < 1e-6, "{c:?}");
    }
}

#[cfg(target_os = "linux")]
mod tun {
    //! TUN devices made inside a named network namespace (`ip netns add NAME`).
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsRawFd;

    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_NO_PI: libc::c_short = 0x1000;

    /// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded to 40 bytes.
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        pad: [u8; 22],
    }

    /// Open a TUN device named `dev` in namespace `ns`; this thread returns to its own
    /// namespace afterwards (the device stays in `ns`).
    pub(super) fn open_in(ns: &str, dev: &str) -> Result<File, String> {
        if dev.is_empty() || dev.len() > 15 || !dev.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("device name {dev:?}: 1..15 letters and digits"));
        }
        if ns.is_empty() || ns.contains('/') {
            return Err(format!("namespace name {ns:?}"));
        }
        let own = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("/proc/thread-self/ns/net: {e}"))?;
        let target = File::open(format!("/var/run/netns/{ns}"))
            .map_err(|e| format!("namespace {ns}: {e}"))?;
        enter(&target, ns)?;
        let made = make(dev);
        enter(&own, "the original namespace")?;
        made
    }

    fn enter(ns: &File, what: &str) -> Result<(), String> {
        // SAFETY: setns on a namespace file descriptor we own; it changes only this thread.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!("setns {what}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    fn make(dev: &str) -> Result<File, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| format!("/dev/net/tun: {e}"))?;
        let mut req = IfReq {
            name: [0; 16],
            flags: IFF_TUN | IFF_NO_PI,
            pad: [0; 22],
        };
        req.name[..dev.len()].copy_from_slice(dev.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `req` is laid out as.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc != 0 {
            return Err(format!(
                "TUNSETIFF {dev}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(file)
    }
}

#[cfg(not(target_os = "linux"))]
mod tun {
    //! TUN devices exist only on Linux.
    use std::fs::File;

    pub(super) fn open_in(_ns: &str, _dev: &str) -> Result<File, String> {
        Err("needs Linux (network namespaces and TUN devices)".into())
    }
}
