//! A small bounded pool for independent request tasks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f(0..n)` on at most `concurrency` threads; results in index order, first error wins.
pub(crate) fn run_parallel<T, E, F>(n: usize, concurrency: usize, f: F) -> Result<Vec<T>, E>
where
    T: Send,
    E: Send,
    F: Fn(usize) -> Result<T, E> + Sync,
{
    let threads = concurrency.max(1).min(n);
    if threads <= 1 {
        return (0..n).map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<T, E>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let r = f(i);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    let mut g = slots.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(slot) = g.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(n);
    let mut first_err = None;
    for (i, r) in slots.into_iter().enumerate() {
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            // Skipped after a failure elsewhere; run it here if there was none.
            None if first_err.is_none() && !failed.load(Ordering::Relaxed) => out.push(f(i)?),
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::run_parallel;

    #[test]
    fn results_in_order_and_first_error() {
        let v: Result<Vec<usize>, String> = run_parallel(100, 4, |i| Ok(i * 2));
        assert_eq!(v.unwrap(), (0..100).map(|i| i * 2).collect::<Vec<_>>());
        let e: Result<Vec<usize>, String> = run_parallel(10, 3, |i| {
            if i == 7 {
                Err(format!("task {i}"))
            } else {
                Ok(i)
            }
        });
        assert_eq!(e.unwrap_err(), "task 7");
        let none: Result<Vec<u8>, String> = run_parallel(0, 4, |_| Ok(1));
        assert!(none.unwrap().is_empty());
    }
}
