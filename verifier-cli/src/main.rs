//! tongban-verify: verify Tongban e-certificates offline (see `tongban_verify::cli`).

// An audit replay allocates and frees tiles, entries and batches by the million: with glibc's
// allocator a third of its time went to malloc, free and the kernel clearing fresh pages (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tongban_verify::cli::main(std::env::args_os())
}
