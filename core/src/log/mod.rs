//! The transparency log's formats (specs/log.md): entries, RFC 6962 tree proofs, signed notes,
//! checkpoints, cosignatures and offline receipts.

pub mod audit;
pub mod auditor;
pub mod checkpoint;
pub mod entry;
pub mod frontier;
pub mod ledger;
pub mod note;
pub mod overlay;
pub mod proof;
pub mod receipt;
pub mod replay;
pub mod state;
pub mod tiles;
pub mod tree;
pub mod verification;
