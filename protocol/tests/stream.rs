//! The push decoder: chunking, bins, payload slots, fallbacks, strictness.

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayForwardDecoder, ArrayIntoDecoder, DecodeError, Dtype, NdArray,
    PushDecoder, ReadError, TypedBuffer, VlenArray, VlenElement, decode_array,
    decode_array_from_reader, decode_array_into_from_reader, encode_array,
    encode_array_with_max_bin,
};

fn f8(n: usize) -> ArrayData {
    ArrayData::Nd(NdArray {
        dtype: Dtype::parse("<f8").unwrap(),
        shape: vec![n as u64],
        data: TypedBuffer::F64((0..n).map(|i| i as f64 * 1.5).collect()),
    })
}

fn feed_all(body: &[u8], chunk: usize) -> Result<ArrayData, DecodeError> {
    let mut d = ArrayDecoder::new();
    for c in body.chunks(chunk.max(1)) {
        d.feed(c)?;
    }
    d.finish()
}

#[test]
fn every_split_of_a_multi_bin_body() {
    let a = f8(13);
    for max_bin in [1, 2, 7, 9, 104, 1000] {
        let body = encode_array_with_max_bin(&a, max_bin);
        for chunk in 1..40 {
            assert_eq!(
                feed_all(&body, chunk).unwrap(),
                a,
                "bin {max_bin} chunk {chunk}"
            );
        }
        // Two pieces, split at every position (header, bin headers, payload).
        for cut in 0..=body.len() {
            let mut d = ArrayDecoder::new();
            d.feed(&body[..cut]).unwrap();
            d.feed(&body[cut..]).unwrap();
            assert_eq!(d.finish().unwrap(), a, "bin {max_bin} cut {cut}");
        }
    }
}

#[test]
fn payload_slots_take_reads_in_place() {
    let a = f8(1000);
    let body = encode_array_with_max_bin(&a, 999);
    let mut d = ArrayDecoder::new();
    let mut pos = 0;
    let mut slot_bytes = 0;
    while pos < body.len() {
        if let Some(slot) = d.payload_slot() {
            // Fill at most 333 bytes per "read".
            let n = slot.len().min(333).min(body.len() - pos);
            slot[..n].copy_from_slice(&body[pos..pos + n]);
            d.advance(n).unwrap();
            pos += n;
            slot_bytes += n;
        } else {
            let n = d.wanted().min(body.len() - pos);
            assert!(n > 0);
            d.feed(&body[pos..pos + n]).unwrap();
            pos += n;
        }
    }
    assert_eq!(d.header().unwrap().nbytes, 8000);
    assert_eq!(d.finish().unwrap(), a);
    // All but the bytes that arrived with the (512-byte) header read went straight in.
    assert!(slot_bytes > 8000 - 512, "{slot_bytes}");
}

#[test]
fn wanted_never_overshoots_a_bin_header() {
    let body = encode_array_with_max_bin(&f8(40), 300);
    let mut d = ArrayDecoder::new();
    d.feed(&body[..300]).unwrap(); // header + part of bin 1
    while d.payload_slot().is_some() {
        let n = d.payload_slot().unwrap().len();
        d.payload_slot().unwrap().fill(0);
        d.advance(n).unwrap();
    }
    // Now in the second bin header (c5 01 2c would be 300 bytes; here c4 14 = 20).
    assert!(d.wanted() <= 5);
}

#[test]
fn empty_and_scalar_arrays() {
    let empty = ArrayData::Nd(NdArray {
        dtype: Dtype::parse("<i2").unwrap(),
        shape: vec![0, 3],
        data: TypedBuffer::I16(vec![]),
    });
    let body = encode_array(&empty);
    assert!(body.ends_with(&[0x90]));
    assert_eq!(feed_all(&body, 1).unwrap(), empty);
    let scalar = ArrayData::Nd(NdArray {
        dtype: Dtype::parse("S3").unwrap(),
        shape: vec![],
        data: TypedBuffer::Bytes {
            item_size: 3,
            data: b"ab\0".to_vec(),
        },
    });
    assert_eq!(feed_all(&encode_array(&scalar), 2).unwrap(), scalar);
}

