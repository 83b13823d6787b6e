//! tongban-verify: verify Tongban e-certificates offline (see `tongban_verify::cli`).

fn main() -> std::process::ExitCode {
    tongban_verify::cli::main(std::env::args_os())
}
