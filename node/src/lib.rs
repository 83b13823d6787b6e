//! tongban-node as a library: the parts of the region node that other crates (benches, the crash
//! test's stress tool) build on. Today that is the durable transparency log.

pub mod log;
