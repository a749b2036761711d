//! The HDF5 filters we decode ourselves, outside the libhdf5 lock: deflate (zlib streams,
//! inflated with zlib-rs through `flate2`), byte shuffle and the Fletcher-32 checksum.
//!
//! A chunk's filter pipeline is undone in reverse order; filters whose bit is set in the
//! chunk's filter mask were skipped when the chunk was written and are skipped here too.

use flate2::{Decompress, FlushDecompress, Status};

/// One step of a dataset's filter pipeline that we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    /// zlib stream (HDF5 filter 1).
    Deflate,
    /// Byte transposition by element size (HDF5 filter 2).
    Shuffle {
        /// Element size the bytes were transposed by.
        size: usize,
    },
    /// Fletcher-32 checksum appended to the chunk (HDF5 filter 3).
    Fletcher32,
}

/// Bytes the Fletcher-32 filter appends.
const FLETCHER_LEN: usize = 4;

/// Undoes `pipeline` (in write order) on the stored bytes of one chunk, skipping the
/// filters masked out in `mask`; the result must be exactly `expect` bytes long.
pub(crate) fn decode(
    pipeline: &[Filter],
    mask: u32,
    raw: Vec<u8>,
    expect: usize,
) -> Result<Vec<u8>, String> {
    let mut data = raw;
    for (i, filter) in pipeline.iter().enumerate().rev() {
        if i < 32 && mask & (1 << i) != 0 {
            continue;
        }
        data = match *filter {
            Filter::Fletcher32 => {
                check_fletcher32(&data)?;
                data.truncate(data.len() - FLETCHER_LEN);
                data
            }
            Filter::Deflate => {
                // Later filters (earlier in the write order) may still strip checksums.
                let extra = pipeline[..i]
                    .iter()
                    .enumerate()
                    .filter(|&(j, f)| *f == Filter::Fletcher32 && (j >= 32 || mask & (1 << j) == 0))
                    .count()
                    * FLETCHER_LEN;
                inflate(&data, expect + extra)?
            }
            Filter::Shuffle { size } => unshuffle(&data, size),
        };
    }
    if data.len() != expect {
        return Err(format!(
            "chunk decodes to {} bytes, expected {expect}",
            data.len()
        ));
    }
    Ok(data)
}

/// Inflates one zlib stream that must produce exactly `expect` bytes.
pub(crate) fn inflate(input: &[u8], expect: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(expect);
    let mut z = Decompress::new(true);
    // One spare byte: a stream longer than announced then shows as a full buffer.
    out.reserve_exact(1);
    let status = z
        .decompress_vec(input, &mut out, FlushDecompress::Finish)
        .map_err(|e| format!("inflate error: {e}"))?;
    match status {
        Status::StreamEnd if out.len() == expect => Ok(out),
        Status::StreamEnd => Err(format!(
            "inflate error: chunk inflates to {} bytes, expected {expect}",
            out.len()
        )),
        _ if out.len() > expect => Err(format!(
            "inflate error: chunk inflates to more than {expect} bytes"
        )),
        _ => Err("inflate error: truncated zlib stream".to_owned()),
    }
}

/// Reverses the shuffle filter: byte `b` of element `i` is stored at `b * n + i`
/// (n = number of whole elements); a tail shorter than one element is stored as is.
pub(crate) fn unshuffle(input: &[u8], size: usize) -> Vec<u8> {
    if size <= 1 || input.len() < size {
        return input.to_vec();
    }
    let n = input.len() / size;
    let body = n * size;
    let mut out = vec![0u8; input.len()];
    match size {
        2 => unshuffle_fixed::<2>(&input[..body], &mut out[..body]),
        4 => unshuffle_fixed::<4>(&input[..body], &mut out[..body]),
        8 => unshuffle_fixed::<8>(&input[..body], &mut out[..body]),
        _ => {
            for (b, plane) in input[..body].chunks_exact(n).enumerate() {
                for (dst, &byte) in out[b..body].iter_mut().step_by(size).zip(plane) {
                    *dst = byte;
                }
            }
        }
    }
    out[body..].copy_from_slice(&input[body..]);
    out
}

/// Unshuffles whole elements of `S` bytes, a block of elements at a time so that the
/// output block stays in cache while the `S` byte planes are read sequentially.
fn unshuffle_fixed<const S: usize>(input: &[u8], out: &mut [u8]) {
    const BLOCK: usize = 256;
    let n = input.len() / S;
    let mut i0 = 0;
    while i0 < n {
        let m = BLOCK.min(n - i0);
        let planes: [&[u8]; S] = std::array::from_fn(|b| &input[b * n + i0..b * n + i0 + m]);
        for (i, dst) in out[i0 * S..(i0 + m) * S].chunks_exact_mut(S).enumerate() {
            for (d, plane) in dst.iter_mut().zip(&planes) {
                *d = plane[i];
            }
        }
        i0 += m;
    }
}

