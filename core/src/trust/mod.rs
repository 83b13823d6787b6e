//! The trust hierarchy (specs/trust.md): federation root → region roots → e-seals.

pub mod bundle;
pub mod region;
pub mod revocation;
pub mod seal;
pub mod snapshot;
pub mod status_list;
pub mod status_set;

pub use bundle::{BundleContents, FederationRoot, SealEntry, TrustStore};
pub use region::RegionRoot;
pub use revocation::SealRevocation;
pub use seal::{MediaType, Picture, SealId, SealInfo, SealType};
pub use snapshot::{Lookup, StatusEntry, StatusSnapshot, StatusTable};
pub use status_list::{ListLookup, StatusList, StatusListToken, StatusLists};
pub use status_set::{LoadedStatus, StatusSet};
