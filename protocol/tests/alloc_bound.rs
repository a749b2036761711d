//! The streaming decoder allocates from what arrives, not from what a header claims
//! (inputs found by `fuzz_decoders`, issue 11). A counting allocator records the largest
//! single request of the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, DecodeError, Dtype, NdArray, TypedBuffer, decode_array,
    decode_array_from_reader, encode_array_with_max_bin,
};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

// SAFETY: forwards every call to `System`; the bookkeeping touches a const thread local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: the caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: the caller's contract.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n);
        // SAFETY: the caller's contract.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The largest single allocation `f` makes on this thread.
fn largest<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    let v = f();
    (v, LARGEST.with(Cell::get))
}

/// The bytes `f` allocates in all on this thread (a measure of the work it repeats).
fn total<T>(f: impl FnOnce() -> T) -> (T, usize) {
    TOTAL.with(|t| t.set(0));
    let v = f();
    (v, TOTAL.with(Cell::get))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Found by `fuzz_decoders`: consistent headers claiming 2^59 bytes (`<f8` x 2^56), 4 GiB
/// (`<f4` x 2^30, which a zeroed allocation grants without touching memory), 2^38 bytes
/// (`=u2` x 2^37) and 2^54 bytes of 4 GiB strings (`S4294967296`, which the first growing
/// buffer grew by a whole zero-filled element), each followed by a few bytes of payload.
const CLAIMS: [&str; 4] = [
    "86a26e64c3a474797065a33c6638a46b696e64a0a5736861706591cf0100000000000000a66e6279746573cf0800000000000000a46461746191c43001080f161d242b323940474e555c636a71787f868d949ba2a9b0b7bec5ccd3dae1e8eff6fd040b121920272e353c434a",
    "86a26e64c3a474797065a33c6634a46b696e64a0a5736861706591ce40000000a66e6279746573cf0000000100000000a46461746193c40701080f161d242bc407323940474e555cc406636a71787f86",
    "86a26e64c3a474797065a33d7532a46b696e64a0a5736861706591cf0000002000000000a66e6279746573cf0000004000000000a46461746192c40701080f161d242bc403323940",
    "86a26e64c3a474797065ab5334323934393637323936a46b696e64a0a5736861706592ce002b132001a66e6279746573cf002b132000000000a4646174619ac40401080f16c4031d342bc407323940474e555cc407636a71787f868dc407949ba2a9b0b7bec407c5ccd3dae1e8efc407f6fd040b121b20c405272e353c43c4024a51c40158",
];

#[test]
fn a_claimed_payload_is_not_allocated_before_it_arrives() {
    for h in CLAIMS {
        let body = hex(h);
        for chunk in [1, 7, body.len()] {
            let (r, max) = largest(|| {
                let mut dec = ArrayDecoder::new();
                for c in body.chunks(chunk) {
                    if dec.feed(c).is_err() {
                        break;
                    }
                }
                dec.finish()
            });
            assert!(r.is_err(), "{h}");
            assert!(
                max <= 128 * 1024,
                "{max} bytes allocated for a {}-byte body",
                body.len()
            );
        }
        let (r, max) = largest(|| decode_array_from_reader(&body[..]));
        assert!(r.is_err());
        assert!(max <= 128 * 1024, "{max}");
        assert!(matches!(
            decode_array(&body),
            Err(DecodeError::Truncated { .. } | DecodeError::Malformed { .. })
        ));
    }
}

/// Found by `fuzz_decoders`: an empty array (shape [2^40, 0]) of a big-endian ARRAY type
/// of 2 x 4,056,241 `>f4` made every decode list the type's 8 million units to swap, for
/// no element: 128 MiB and seconds for a 61-byte body.
#[test]
fn an_empty_array_of_a_huge_element_type_costs_nothing() {
    let body = hex(
        "86a26e64c3a47479706592a33e663492cc02ce003de4b1a46b696e64a156a5736861706592cf000001000000000000a66e627974657300a46461746190",
    );
    let (r, max) = largest(|| decode_array(&body));
    let Ok(ArrayData::Nd(a)) = r else {
        panic!("{r:?}")
    };
    assert_eq!((a.shape.as_slice(), a.len()), (&[1u64 << 40, 0][..], 0));
    assert_eq!(a.dtype.item_size(), Some(2 * 4_056_241 * 4));
    assert!(max <= 4096, "{max} bytes allocated");
    let (r, max) = largest(|| decode_array_from_reader(&body[..]));
    assert!(r.is_ok());
    assert!(max <= 64 * 1024, "{max} bytes allocated");
}

fn f8(n: usize) -> ArrayData {
    ArrayData::Nd(NdArray {
        dtype: Dtype::parse("<f8").unwrap(),
        shape: vec![n as u64],
        data: TypedBuffer::F64((0..n).map(|i| i as f64 * 0.25).collect()),
    })
}

#[test]
fn a_payload_past_the_limit_grows_into_the_right_value() {
    let a = f8(300_000); // 2.4 MB, past the 64 KiB default
    let body = encode_array_with_max_bin(&a, 100_003);
    for chunk in [4096, 65_536 + 7, body.len()] {
        let mut dec = ArrayDecoder::new();
        for c in body.chunks(chunk) {
            dec.feed(c).unwrap();
        }
        assert_eq!(dec.finish().unwrap(), a);
    }
    assert_eq!(decode_array_from_reader(&body[..]).unwrap(), a);
    // With the size the caller asked for, one allocation of exactly that size.
    let (v, max) = largest(|| {
        let mut dec = ArrayDecoder::new().with_preallocation_limit(2_400_000);
        dec.feed(&body).unwrap();
        dec.finish().unwrap()
    });
    assert_eq!(v, a);
    assert_eq!(max, 2_400_000);
    // Raw elements (10-byte strings) grow by bytes, parts of elements included.
    let s10 = Dtype::parse("S10").unwrap();
    let raw: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let strings = ArrayData::Nd(NdArray {
        shape: vec![100_000],
        data: TypedBuffer::from_native_bytes(&s10, &raw).unwrap(),
        dtype: s10,
    });
    let body = encode_array_with_max_bin(&strings, 77_777);
    let mut dec = ArrayDecoder::new();
    for c in body.chunks(4093) {
        dec.feed(c).unwrap();
    }
    assert_eq!(dec.finish().unwrap(), strings);
    let body = encode_array_with_max_bin(&a, 100_003);
    // A limit of 0: grown from nothing.
    let mut dec = ArrayDecoder::new().with_preallocation_limit(0);
    for c in body.chunks(1000) {
        dec.feed(c).unwrap();
    }
    assert_eq!(dec.finish().unwrap(), a);
}

fn feed_all(body: &[u8], chunk: usize) -> Result<ArrayData, DecodeError> {
    let mut d = ArrayDecoder::new();
    for c in body.chunks(chunk.max(1)) {
        d.feed(c)?;
    }
    d.finish()
}

/// Found by `fuzz_decoders`: the fast-path header was parsed again from its first byte at
/// every piece, so a long header (here a 40 KB type string, then 12,000 dimensions)
/// arriving in small pieces cost time quadratic in its length (seconds for 64 KB; each
/// parse copies the type string, so the bytes allocated in all show it: 480 MB byte by
/// byte). It is now parsed again only after half as many bytes again; pieces of any size
/// still decode as the whole body does, with the payload after a late parse in place.
#[test]
fn a_long_header_in_small_pieces_decodes_like_the_whole_body() {
    let mut body = vec![0x86, 0xa2, b'n', b'd', 0xc3, 0xa4];
    body.extend_from_slice(b"type");
    body.push(0xdb);
    body.extend_from_slice(&40_000u32.to_be_bytes());
    body.extend(std::iter::repeat_n(b'a', 40_000));
    body.extend_from_slice(&[0xa4, b'k', b'i', b'n', b'd', 0xa0, 0xa5]);
    body.extend_from_slice(b"shape");
    body.push(0xdc);
    body.extend_from_slice(&12_000u16.to_be_bytes());
    body.extend(std::iter::repeat_n(1u8, 12_000));
    body.extend_from_slice(&[0xa6, b'n', b'b', b'y', b't', b'e', b's', 0x08, 0xa4]);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&[0x91, 0xc4, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    let want = decode_array(&body);
    assert!(matches!(want, Err(DecodeError::UnsupportedType { .. })));
    for chunk in [1, 3, 100] {
        let (got, bytes) = total(|| feed_all(&body, chunk));
        assert_eq!(got, want, "pieces of {chunk}");
        assert!(
            bytes < 40 * body.len(),
            "{bytes} bytes allocated in pieces of {chunk}"
        );
    }
    // The same header with a good type: a late parse hands the bytes after the header on.
    let a = f8(3);
    let good = encode_array_with_max_bin(&a, 5);
    for chunk in 1..good.len() {
        assert_eq!(feed_all(&good, chunk).unwrap(), a, "pieces of {chunk}");
    }
}
