//! Throughput of the streaming ndarray decoder against a plain memcpy of the same size.
//!
//! `cargo bench -p hdfstream-protocol --bench decode` builds an in-memory 256 MiB `<f8`
//! ndarray response and decodes it (a) pushed in 1 MiB chunks through `feed`, (b) through
//! `decode_array_from_reader` from a reader that yields at most 1 MiB per `read` (payload
//! read straight into the final buffer), and (c) the same from one slice. Baselines: a
//! memcpy of the payload into a freshly allocated zeroed buffer (same page-fault cost as
//! the decoder's single allocation) and into an already touched buffer, which is what
//! decoding into a caller's buffer (`ArrayIntoDecoder`, read_into) is compared with.

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use hdfstream_protocol::{
    ArrayData, ArrayDecoder, ArrayIntoDecoder, Dtype, bin_header, bin_lengths,
    decode_array_from_reader, decode_array_into_from_reader, ndarray_header,
};

const SIZE: usize = 256 << 20;
const CHUNK: usize = 1 << 20;
const ROUNDS: usize = 7;

/// A reader that returns at most `CHUNK` bytes per call, like a socket.
struct Chunked<'a>(&'a [u8]);

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn body() -> Vec<u8> {
    let n = SIZE / 8;
    let dtype = Dtype::parse("<f8").unwrap();
    let mut out = ndarray_header(&dtype, &[n as u64], SIZE as u64);
    out.reserve(SIZE + 16);
    for len in bin_lengths(SIZE as u64) {
        out.extend_from_slice(&bin_header(len));
    }
    for i in 0..n {
        out.extend_from_slice(&(i as f64 * 0.5).to_le_bytes());
    }
    out
}

/// Median of `ROUNDS` timings of `f`.
fn time(mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    t[ROUNDS / 2]
}

fn gbps(d: Duration) -> f64 {
    SIZE as f64 / d.as_secs_f64() / 1e9
}

fn check(v: &ArrayData) {
    let ArrayData::Nd(a) = v else { panic!() };
    assert_eq!(a.len(), SIZE / 8);
}

fn main() {
    let body = body();
    let payload = &body[body.len() - SIZE..];

    let memcpy_fresh = time(|| {
        let mut dst: Vec<u8> = bytemuck_zeroed(SIZE);
        dst.copy_from_slice(payload);
        black_box(&dst);
    });
    let mut warm = vec![1u8; SIZE];
    let memcpy_warm = time(|| {
        warm.copy_from_slice(payload);
        black_box(&warm);
    });
    let feed = time(|| {
        let mut dec = ArrayDecoder::new();
        for c in body.chunks(CHUNK) {
            dec.feed(c).unwrap();
        }
        check(&black_box(dec.finish().unwrap()));
    });
    let reader = time(|| {
        check(&black_box(
            decode_array_from_reader(Chunked(&body)).unwrap(),
        ))
    });
    let feed_huge = time(|| {
        let mut dec = ArrayDecoder::new().with_fresh_buffer_hook(huge_pages);
        for c in body.chunks(CHUNK) {
            dec.feed(c).unwrap();
        }
        check(&black_box(dec.finish().unwrap()));
    });
    let slice = time(|| check(&black_box(decode_array_from_reader(&body[..]).unwrap())));
    let dtype = Dtype::parse("<f8").unwrap();
    let feed_into = time(|| {
        let mut dec = ArrayIntoDecoder::new(&dtype, &mut warm);
        for c in body.chunks(CHUNK) {
            dec.feed(c).unwrap();
        }
        black_box(dec.finish().unwrap());
    });
    let reader_into = time(|| {
        black_box(decode_array_into_from_reader(Chunked(&body), &dtype, &mut warm).unwrap());
    });

    println!("payload {} MiB <f8, median of {ROUNDS} runs", SIZE >> 20);
    println!(
        "memcpy into fresh zeroed buffer : {:6.2} GB/s",
        gbps(memcpy_fresh)
    );
    println!(
        "memcpy into touched buffer      : {:6.2} GB/s",
        gbps(memcpy_warm)
    );
    for (name, d) in [
        ("ArrayDecoder::feed, 1 MiB chunks", feed),
        ("from_reader, 1 MiB reads        ", reader),
        ("from_reader, one slice          ", slice),
        ("feed 1 MiB + MADV_HUGEPAGE hook ", feed_huge),
        ("into touched buffer, feed 1 MiB ", feed_into),
        ("into touched buffer, reader     ", reader_into),
    ] {
        println!(
            "{name}: {:6.2} GB/s  ratio {:.2} (fresh memcpy)  {:.2} (touched memcpy)",
            gbps(d),
            memcpy_fresh.as_secs_f64() / d.as_secs_f64(),
            memcpy_warm.as_secs_f64() / d.as_secs_f64(),
        );
    }
}

/// A zeroed buffer allocated the way the decoder allocates (calloc, pages touched on write).
fn bytemuck_zeroed(n: usize) -> Vec<u8> {
    let layout = std::alloc::Layout::array::<u8>(n).unwrap();
    // SAFETY: non-zero size; the pointer comes from the global allocator with this layout.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        assert!(!p.is_null());
        Vec::from_raw_parts(p, n, n)
    }
}

/// Ask for transparent huge pages on the decoder's new buffer (Linux; a no-op elsewhere).
fn huge_pages(buf: &mut [u8]) {
    #[cfg(target_os = "linux")]
    // SAFETY: advice on memory this process owns; MADV_HUGEPAGE does not change contents.
    unsafe {
        let page = 4096usize;
        let start = (buf.as_mut_ptr() as usize).div_ceil(page) * page;
        let end = (buf.as_mut_ptr() as usize + buf.len()) / page * page;
        if end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}
