//! tongban-verify: verify Tongban e-certificates offline, inspect them, and run the conformance
//! vectors. The whole command line is [`cli::main`]; the binary is a thin wrapper around it.

pub mod audit;
pub mod bulk;
pub mod cli;
mod fetch;
mod generate;
mod qr;
mod report;
mod sharing;
mod status;
mod trust;
mod vectors;
