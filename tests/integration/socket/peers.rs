//! Who listens, not only who owns the file: a listener running as another uid behind a
//! socket file that looks like ours is forged on both backends (the peer's uid is read
//! on the connected socket). This is what keeps the portable probe honest when a path
//! is swapped between its `lstat` and its connect.

use super::*;

per_backend!(
    #[tokio::test] -> super::TestResult:
    a_listener_of_another_uid_behind_our_socket_file_is_forged,
);

/// A socket bound at `path` by us (so the file is ours), listening with the credentials
/// of `uid`: the kernel records the listener's credentials at `listen()`. Only the
/// listening thread changes its effective uid (a per-thread `setresuid`), so the rest of
/// the test process keeps running as itself.
#[cfg(target_os = "linux")]
pub(crate) fn listening_as(uid: u32, path: &Path) -> Result<UnixListener, Box<dyn Error>> {
    let fd = bound_not_listening(path)?;
    let listen_as = std::thread::spawn(move || -> Result<OwnedFd, String> {
        let euid = rustix::process::Uid::from_raw(uid);
        // Real and saved uid stay ours; the thread ends right after.
        rustix::thread::set_thread_res_uid(
            None::<rustix::process::Uid>,
            euid,
            None::<rustix::process::Uid>,
        )
        .map_err(|e| format!("set_thread_res_uid: {e}"))?;
        listen(&fd, Backlog::new(16).map_err(|e| e.to_string())?)
            .map_err(|e| format!("listen as uid {uid}: {e}"))?;
        Ok(fd)
    });
    let fd = listen_as
        .join()
        .map_err(|_| "the listening thread panicked")??;
    Ok(UnixListener::from(fd))
}

async fn a_listener_of_another_uid_behind_our_socket_file_is_forged(
    backend: Backend,
) -> TestResult {
    if !nix::unistd::geteuid().is_root() {
        crate::faults_socket::skip_unless_ci("listening as another uid needs root");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("citizen.sock");
    let nobody = 65534;
    let listener = listening_as(nobody, &path)?;

    // The file is ours: only the connected peer's uid tells them apart.
    assert_eq!(inspect_on(&path, backend), Inspection::SocketFile);
    let observation = inspect_and_probe(&path, PROBE_TIMEOUT, backend).await;
    assert_eq!(
        observation.probe,
        Some(Probe::ForeignListener { uid: nobody })
    );
    let conflict = AddressConflict::ForeignListener { uid: nobody };
    assert_eq!(verdict(&observation), Verdict::Forged(conflict));
    let result = forged_now(&path, backend).await;
    let text = match &result {
        Err(e) => e.to_string(),
        Ok(()) => String::new(),
    };
    expect_forged(result, &path, conflict);
    assert!(text.contains("nothing was sent"), "{text}");

    // The probes connected (that is how the uid was learned) and hung up unheard.
    listener.set_nonblocking(true)?;
    let (mut conn, _) = listener.accept()?;
    let mut buf = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut conn, &mut buf)?,
        0,
        "the probe sent data"
    );
    Ok(())
}
