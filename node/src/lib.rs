//! tongban-node as a library: the parts of the region node that other crates (benches, the crash
//! test's stress tool) build on. Today: the durable transparency log, checkpoint signing under the
//! extend-only rule, the Tongban entry indexes, and the audit export.

pub mod checkpoints;
pub mod entry_index;
pub mod export;
pub mod log;
pub mod tiles_http;
