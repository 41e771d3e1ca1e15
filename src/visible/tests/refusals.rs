//! Refusals: nothing launched, the lock released once (or, when held, left to its
//! holder).

use std::sync::Arc;

use super::*;

#[tokio::test(start_paused = true)]
async fn a_held_lock_refuses_and_is_left_to_its_holder() {
    let world = World::new();
    let theirs = crate::lock::acquire(&world.options.shared.lock_dir, &world.gid).expect("held");
    let fake = Fake::new(opens(Some(0), None), &world);
    let refusal = world.refused(&fake).await;
    assert_eq!(refusal.kind(), "lock-held");
    assert_eq!(world.releases(), 0);
    assert_eq!(
        crate::lock::release(&theirs).expect("theirs"),
        ReleaseOutcome::Released
    );
}

#[tokio::test(start_paused = true)]
async fn a_missing_session_refuses_and_releases_once() {
    let world = World::new();
    std::fs::remove_file(&world.session_file).expect("rm");
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "identity");
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_live_socket_refuses_target_live() {
    let world = World::new();
    let _live = UnixListener::bind(&world.socket).expect("bind");
    let fake = Fake::new(opens(Some(0), None), &world);
    let refusal = world.refused(&fake).await;
    assert_eq!(refusal.kind(), "target-live");
    assert!(
        refusal.advice().contains("already running"),
        "{}",
        refusal.advice()
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

// Linux: the atomic close-on-exec and non-blocking socket flags (other targets only
// type-check this crate's tests).
#[cfg(target_os = "linux")]
#[tokio::test(start_paused = true)]
async fn a_full_backlog_refuses_as_indeterminate_never_as_dead() {
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, listen, socket,
    };

    let world = World::new();
    let server = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let addr = UnixAddr::new(&world.socket).expect("addr");
    bind(server.as_raw_fd(), &addr).expect("bind");
    listen(&server, Backlog::new(0).expect("backlog")).expect("listen");
    let mut queued = Vec::new();
    loop {
        let client = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("client");
        match connect(client.as_raw_fd(), &addr) {
            Ok(()) => queued.push(client),
            Err(Errno::EAGAIN) => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 64, "the backlog never filled");
    }
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "liveness-indeterminate");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_symlink_or_a_file_at_the_socket_path_is_an_address_conflict() {
    for plant in [
        |p: &Path| std::os::unix::fs::symlink("/elsewhere.sock", p),
        |p: &Path| std::fs::write(p, b"not a socket"),
    ] {
        let world = World::new();
        plant(&world.socket).expect("plant");
        let fake = Fake::new(opens(Some(0), None), &world);
        let refusal = world.refused(&fake).await;
        assert_eq!(refusal.kind(), "address-conflict");
        assert!(
            refusal.advice().starts_with("remove "),
            "{}",
            refusal.advice()
        );
        assert_eq!(world.releases(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn an_argv_that_cannot_be_built_refuses_before_launch() {
    // Reserved extension args cannot get this far (`PassthroughArgs` refuses them when
    // built); a custom resolver that names a relative session file can.
    let mut world = World::new();
    let real = world.options.resolve_session.clone();
    world.options.resolve_session = Arc::new(move |agent, gid, ext| {
        let mut found = real(agent, gid, ext)?;
        found.session_file = "sessions/d/s.jsonl".into();
        Ok(found)
    });
    let fake = Fake::new(opens(Some(0), None), &world);
    let refusal = world.refused(&fake).await;
    assert_eq!(refusal.kind(), "argv");
    assert!(
        refusal.advice().contains("not absolute"),
        "{}",
        refusal.advice()
    );
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_launcher_refusal_releases_once_with_advice() {
    let world = World::new();
    let fake = Fake::new(
        Act::Fails(|| LaunchError::CwdHasHash {
            cwd: "/w/#(touch x)".into(),
        }),
        &world,
    );
    let Err(VisibleError::Refused(Refusal::Launch(LaunchError::CwdHasHash { .. }))) =
        world.run(&fake).await
    else {
        panic!("expected a launch refusal")
    };
    assert_eq!(fake.launches(), 1);
    assert_eq!((world.releases(), world.lock_exists()), (1, false));
}

#[tokio::test(start_paused = true)]
async fn a_broken_lock_dir_is_an_error_not_a_refusal_and_nothing_runs() {
    let mut world = World::new();
    let file = world.cwd.join("not-a-dir");
    std::fs::write(&file, b"").expect("file");
    world.options.shared.lock_dir = file;
    let fake = Fake::new(opens(Some(0), None), &world);
    let error = world.run(&fake).await.expect_err("broken lock dir");
    assert!(matches!(error, VisibleError::Lock(_)), "{error:?}");
    assert_eq!((fake.launches(), world.releases()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_socket_path_that_cannot_be_looked_at_is_indeterminate() {
    let mut world = World::new();
    // A file where the control dir should be: ENOTDIR, never taken as "absent".
    let file = world.cwd.join("control-file");
    std::fs::write(&file, b"").expect("file");
    world.options.shared.control_dir = file;
    let fake = Fake::new(opens(Some(0), None), &world);
    assert_eq!(world.refused(&fake).await.kind(), "liveness-indeterminate");
    assert_eq!(world.releases(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_whose_release_fails_keeps_the_refusal_and_names_the_lock() {
    let mut world = World::new();
    std::fs::remove_file(&world.session_file).expect("rm");
    world.options.shared.release = Arc::new(|claim| {
        Err(crate::lock::LockIoError {
            op: "remove lock file",
            path: claim.lock_path().to_path_buf(),
            source: std::io::Error::other("injected"),
        })
    });
    let fake = Fake::new(opens(Some(0), None), &world);
    let error = world.run(&fake).await.expect_err("release failed");
    let VisibleError::Release {
        refusal: Some(refusal),
        launch: None,
        lock_path,
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(refusal.kind(), "identity");
    assert!(lock_path.ends_with(format!("{GID}.lock")), "{lock_path:?}");
    assert_eq!(fake.launches(), 0);
}
