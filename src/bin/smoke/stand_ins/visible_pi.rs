//! The stand-in `pi` of the `visible` scenario: this binary, started by tmux in a window
//! through a symlink whose name says what to play (argv\[0\] is how a window's runtime is
//! told apart; tmux gives it no other channel than the argv the library builds).
//!
//! - `pi-visible`: checks its argv with `parse_visible_pi_args` and against the layout
//!   written out by hand below, reads the gid from the session file's header (as `pi`
//!   does), binds `<cwd>/control/<gid>.sock` — the cwd is the window's, so a window opened
//!   in the wrong directory never makes the socket the scenario waits for — and accepts
//!   until tmux hangs up its terminal (SIGHUP, the default action ends it).
//! - `pi-visible-exits`: the same checks, then leaves [`EXITED_MARKER`] in
//!   `<cwd>/control/` and exits 3 at once (a `pi` that dies). The marker is what tells
//!   V2's exit apart from an argv mismatch, which ends the pane just as fast.
//!
//! An argv mismatch exits 2 with the difference on stderr (the pane closes, and the
//! check sees `pane-exited` instead of `socket-alive`). A lifetime cap ends it after
//! two minutes whatever happens.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use entwurf_v2_spawn::production::identity::{SessionHeader, SessionLine, parse_session_line};
use entwurf_v2_spawn::resume_args::parse_visible_pi_args;

use crate::stand_ins::pi_fixture;

/// The program names the scenario links to this binary.
pub const BINDS: &str = "pi-visible";
/// See the module docs.
pub const EXITS: &str = "pi-visible-exits";
/// What `pi-visible-exits` exits with: V2 finds it in the `pane-exited` receipt.
pub const EXIT_CODE: u8 = 3;

/// Left by `pi-visible-exits` in its control dir once its argv passed, just before it
/// exits (see the module docs).
pub const EXITED_MARKER: &str = "pi-visible-exits.argv-ok";

/// Extension args of the scenario: the last ends in `;`, which tmux takes as a command
/// separator unless escaped — unescaped, `kill-server` would run and end the scenario's
/// tmux server.
pub const EXTENSION_ARGS: [&str; 3] = ["-e", "./smoke-extension.ts;", "kill-server"];

/// Which role argv\[0\] names, if any.
pub fn role() -> Option<&'static str> {
    let arg0 = std::env::args_os().next()?;
    let name = Path::new(&arg0).file_name()?.to_str()?.to_owned();
    [BINDS, EXITS].into_iter().find(|role| *role == name)
}

/// The argv the stand-in expects, written out by hand (not by the builder, which must not
/// agree with itself).
fn expected(session_file: &str) -> Vec<String> {
    let mut argv = vec!["--entwurf-control".to_owned()];
    argv.extend(EXTENSION_ARGS.iter().map(|s| (*s).to_owned()));
    argv.extend([
        "--session".to_owned(),
        session_file.to_owned(),
        "--provider".to_owned(),
        pi_fixture::PROVIDER.to_owned(),
        "--model".to_owned(),
        pi_fixture::MODEL.to_owned(),
    ]);
    argv
}

fn fail(why: &str) -> ExitCode {
    eprintln!("stand-in visible pi: {why}");
    ExitCode::from(2)
}

/// Plays `role`.
pub fn run(role: &str) -> ExitCode {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(120));
        std::process::exit(3);
    });
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match parse_visible_pi_args(&argv) {
        Ok(parsed) => parsed,
        Err(e) => return fail(&e.to_string()),
    };
    if argv != expected(&parsed.session_file) {
        return fail(&format!(
            "argv {argv:?}, expected {:?}",
            expected(&parsed.session_file)
        ));
    }
    if role == EXITS {
        let marker = Path::new(pi_fixture::CONTROL_DIR).join(EXITED_MARKER);
        if let Err(e) = std::fs::write(&marker, format!("argv ok, exiting {EXIT_CODE}\n")) {
            return fail(&format!("writing {}: {e}", marker.display()));
        }
        return ExitCode::from(EXIT_CODE);
    }
    let header = std::fs::read_to_string(&parsed.session_file)
        .ok()
        .and_then(|text| text.lines().next().map(parse_session_line));
    let Some(SessionLine::Header(SessionHeader { id: Some(gid), .. })) = header else {
        return fail("the session file has no header with an id");
    };
    let socket = Path::new(pi_fixture::CONTROL_DIR).join(format!("{gid}.sock"));
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("binding {}: {e}", socket.display())),
    };
    for connection in listener.incoming() {
        drop(connection);
    }
    ExitCode::SUCCESS
}
