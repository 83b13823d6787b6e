//! The certificate decoder and verifier on arbitrary bytes: must never panic or allocate without
//! bound. Seed corpus: the certificates of specs/vectors/vectors.json.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tongban_core::cert;
use tongban_core::envelope::{Envelope, Kind};
use tongban_core::testkit::{NOW, TestFederation};
use tongban_core::trust::{StatusTable, TrustStore};
use tongban_core::values::Time;

fn trust() -> Option<&'static (TrustStore, Time)> {
    static TRUST: OnceLock<Option<(TrustStore, Time)>> = OnceLock::new();
    TRUST
        .get_or_init(|| {
            let now = Time::new(NOW)?;
            let bundle = TestFederation::standard().ok()?.bundle().ok()?;
            Some((TrustStore::load(&bundle, now, None).ok()?, now))
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let _ = Envelope::open(data, Kind::Certificate);
    let _ = cert::inspect(data);
    if let Some((store, now)) = trust() {
        let _ = cert::verify(data, store, &StatusTable::default(), *now);
    }
});