#[test]
fn truncation_and_trailing_bytes() {
    let body = encode_array_with_max_bin(&f8(5), 16);
    for cut in 0..body.len() {
        let r = feed_all(&body[..cut], 3);
        assert!(
            matches!(r, Err(DecodeError::Truncated { .. })),
            "cut {cut}: {r:?}"
        );
    }
    let mut d = ArrayDecoder::new();
    d.feed(&body).unwrap();
    assert_eq!(d.feed(&[0]), Err(DecodeError::TrailingBytes { extra: 1 }));
    // The error sticks.
    assert_eq!(d.feed(&[]), Err(DecodeError::TrailingBytes { extra: 1 }));
    assert!(d.finish().is_err());
    assert!(matches!(
        decode_array_from_reader(&[body.clone(), vec![1, 2]].concat()[..]),
        Err(ReadError::Decode(DecodeError::TrailingBytes { .. }))
    ));
    assert!(matches!(
        decode_array_from_reader(&body[..body.len() - 1]),
        Err(ReadError::Decode(DecodeError::Truncated { .. }))
    ));
    assert!(matches!(
        ArrayDecoder::new().finish(),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn bins_must_add_up() {
    // nbytes 16 but bins 8 + 16.
    let mut body = hdfstream_protocol::ndarray_header(&Dtype::parse("<f8").unwrap(), &[2], 16);
    *body.last_mut().unwrap() = 0x92;
    body.extend([0xc4, 8]);
    body.extend([0; 8]);
    body.extend([0xc4, 16]);
    body.extend([0; 16]);
    assert!(matches!(
        feed_all(&body, 5),
        Err(DecodeError::Malformed { .. })
    ));
    // nbytes 16 but one 8-byte bin.
    let mut body = hdfstream_protocol::ndarray_header(&Dtype::parse("<f8").unwrap(), &[2], 16);
    body.extend([0xc4, 8]);
    body.extend([0; 8]);
    assert!(matches!(
        feed_all(&body, 4),
        Err(DecodeError::Malformed { .. })
    ));
    // A str instead of a bin.
    let mut body = hdfstream_protocol::ndarray_header(&Dtype::parse("<f8").unwrap(), &[1], 8);
    body.push(0xa8);
    body.extend([0; 8]);
    assert!(matches!(
        feed_all(&body, 4),
        Err(DecodeError::Malformed { .. })
    ));
    // nbytes inconsistent with the shape is refused before any payload arrives.
    let body = hdfstream_protocol::ndarray_header(&Dtype::parse("<f8").unwrap(), &[3], 16);
    let mut d = ArrayDecoder::new();
    assert!(matches!(d.feed(&body), Err(DecodeError::Malformed { .. })));
}

#[test]
fn non_fast_path_bodies_are_buffered_and_decoded() {
    let v = ArrayData::Vlen(VlenArray {
        shape: vec![2],
        elements: vec![
            VlenElement::String(b"a".to_vec()),
            VlenElement::String(b"bc".to_vec()),
        ],
    });
    let body = encode_array(&v);
    for chunk in [1, 2, 100] {
        assert_eq!(feed_all(&body, chunk).unwrap(), v);
    }
    assert_eq!(decode_array_from_reader(&body[..]).unwrap(), v);
    let mut dest = [0u8; 16];
    assert!(matches!(
        decode_array_into_from_reader(&body[..], &Dtype::parse("<f8").unwrap(), &mut dest),
        Err(ReadError::Decode(DecodeError::DestinationMismatch { .. }))
    ));

    // An ndarray with "data" not last is decoded on the buffered path, also into buffers.
    let reordered = b"\x86\xa2nd\xc3\xa4data\x91\xc4\x08\x00\x00\x00\x00\x00\x00\xf0\x3f\xa4type\xa3<f8\xa4kind\xa0\xa5shape\x91\x01\xa6nbytes\x08";
    let want = ArrayData::Nd(NdArray {
        dtype: Dtype::parse("<f8").unwrap(),
        shape: vec![1],
        data: TypedBuffer::F64(vec![1.0]),
    });
    assert_eq!(feed_all(reordered, 3).unwrap(), want);
    let mut dest = [0u8; 8];
    let h = decode_array_into_from_reader(&reordered[..], &Dtype::parse("<f8").unwrap(), &mut dest)
        .unwrap();
    assert_eq!((h.shape, f64::from_le_bytes(dest)), (vec![1], 1.0));
    // Error maps and garbage fail.
    assert!(feed_all(&hdfstream_protocol::encode_error("x"), 1).is_err());
    assert!(feed_all(b"\x86\xa2nd\xc3garbage", 1).is_err());
}

#[test]
fn big_endian_is_swapped_after_copy() {
    let be = b"\x86\xa2nd\xc3\xa4type\xa3>f8\xa4kind\xa0\xa5shape\x91\x02\xa6nbytes\x10\xa4data\x92\xc4\x03\x3f\xf0\x00\xc4\x0d\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00";
    let a = feed_all(be, 1).unwrap();
    let ArrayData::Nd(nd) = &a else { panic!() };
    assert_eq!(nd.data, TypedBuffer::F64(vec![1.0, -2.0]));
    assert_eq!(a, decode_array(be).unwrap());
    // Into a little-endian destination: types equal up to byte order.
    let mut dest = [0u8; 16];
    decode_array_into_from_reader(&be[..], &Dtype::parse("<f8").unwrap(), &mut dest).unwrap();
    assert_eq!(bytemuck_f64(&dest), [1.0, -2.0]);
}

fn bytemuck_f64(b: &[u8]) -> Vec<f64> {
    b.chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn into_decoder_checks_type_and_size_up_front() {
    let body = encode_array(&f8(4));
    let mut dest = vec![0u8; 32];
    let mut d = ArrayIntoDecoder::new(&Dtype::parse("<f8").unwrap(), &mut dest);
    for c in body.chunks(5) {
        d.feed(c).unwrap();
    }
    assert_eq!(d.finish().unwrap().shape, [4]);
    assert_eq!(bytemuck_f64(&dest), [0.0, 1.5, 3.0, 4.5]);

    for (dtype, len) in [("<f4", 32), ("<i8", 32), ("<f8", 24), ("<f8", 40)] {
        let mut dest = vec![0u8; len];
        let mut d = ArrayIntoDecoder::new(&Dtype::parse(dtype).unwrap(), &mut dest);
        assert!(
            matches!(d.feed(&body), Err(DecodeError::DestinationMismatch { .. })),
            "{dtype} {len}"
        );
    }
}

/// A reader that hands out `step` bytes at a time and sometimes fails with Interrupted.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl std::io::Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(3) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn readers_with_short_reads_and_errors() {
    let a = f8(300);
    let body = encode_array_with_max_bin(&a, 77);
    for step in [1, 2, 5, 64, 4096] {
        assert_eq!(
            decode_array_from_reader(Dribble {
                data: &body,
                step,
                calls: 0
            })
            .unwrap(),
            a
        );
    }
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("boom"))
        }
    }
    assert!(matches!(
        decode_array_from_reader(Broken),
        Err(ReadError::Io(_))
    ));
}

