//! tongban-node as a library: the parts of the region node that other crates (benches, the crash
//! test's stress tool) build on. Today: the durable transparency log, checkpoint signing under the
//! extend-only rule, the Tongban entry indexes, and the audit export.

pub mod api;
pub mod checkpoints;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod entry_index;
pub mod export;
pub mod federation;
pub mod home;
pub mod keyfile;
pub mod log;
pub mod metrics;
pub mod page;
pub mod receipts;
pub mod refusal;
pub mod region;
pub mod serve;
pub mod standby;
pub mod storage;
pub mod tiles_http;
