//! A counting global allocator: per thread, the bytes live and the largest single request,
//! so a fuzzer can hold every input to an allocation bound.
//!
//! Install it in a binary with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`,
//! then wrap each input in [`begin`] / [`end`]. Without it installed the figures stay 0.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting what the current thread allocates (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (frees of other threads' blocks
    /// can make it dip; it wraps rather than fail).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Highest `LIVE` since [`begin`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Largest single request since [`begin`], granted or not.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn on_request(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

fn on_change(delta: isize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get().wrapping_add(delta);
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping only touches
// const-initialised thread locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_request(layout.size());
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            on_change(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_request(layout.size());
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            on_change(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_change(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_request(new_size);
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            on_change(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// The live bytes of this thread when a measurement began.
#[derive(Debug, Clone, Copy)]
pub struct AllocMark(isize);

/// What one measured stretch of work allocated on this thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Most bytes live at once, above what was live at [`begin`].
    pub peak_bytes: u64,
    /// Largest single allocation (or reallocation) requested, granted or not.
    pub largest_bytes: u64,
}

/// Start measuring this thread's allocations.
pub fn begin() -> AllocMark {
    let live = LIVE.try_with(Cell::get).unwrap_or(0);
    let _ = PEAK.try_with(|p| p.set(live));
    let _ = LARGEST.try_with(|m| m.set(0));
    AllocMark(live)
}

/// What this thread allocated since `mark`.
pub fn end(mark: AllocMark) -> AllocStats {
    let peak = PEAK.try_with(Cell::get).unwrap_or(0);
    AllocStats {
        peak_bytes: peak.saturating_sub(mark.0).max(0) as u64,
        largest_bytes: LARGEST.try_with(Cell::get).unwrap_or(0) as u64,
    }
}
