//! The HDF5 side of the server: opens files (cached), walks objects and streams
//! msgpack responses straight from HDF5 reads.
//!
//! Contract with the HTTP layer (`crate::http`):
//! `Hdf5Files::write_response(file, request, out)` writes exactly one msgpack value for an
//! object or slice request into `out` in bounded pieces and returns `Err(RequestError)`
//! (status + message, PROTOCOL.md §7.1) for anything the reference answers with an error.
//! It is blocking and is called from `spawn_blocking`; it takes the libhdf5 lock per chunk.
