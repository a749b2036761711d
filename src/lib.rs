//! Client for hdfstream servers.
