//! hdfstream server over local HDF5 files.
