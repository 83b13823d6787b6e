//! tongban-testnet: several regions on one machine. Not built yet: issue #7.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "tongban-testnet: not built yet — the local testnet is tracked in issue #7; \
         it needs the region node (issue #4) and the federation (issue #5)"
    );
    ExitCode::from(2)
}
