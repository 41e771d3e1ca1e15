//! A temp dir short enough for unix sockets, whatever `TMPDIR` is: `sun_path` holds 107
//! bytes, and a test world's control socket sits a few dirs deep, so a CI's or a Mac's
//! `TMPDIR` of 50 characters already leaves no room (the live gate's socket dirs follow
//! the same rule, `harness::cleanup::temp_dirs::socket_root`).

/// Where a test puts a dir that will hold sockets: under `/tmp`, removed on drop.
///
/// # Panics
///
/// When `/tmp` takes no new dir: the tests cannot run without one.
#[must_use]
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in("/tmp")
        .expect("a short temp dir in /tmp (for unix sockets: sun_path holds 107 bytes)")
}
