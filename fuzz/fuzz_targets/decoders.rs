//! libFuzzer target: every response decoder of the client on one input
//! (`hdfstream_reliability::fuzz::check_input`), within the allocation bound. Mutations
//! alternate between libFuzzer's own and the structure-aware msgpack ones of the stable
//! fuzzer.

#![no_main]

use hdfstream_reliability::Rng;
use hdfstream_reliability::fuzz::alloc::{self, CountingAlloc};
use hdfstream_reliability::fuzz::{bound_for, check_input, mutate};
use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fuzz_target!(|data: &[u8]| {
    let mark = alloc::begin();
    let outcome = match check_input(data) {
        Ok(o) => o,
        Err(defect) => panic!("defect: {defect}"),
    };
    let used = alloc::end(mark);
    let bound = bound_for(data.len(), Some(&outcome));
    assert!(
        used.largest_bytes <= bound && used.peak_bytes <= bound,
        "allocation over the bound: largest {} B, peak {} B, bound {bound} B",
        used.largest_bytes,
        used.peak_bytes
    );
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let mut rng = Rng::new(u64::from(seed));
    if rng.chance(0.5) {
        return fuzzer_mutate(data, size, max_size);
    }
    let mut input = data[..size].to_vec();
    mutate::mutate_once(&mut rng, &mut input, &[]);
    input.truncate(max_size);
    data[..input.len()].copy_from_slice(&input);
    input.len()
});
