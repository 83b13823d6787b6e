//! tongban-node: a region node. Not built yet: the node is issue #4 (on top of the log, issue #3).

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "tongban-node: not built yet — the region node is tracked in issue #4; \
         today only tongban-verify (offline verification) works"
    );
    ExitCode::from(2)
}
