//! tongban-node: a region node (see `tongban_node::cli`).

fn main() -> std::process::ExitCode {
    tongban_node::cli::main(std::env::args_os())
}
