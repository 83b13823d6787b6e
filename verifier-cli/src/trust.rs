//! The options every verifying command shares: the trust bundle, the time to verify at, and the
//! federation root to pin.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use tongban_core::envelope::Kind;
use tongban_core::trust::TrustStore;
use tongban_core::values::Time;

use crate::cli::{now_or, pinned_kid, read_capped};

/// Where the trust comes from, and as of when.
#[derive(Args)]
pub struct TrustArgs {
    /// The trust bundle file (for another region's objects, a federation-wide bundle:
    /// `tongban-verify fetch`).
    #[arg(long)]
    pub trust: PathBuf,
    /// Verify as of this Unix time instead of the clock.
    #[arg(long)]
    now: Option<u64>,
    /// Refuse a bundle whose federation root has another key id (32 hex digits).
    #[arg(long)]
    federation_kid: Option<String>,
}

impl TrustArgs {
    /// The bundle, loaded and checked for the time given (or now), and that time.
    pub fn load(&self) -> Result<(TrustStore, Time)> {
        let now = now_or(self.now)?;
        let pinned = pinned_kid(self.federation_kid.as_deref())?;
        let store = TrustStore::load(
            &read_capped(&self.trust, Kind::TrustBundle.size_limit())?,
            now,
            pinned,
        )
        .map_err(|f| anyhow!("trust bundle {}: {f}", self.trust.display()))?;
        Ok((store, now))
    }
}
