//! A small process-wide pool of decode threads shared by all requests.
//!
//! Jobs are closures that never touch libhdf5; each request waits for its own results (in
//! request order) and bounds how many of its jobs are queued, so the pool needs no
//! back-pressure of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Most decode threads, whatever the machine.
const MAX_THREADS: usize = 32;

struct Pool {
    tx: Mutex<Sender<Job>>,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, MAX_THREADS);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hdf5-decode-{i}"))
                .spawn(move || worker(&rx));
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "unable to start a decode thread"),
            }
        }
        Pool {
            tx: Mutex::new(tx),
            threads: started,
        }
    })
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let guard = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Number of decode threads (0 when none could be started: jobs then run inline).
pub(crate) fn threads() -> usize {
    pool().threads
}

/// The pending result of a job.
pub(crate) struct Pending<T>(Receiver<Result<T, String>>);

impl<T> Pending<T> {
    /// Waits for the result.
    pub(crate) fn wait(self) -> Result<T, String> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err("decode job was lost".to_owned()))
    }
}

/// Runs `f` on the pool; a panic in `f` becomes an error result.
pub(crate) fn submit<T, F>(f: F) -> Pending<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || run(f, &tx));
    let p = pool();
    let queued = if p.threads == 0 {
        Err(job)
    } else {
        let sender =
            p.tx.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        sender.send(job).map_err(|e| e.0)
    };
    if let Err(job) = queued {
        job();
    }
    Pending(rx)
}

fn run<T, F>(f: F, tx: &SyncSender<Result<T, String>>)
where
    F: FnOnce() -> Result<T, String>,
{
    let result = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("internal error while decoding a chunk".to_owned()));
    // The request may have gone away; its result is then simply dropped.
    let _ = tx.send(result);
}
