//! Property tests: random arrays of every dtype through random bin splits and random
//! chunkings; random damage to real responses gives errors, never panics.

mod common;

use std::sync::OnceLock;

use common::{RequestKind, all_interactions};
use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayIntoDecoder, ByteOrder, DimSelection, Dtype, NdArray,
    ObjectRequest, PushDecoder, SliceSpec, TypedBuffer, VlenArray, VlenElement, decode_array,
    decode_error, decode_object, decode_path, encode_array_with_max_bin,
};
use proptest::prelude::*;

fn order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![
        Just(ByteOrder::Little),
        Just(ByteOrder::Big),
        Just(ByteOrder::Native),
        Just(ByteOrder::NotApplicable)
    ]
}

fn atomic() -> impl Strategy<Value = Dtype> {
    prop_oneof![
        (prop::sample::select(vec![1u8, 2, 4, 8]), order())
            .prop_map(|(size, order)| Dtype::Int { size, order }),
        (prop::sample::select(vec![1u8, 2, 4, 8]), order())
            .prop_map(|(size, order)| Dtype::UInt { size, order }),
        (prop::sample::select(vec![2u8, 4, 8, 16]), order())
            .prop_map(|(size, order)| Dtype::Float { size, order }),
        (1usize..12).prop_map(|len| Dtype::FixedString { len }),
    ]
}

fn array_of(base: impl Strategy<Value = Dtype>) -> impl Strategy<Value = Dtype> {
    (base, prop::collection::vec(1u64..4, 1..3)).prop_map(|(b, dims)| Dtype::Array {
        base: Box::new(b),
        dims,
    })
}

/// Every fixed-size dtype the codec handles: atomic, arrays, compounds with array members.
fn fixed_dtype() -> impl Strategy<Value = Dtype> {
    let member = prop_oneof![3 => atomic(), 1 => array_of(atomic())];
    prop_oneof![
        6 => atomic(),
        1 => array_of(atomic()),
        2 => prop::collection::vec(member, 1..5).prop_map(|ts| {
            Dtype::Compound(ts.into_iter().enumerate().map(|(i, t)| (format!("f{i}"), t)).collect())
        }),
    ]
}

fn nd_array() -> impl Strategy<Value = NdArray> {
    (fixed_dtype(), prop::collection::vec(0u64..6, 0..4)).prop_flat_map(|(dtype, shape)| {
        let n = shape.iter().product::<u64>() as usize * dtype.item_size().unwrap();
        prop::collection::vec(any::<u8>(), n).prop_map(move |bytes| NdArray {
            data: TypedBuffer::from_native_bytes(&dtype, &bytes).unwrap(),
            dtype: dtype.clone(),
            shape: shape.clone(),
        })
    })
}

/// Values compared by bytes (random floats include NaNs, which are not `==`).
fn same(a: &ArrayData, b: &NdArray) -> bool {
    matches!(a, ArrayData::Nd(x) if x.dtype == b.dtype && x.shape == b.shape && x.data.as_bytes() == b.data.as_bytes()
        && std::mem::discriminant(&x.data) == std::mem::discriminant(&b.data))
}

/// Feed `body` in chunks whose sizes cycle through `sizes`.
fn feed_chunked<D: PushDecoder>(
    dec: &mut D,
    body: &[u8],
    sizes: &[usize],
) -> Result<(), hdfstream_protocol::DecodeError> {
    let mut pos = 0;
    for &s in sizes.iter().cycle() {
        if pos >= body.len() {
            break;
        }
        let end = (pos + s).min(body.len());
        dec.feed(&body[pos..end])?;
        pos = end;
    }
    Ok(())
}

