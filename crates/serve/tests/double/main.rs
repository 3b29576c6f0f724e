//! The double's own tests, one binary: it driven over real HTTP on 127.0.0.1, in-process,
//! through [`avbatch_serve::testing`], never through the product. What needs the `avbatch serve`
//! process itself (kill -9 and restarts, signals, open-file limits, peak memory) is tested with
//! the binary (`tests/suite/server_*.rs`, `tests/server_connections.rs`).

mod api;
mod assets;
mod bounds;
mod connections;
mod contract;
mod encoding;