#[test]
fn fresh_buffer_hook_runs_once_before_the_payload() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static LEN: AtomicUsize = AtomicUsize::new(0);
    fn hook(buf: &mut [u8]) {
        assert!(buf.iter().all(|&b| b == 0), "called before any payload");
        CALLS.fetch_add(1, Ordering::SeqCst);
        LEN.store(buf.len(), Ordering::SeqCst);
    }
    let a = f8(100);
    let body = encode_array_with_max_bin(&a, 64);
    let mut d = ArrayDecoder::new().with_fresh_buffer_hook(hook);
    for c in body.chunks(10) {
        d.feed(c).unwrap();
    }
    assert_eq!(d.finish().unwrap(), a);
    assert_eq!(
        (CALLS.load(Ordering::SeqCst), LEN.load(Ordering::SeqCst)),
        (1, 800)
    );
}

/// Forwards `body` fed in `chunk`-byte pieces (or read through `pump` when `chunk` is 0)
/// through a `window`-byte window; returns the payload, the pieces' sizes and the header.
fn forward_all(
    body: &[u8],
    chunk: usize,
    window: usize,
) -> Result<(Vec<u8>, Vec<usize>, hdfstream_protocol::ArrayHeader), DecodeError> {
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    let mut d = ArrayForwardDecoder::new(window, |_, bytes: &[u8]| {
        sizes.push(bytes.len());
        got.extend_from_slice(bytes);
        Ok(())
    });
    if chunk == 0 {
        hdfstream_protocol::pump(body, &mut d).map_err(|e| match e {
            ReadError::Decode(d) => d,
            ReadError::Io(e) => panic!("{e}"),
            _ => panic!("other read error"),
        })?;
    } else {
        for c in body.chunks(chunk) {
            d.feed(c)?;
        }
    }
    let h = d.finish()?;
    Ok((got, sizes, h))
}