/// Checks the Fletcher-32 checksum stored (little endian) in the last 4 bytes of `data`.
///
/// Like libhdf5, the value with the bytes of each 16-bit half swapped is accepted too:
/// libhdf5 before 1.6.3 wrote it that way on little-endian machines.
pub(crate) fn check_fletcher32(data: &[u8]) -> Result<(), String> {
    let Some(split) = data.len().checked_sub(FLETCHER_LEN) else {
        return Err("Fletcher-32 checksum mismatch: chunk shorter than its checksum".to_owned());
    };
    let (body, tail) = data.split_at(split);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let sum = fletcher32(body);
    let swapped = ((sum & 0x00ff_00ff) << 8) | ((sum >> 8) & 0x00ff_00ff);
    if stored == sum || stored == swapped {
        Ok(())
    } else {
        Err(format!(
            "Fletcher-32 checksum mismatch (stored {stored:#010x}, computed {sum:#010x})"
        ))
    }
}

/// HDF5's Fletcher-32: big-endian 16-bit words (an odd last byte is the high byte of a
/// final word), both sums starting at 0 and folded to 16 bits (end-around carry).
pub(crate) fn fletcher32(data: &[u8]) -> u32 {
    // 360 words keep both sums below 2^32 between folds.
    const BLOCK: usize = 360 * 2;
    fn fold(x: u32) -> u32 {
        (x & 0xffff) + (x >> 16)
    }
    let (mut s1, mut s2) = (0u32, 0u32);
    let whole = data.len() & !1;
    for block in data[..whole].chunks(BLOCK) {
        for w in block.chunks_exact(2) {
            s1 += u32::from(u16::from_be_bytes([w[0], w[1]]));
            s2 += s1;
        }
        s1 = fold(s1);
        s2 = fold(s2);
    }
    if let Some(&last) = data.get(whole) {
        s1 += u32::from(last) << 8;
        s2 += s1;
        s1 = fold(s1);
        s2 = fold(s2);
    }
    s1 = fold(s1);
    s2 = fold(s2);
    (s2 << 16) | s1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shuffle(input: &[u8], size: usize) -> Vec<u8> {
        let n = input.len() / size;
        let mut out = Vec::with_capacity(input.len());
        for b in 0..size {
            out.extend((0..n).map(|i| input[i * size + b]));
        }
        out.extend_from_slice(&input[n * size..]);
        out
    }

    #[test]
    fn unshuffle_inverts_shuffle_with_tail() {
        let data: Vec<u8> = (0..203u32).map(|i| (i * 7 % 251) as u8).collect();
        for size in [1, 2, 4, 8, 12] {
            assert_eq!(unshuffle(&shuffle(&data, size), size), data, "size {size}");
        }
    }

    #[test]
    fn fletcher32_small_values() {
        // Words 0x0102, 0x0304: s1 = 0x0102 + 0x0304 = 0x0406, s2 = 0x0102 + 0x0406.
        assert_eq!(fletcher32(&[1, 2, 3, 4]), (0x0508 << 16) | 0x0406);
        // An odd byte is the high half of a last word.
        assert_eq!(fletcher32(&[1, 2, 3]), (0x0504 << 16) | 0x0402);
        assert_eq!(fletcher32(&[]), 0);
    }

    fn with_fletcher(mut data: Vec<u8>) -> Vec<u8> {
        let sum = fletcher32(&data);
        data.extend_from_slice(&sum.to_le_bytes());
        data
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use flate2::Compression;
        use flate2::write::ZlibEncoder;
        use std::io::Write;
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::new(4));
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// The pipeline is undone in reverse order and masked filters are skipped.
    #[test]
    fn decode_honours_order_and_filter_mask() {
        let data: Vec<u8> = (0..4003u32).map(|i| (i * 31 % 253) as u8).collect();
        let pipeline = [
            Filter::Shuffle { size: 8 },
            Filter::Deflate,
            Filter::Fletcher32,
        ];
        let all = with_fletcher(zlib(&shuffle(&data, 8)));
        assert_eq!(decode(&pipeline, 0, all, data.len()).unwrap(), data);
        // Deflate skipped for this chunk (mask bit 1).
        let no_deflate = with_fletcher(shuffle(&data, 8));
        assert_eq!(
            decode(&pipeline, 0b010, no_deflate, data.len()).unwrap(),
            data
        );
        // Nothing applied.
        assert_eq!(
            decode(&pipeline, 0b111, data.clone(), data.len()).unwrap(),
            data
        );
        // A checksum inside the compressed stream (Fletcher-32 before deflate).
        let inner = [Filter::Fletcher32, Filter::Deflate];
        let raw = zlib(&with_fletcher(data.clone()));
        assert_eq!(decode(&inner, 0, raw, data.len()).unwrap(), data);
        // A flipped byte is caught by the checksum; a wrong size is an error.
        let mut bad = with_fletcher(zlib(&shuffle(&data, 8)));
        bad[10] ^= 1;
        let e = decode(&pipeline, 0, bad, data.len()).unwrap_err();
        assert!(e.contains("Fletcher-32"), "{e}");
        assert!(decode(&pipeline, 0b111, data.clone(), data.len() + 1).is_err());
    }

    #[test]
    fn inflate_rejects_wrong_sizes_and_garbage() {
        use flate2::Compression;
        use flate2::write::ZlibEncoder;
        use std::io::Write;
        let data = vec![7u8; 1000];
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::new(4));
        enc.write_all(&data).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(inflate(&z, 1000).unwrap(), data);
        assert!(inflate(&z, 999).is_err());
        assert!(inflate(&z, 1001).is_err());
        assert!(inflate(&z[..z.len() / 2], 1000).is_err());
        assert!(inflate(b"not a zlib stream", 1000).is_err());
    }
}
