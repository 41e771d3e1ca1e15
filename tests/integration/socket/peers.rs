//! Who listens, not only who owns the file: a listener running as another uid behind a
//! socket file that looks like ours is forged on both backends (the peer's uid is read
//! on the connected socket). This is what keeps the portable probe honest when a path
//! is swapped between its `lstat` and its connect.

use super::*;
use entwurf_test_support::sockets::listening_as;

per_backend!(
    #[tokio::test] -> super::TestResult:
    a_listener_of_another_uid_behind_our_socket_file_is_forged,
);

async fn a_listener_of_another_uid_behind_our_socket_file_is_forged(
    backend: Backend,
) -> TestResult {
    if !nix::unistd::geteuid().is_root() {
        entwurf_test_support::ci::skip_unless_ci("listening as another uid needs root");
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