#[test]
fn forwarded_payload_equals_the_decoded_array_in_wire_order() {
    let a = f8(13);
    let ArrayData::Nd(nd) = &a else { panic!() };
    let want = nd.data.as_bytes().to_vec();
    for max_bin in [1, 7, 104, 1000] {
        let body = encode_array_with_max_bin(&a, max_bin);
        for chunk in [0, 1, 3, 17, 1000] {
            for window in [1, 5, 8, 64, 1 << 20] {
                let (got, sizes, h) = forward_all(&body, chunk, window).unwrap();
                assert_eq!(got, want, "bin {max_bin} chunk {chunk} window {window}");
                assert_eq!((h.shape.as_slice(), h.nbytes), (&[13][..], 104));
                // Every piece but the last fills the window.
                let (last, full) = sizes.split_last().unwrap();
                assert!(
                    full.iter().all(|&n| n == window) && *last <= window,
                    "{sizes:?}"
                );
            }
        }
    }
    // Big-endian payloads keep their order (the consumer is told the type).
    let be = b"\x86\xa2nd\xc3\xa4type\xa3>f8\xa4kind\xa0\xa5shape\x91\x02\xa6nbytes\x10\xa4data\x92\xc4\x03\x3f\xf0\x00\xc4\x0d\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00";
    let (got, _, h) = forward_all(be, 2, 4).unwrap();
    assert_eq!(h.dtype, Dtype::parse(">f8").unwrap());
    assert_eq!(
        got,
        [1.0f64.to_be_bytes(), (-2.0f64).to_be_bytes()].concat()
    );
    // A body off the fast path (key order) is decoded whole and forwarded the same way.
    let reordered = b"\x86\xa2nd\xc3\xa4data\x91\xc4\x08\x00\x00\x00\x00\x00\x00\xf0\x3f\xa4type\xa3<f8\xa4kind\xa0\xa5shape\x91\x01\xa6nbytes\x08";
    let (got, _, _) = forward_all(reordered, 3, 3).unwrap();
    assert_eq!(got, 1.0f64.to_le_bytes());
}

#[test]
fn forwarding_fails_on_short_bodies_vlen_and_consumer_errors() {
    let body = encode_array(&f8(10));
    for cut in 0..body.len() {
        assert!(
            forward_all(&body[..cut], 1, 8).is_err(),
            "a body cut at {cut} must fail"
        );
    }
    let v = ArrayData::Vlen(VlenArray {
        shape: vec![1],
        elements: vec![VlenElement::String(b"a".to_vec())],
    });
    assert!(matches!(
        forward_all(&encode_array(&v), 4, 8),
        Err(DecodeError::DestinationMismatch { .. })
    ));
    let mut d = ArrayForwardDecoder::new(16, |_, _: &[u8]| Err(std::io::Error::other("disk full")));
    let e = d.feed(&body).unwrap_err();
    assert!(e.to_string().contains("disk full"), "{e}");
    assert!(d.feed(b"x").is_err(), "errors are final");
}

/// Found by `fuzz_decoders` while the header parse was put off for more bytes: a body
/// that ended before the next parse was decoded whole, with another error than when its
/// header was parsed (`|S10` x 5 declaring 10 bytes, then a short bin: Malformed whole,
/// Truncated in pieces). The outcome must not depend on how the body is cut.
#[test]
fn the_error_does_not_depend_on_the_pieces() {
    let body = [
        0x86, 0xa2, b'n', b'd', 0xc3, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'|', b'S', b'1', b'0',
        0xa4, b'k', b'i', b'n', b'd', 0xa0, 0xa5, b's', b'h', b'a', b'p', b'e', 0x91, 0x05, 0xa6,
        b'n', b'b', b'y', b't', b'e', b's', 0x0a, 0xa4, b'd', b'a', b't', b'a', 0x91, 0xc4, 0x0b,
        0x01, 0x08, 0x0f, 0x16, 0x1d, 0x24, 0x2b, 0x32, 0x39, 0x40,
    ];
    let whole = feed_all(&body, body.len());
    assert!(
        matches!(whole, Err(DecodeError::Malformed { .. })),
        "{whole:?}"
    );
    for chunk in 1..body.len() {
        assert_eq!(feed_all(&body, chunk), whole, "pieces of {chunk}");
    }
}