/// Drive `dec` like a reader whose `read` returns sizes cycling through `sizes`.
fn read_chunked<D: PushDecoder>(
    dec: &mut D,
    body: &[u8],
    sizes: &[usize],
) -> Result<(), hdfstream_protocol::DecodeError> {
    let mut pos = 0;
    let mut k = 0;
    while pos < body.len() {
        let limit = sizes[k % sizes.len()];
        k += 1;
        if let Some(slot) = dec.payload_slot() {
            let n = slot.len().min(limit).min(body.len() - pos);
            slot[..n].copy_from_slice(&body[pos..pos + n]);
            dec.advance(n)?;
            pos += n;
        } else {
            let n = dec.wanted().min(limit).min(body.len() - pos);
            dec.feed(&body[pos..pos + n])?;
            pos += n;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_arrays_survive_random_bins_and_chunks(
        a in nd_array(),
        max_bin in 1u64..40,
        sizes in prop::collection::vec(1usize..50, 1..8),
    ) {
        let value = ArrayData::Nd(a.clone());
        let body = encode_array_with_max_bin(&value, max_bin);
        prop_assert!(same(&decode_array(&body).unwrap(), &a));

        let mut dec = ArrayDecoder::new();
        feed_chunked(&mut dec, &body, &sizes).unwrap();
        prop_assert!(same(&dec.finish().unwrap(), &a));

        let mut dec = ArrayDecoder::new();
        read_chunked(&mut dec, &body, &sizes).unwrap();
        prop_assert!(same(&dec.finish().unwrap(), &a));

        // Into a caller buffer, declared with the native byte order.
        let mut dest = vec![0u8; a.data.as_bytes().len()];
        let mut dec = ArrayIntoDecoder::new(&a.dtype.native(), &mut dest);
        read_chunked(&mut dec, &body, &sizes).unwrap();
        let h = dec.finish().unwrap();
        prop_assert_eq!(&h.shape, &a.shape);
        prop_assert_eq!(&dest[..], a.data.as_bytes());
    }

    #[test]
    fn truncated_random_arrays_fail(a in nd_array(), max_bin in 1u64..40, cut in any::<prop::sample::Index>()) {
        let body = encode_array_with_max_bin(&ArrayData::Nd(a), max_bin);
        let cut = cut.index(body.len());
        prop_assert!(decode_array(&body[..cut]).is_err());
        let mut dec = ArrayDecoder::new();
        let r = dec.feed(&body[..cut]).and_then(|_| dec.finish());
        prop_assert!(r.is_err());
    }

    #[test]
    fn vlen_arrays_roundtrip(
        strings in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        nested in prop::collection::vec(prop::collection::vec(any::<i32>(), 0..5), 0..4),
        sizes in prop::collection::vec(1usize..30, 1..5),
    ) {
        let mut elements: Vec<VlenElement> = strings.into_iter().map(VlenElement::String).collect();
        elements.extend(nested.into_iter().map(|v| VlenElement::Array(ArrayData::Nd(NdArray {
            dtype: Dtype::parse("<i4").unwrap(),
            shape: vec![v.len() as u64],
            data: TypedBuffer::I32(v),
        }))));
        let value = ArrayData::Vlen(VlenArray { shape: vec![elements.len() as u64], elements });
        let body = encode_array_with_max_bin(&value, 7);
        prop_assert_eq!(&decode_array(&body).unwrap(), &value);
        let mut dec = ArrayDecoder::new();
        feed_chunked(&mut dec, &body, &sizes).unwrap();
        prop_assert_eq!(dec.finish().unwrap(), value);
    }

    #[test]
    fn requests_roundtrip(
        object in "/[ -~]{0,30}",
        runs in prop::collection::vec((0u64..1 << 40, 0u64..1 << 40), 0..6),
        rest in prop::collection::vec((0u64..1 << 40, 0u64..1 << 40), 0..7),
        limit in 0u64..i64::MAX as u64,
        depth in 0u32..i32::MAX as u32,
    ) {
        let d = |v: &[(u64, u64)]| v.iter().map(|&(s, c)| DimSelection::new(s, c)).collect::<Vec<_>>();
        let spec = if runs.is_empty() { SliceSpec::scalar() } else { SliceSpec::new(d(&runs), d(&rest)) };
        let r = ObjectRequest::slice(object.clone(), spec.clone());
        prop_assert_eq!(ObjectRequest::decode_body(&r.encode_body()).unwrap(), r);
        prop_assert_eq!(SliceSpec::parse_str(&spec.to_query_string()).unwrap(), spec);
        let o = ObjectRequest::object(object, limit, depth);
        prop_assert_eq!(ObjectRequest::decode_body(&o.encode_body()).unwrap(), o);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_array(&body);
        let _ = decode_object(&body);
        let _ = decode_path(&body);
        let _ = decode_error(&body);
        let _ = ObjectRequest::decode_body(&body);
        let _ = ArrayDecoder::new().feed(&body);
        if let Ok(s) = std::str::from_utf8(&body) {
            let _ = ObjectRequest::from_query(s);
            let _ = SliceSpec::parse_str(s);
        }
    }
}

/// Successful msgpack responses of the cassettes with the kind of request that produced them.
fn recorded() -> &'static [(RequestKind, Vec<u8>)] {
    static R: OnceLock<Vec<(RequestKind, Vec<u8>)>> = OnceLock::new();
    R.get_or_init(|| {
        let mut v: Vec<_> = all_interactions()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.is_msgpack() && i.status == 200)
            .map(|i| (i.kind(), i.response_body))
            .collect();
        v.sort();
        v.dedup();
        v
    })
}

fn decode_as(kind: RequestKind, body: &[u8]) -> Result<(), hdfstream_protocol::DecodeError> {
    match kind {
        RequestKind::Path => decode_path(body).map(drop),
        RequestKind::Object => decode_object(body).map(drop),
        RequestKind::Slice => decode_array(body).map(drop),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn damaged_cassette_responses_give_errors_not_panics(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        chunk in 1usize..100,
    ) {
        let all = recorded();
        if all.is_empty() {
            return Ok(()); // fixtures absent (reported by the cassette tests)
        }
        let (kind, body) = &all[pick.index(all.len())];
        // Every strict prefix is an error for the right decoder and for the stream decoder.
        let short = &body[..cut.index(body.len())];
        prop_assert!(decode_as(*kind, short).is_err());
        if *kind == RequestKind::Slice {
            let mut dec = ArrayDecoder::new();
            prop_assert!(dec.feed(short).and_then(|_| dec.finish()).is_err());
        }
        // Flipped bytes: no panic; the streaming and whole decoders agree.
        let mut bad = body.clone();
        for (at, x) in &flips {
            let i = at.index(bad.len());
            bad[i] ^= x;
        }
        let _ = decode_as(*kind, &bad);
        let whole = decode_array(&bad);
        let mut dec = ArrayDecoder::new();
        let streamed = bad.chunks(chunk).try_for_each(|c| dec.feed(c).map(drop)).and_then(|_| dec.finish());
        match (&whole, &streamed) {
            (Ok(a), Ok(b)) => prop_assert_eq!(format!("{a:?}"), format!("{b:?}")),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "whole {:?} vs streamed {:?}", whole.is_ok(), streamed.is_ok()),
        }
    }
}
