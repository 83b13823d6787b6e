//! The log's lookup rows for Tongban entries: by identifier, certificate type, stamping seal, month
//! and entry type. Derived data: rebuilt from the entries whenever needed.

use tongban_core::log::entry::{Act, LogEntry};

use crate::log::Indexer;

pub const BY_IDENTIFIER: &str = "id";
pub const BY_TYPE: &str = "type";
pub const BY_SEAL: &str = "seal";
pub const BY_MONTH: &str = "month";
pub const BY_KIND: &str = "kind";

/// Indexes decodable Tongban entries; anything else gets no rows (the log still keeps it, and an
/// audit will report it).
pub struct EntryIndexer;

impl Indexer for EntryIndexer {
    fn index_keys(&self, entry: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let Ok((_, entry)) = LogEntry::open(entry) else {
            return Vec::new();
        };
        let mut rows = vec![
            (BY_KIND, entry.act.type_name().as_bytes().to_vec()),
            (BY_MONTH, entry.at.to_rfc3339().as_bytes()[..7].to_vec()),
        ];
        if let Some(id) = entry.act.identifier() {
            rows.push((BY_IDENTIFIER, id.as_str().as_bytes().to_vec()));
        }
        if let Act::CertIssued { id, seal, .. } = &entry.act {
            rows.push((BY_TYPE, id.type_code().as_str().as_bytes().to_vec()));
            rows.push((BY_SEAL, seal.0.to_vec()));
        }
        rows
    }
}
