//! tongban-node: a region node (see `tongban_node::cli`).

// Requests allocate on one of tokio's threads and free on another; glibc's arenas cost about a
// fifth of the node's CPU under load (perf), mimalloc less (verification +5–15 % side by side).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tongban_node::cli::main(std::env::args_os())
}
