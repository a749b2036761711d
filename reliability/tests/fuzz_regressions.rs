//! Inputs the decoder fuzzer found, replayed through the same check (`check_input`) under
//! the same allocation bound, and every seed (generated responses, and the shared
//! cassettes when present) checked once.

use hdfstream_reliability::fuzz::alloc::{self, CountingAlloc};
use hdfstream_reliability::fuzz::{bound_for, check_input, corpus, from_hex};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Check one input: no defect and within the bound (a panic fails the test by itself).
fn passes(input: &[u8]) -> Result<(), String> {
    let mark = alloc::begin();
    let r = check_input(input);
    let used = alloc::end(mark);
    let outcome = r.map_err(|d| d.0)?;
    let bound = bound_for(input.len(), Some(&outcome));
    if used.largest_bytes > bound || used.peak_bytes > bound {
        return Err(format!(
            "largest allocation {} B, peak {} B, bound {bound} B",
            used.largest_bytes, used.peak_bytes
        ));
    }
    Ok(())
}

/// Found by `fuzz_decoders`, with what each made go wrong.
const FOUND: [(&str, &str); 9] = [
    (
        "a file map read with Content-Length 2^60 reserved 64 MiB",
        "83a474797065b26170706c69636174696f6e2f782d68646635a473697a65ce022189b7ad6c6173745f6d6f646966696564cf0000015c45297988",
    ),
    (
        "a header claiming 2^59 bytes (<f8 x 2^56) was allocated before its payload",
        "86a26e64c3a474797065a33c6638a46b696e64a0a5736861706591cf0100000000000000a66e6279746573cf0800000000000000a46461746191c43001080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3dae1e8eff6fd040b121920272e353c434a",
    ),
    (
        "a header claiming 4 GiB (<f4 x 2^30) got a 4 GiB buffer for 21 payload bytes",
        "86a26e64c3a474797065a33c6634a46b696e64a0a5736861706591ce40000000a66e6279746573cf0000000100000000a46461746193c40701080f161d242bc407323940474e555cc406636a71787f86",
    ),
    (
        "a header claiming 32 MiB (<f2 x 2^24) with no payload",
        "86a26e64c3a474797065a33c6632a46b696e64a0a5736861706591ce01000000a66e6279746573ce02000000a46461746191c4",
    ),
    (
        "an empty array of a 32 MB big-endian ARRAY type listed 8 million units to swap",
        "86a26e64c3a47479706592a33e663492cc02ce003de4b1a46b696e64a156a5736861706592cf000001000000000000a66e627974657300a46461746190",
    ),
    (
        "the client summed the expected body length of a 4 EB claim bin by bin (10^9 bins)",
        "86a26e64c3a474797065a3533130a46b696e64a0a5736861706592cf00b2904ac976391d08a66e6279746573cf37cd175ef4f1d910a46461746192c6000006eb9a24a0161d242b323940",
    ),
    (
        "with the header parse put off, a body cut in pieces failed with another error kind",
        "86a26e64c3a474797065a47c533130a46b696e64a0a573686170659105a66e62797465730aa46461746191c40b01080f161d242b323940",
    ),
    (
        "Dataset::size of a [2^40, 2^40] dataset overflowed (a panic with overflow checks)",
        "83ab686466355f6f626a656374a567726f7570aa6174747269627574657380a76d656d6265727381a16485ab686466355f6f626a656374a764617461736574aa6174747269627574657380a474797065a33c6638a46b696e64a0a5736861706592cf0000010000000000cf0000010000000000",
    ),
    (
        "a growing buffer of 4 GiB strings grew by a whole zero-filled element for 4 bytes",
        "86a26e64c3a474797065ab5334323934393637323936a46b696e64a0a5736861706592ce002b132001a66e6279746573cf002b132000000000a4646174619ac40401080f16c4031d342bc407323940474e555cc407636a71787f868dc407949ba2a9b0b7bec407c5ccd3dae1e8efc407f6fd040b121b20c405272e353c43c4024a51c40158",
    ),
];

#[test]
fn found_inputs_pass() {
    for (what, hex) in FOUND {
        let input = from_hex(hex).expect("hex");
        if let Err(e) = passes(&input) {
            panic!("{what}: {e}");
        }
    }
}

#[test]
fn every_generated_seed_passes() {
    for s in corpus::generated() {
        if let Err(e) = passes(&s.body) {
            panic!("{}: {e}", s.origin);
        }
    }
}

#[test]
fn every_cassette_body_passes() {
    let Some(dir) = corpus::default_corpus_dir() else {
        eprintln!("SKIPPED: cassettes not found (set HDFSTREAM_FIXTURES to shared/fixtures)");
        return;
    };
    let seeds = corpus::load_dir(&dir).expect("cassettes load");
    assert!(seeds.len() > 100, "{} bodies", seeds.len());
    for s in seeds {
        if let Err(e) = passes(&s.body) {
            panic!("{}: {e}", s.origin);
        }
    }
}
