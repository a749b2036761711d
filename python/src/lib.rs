//! `polars_hdfstream._lib`: the Rust side of the `polars-hdfstream` Python package.
//!
//! It holds the state of a scan (the opened table, the row planning, the prefetching
//! reader) and hands record batches to Python through the Arrow C data interface
//! (`__arrow_c_array__`, `__arrow_c_stream__`, `__arrow_c_schema__` PyCapsules), so no
//! buffer is copied on the way to Polars or pyarrow. Network work runs with the GIL
//! released. The Polars glue (`register_io_source`, the fallback filter) is the pure-Python
//! package on top.
//!
//! The modules [`predicate`] and [`plan`] are plain Rust (tested with `cargo test`); [`py`]
//! is the Python binding.

pub mod plan;
pub mod predicate;
pub mod py;
pub mod source;
pub mod stats;
