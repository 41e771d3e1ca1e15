//! Shared code of the test binaries (the integration binary and the whole-process
//! binaries that need their own process). A library, so every binary takes the part it
//! uses and nothing is compiled as dead code.
//!
//! - [`fake_deps`]: FAKE watcher dependencies with a paused clock (the deterministic gate);
//! - [`fake_dispatch`]: FAKE dispatch dependencies, scripted looks and sends, counted;
//! - [`world`]: the REAL production wiring in a temp dir, with a stand-in `pi`;
//! - [`real_pi`]: the REAL `pi` runtimes from `./run.sh install-pi`, in a scratch world;
//! - [`fuzz`]: the stable-toolchain runner of the fuzz properties;
//! - [`ci`]: skips that fail on CI (one meaning of `CI`, shared with the live gate);
//! - [`short_dir`]: a temp dir short enough for unix sockets whatever `TMPDIR` is;
//! - `sockets` (Linux): sockets bound but not listening, or listening as another uid;
//! - [`strace`]: a helper test re-run under strace (the fault binaries).

pub mod ci;
pub mod fake_deps;
pub mod fake_dispatch;
pub mod fuzz;
pub mod real_pi;
pub mod short_dir;
#[cfg(target_os = "linux")]
pub mod sockets;
pub mod strace;
pub mod world;
