//! Signals to the nodes, and the clean-up when the testnet itself is interrupted: the nodes run in
//! process groups of their own (so a ctrl-c at the terminal reaches only the testnet, and a node
//! stopped with SIGSTOP cannot be left behind), hence the testnet kills what it started.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Result, anyhow};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Default)]
struct Registry {
    /// Nodes this process started and has not handed over (`up` hands them over at its end).
    pids: BTreeSet<u32>,
    /// Temporary directories to remove if interrupted (their `TempDir` drop never runs then).
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(Registry::default))
}

pub fn register(pid: u32) {
    with(|r| r.pids.insert(pid));
}

pub fn unregister(pid: u32) {
    with(|r| r.pids.remove(&pid));
}

/// The testnet's state directory: `dir`, or a new temporary one (named `prefix…`, removed when the
/// returned guard drops or a signal stops the run).
pub fn state_dir(
    dir: Option<&std::path::Path>,
    prefix: &str,
) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = dir {
        return Ok((dir.to_owned(), None));
    }
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| anyhow!("making a temporary directory: {e}"))?;
    register_dir(temp.path().to_owned());
    Ok((temp.path().join("testnet"), Some(temp)))
}

pub fn register_dir(dir: PathBuf) {
    with(|r| r.dirs.push(dir));
}

fn pid(pid: u32) -> Result<Pid> {
    i32::try_from(pid)
        .map(Pid::from_raw)
        .map_err(|_| anyhow!("process id {pid} out of range"))
}

pub fn send(target: u32, signal: Signal) -> Result<()> {
    kill(pid(target)?, signal).map_err(|e| anyhow!("sending {signal} to process {target}: {e}"))
}

/// Whether a process with this id exists (a zombie counts: callers reap their own children).
pub fn exists(target: u32) -> bool {
    pid(target).is_ok_and(|p| kill(p, None).is_ok())
}

/// On SIGINT or SIGTERM: kill every registered node (SIGCONT first, in case the partition
/// scenario had stopped it), remove the temporary directories, and exit 130.
pub fn install_handler() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async {
                let interrupt = tokio::signal::ctrl_c();
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(term) => term,
                        Err(_) => {
                            let _ = interrupt.await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            });
            let (pids, dirs) = with(|r| (r.pids.clone(), r.dirs.clone()));
            eprintln!(
                "tongban-testnet: interrupted; stopping {} node(s) it started",
                pids.len()
            );
            for p in pids {
                // Best effort: a node that already exited needs nothing.
                let _ = send(p, Signal::SIGCONT);
                let _ = send(p, Signal::SIGKILL);
            }
            for dir in dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
            std::process::exit(130);
        })?;
    Ok(())
}
