//! Visible resume against a real tmux server (a private one per test, killed on drop):
//! socket-alive and pane-exited in milliseconds, the window left open, the lock released
//! once; and every bad input refused with nothing launched.

mod world;

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

use entwurf_v2_spawn::resume_args::PassthroughArgs;
use entwurf_v2_spawn::visible::{
    LaunchError, LaunchReceipt, LaunchRequest, Launcher, ObservationReceipt, PaneExitStatus,
    Refusal, TmuxLauncher, VisibleError, visible_resume, watch_process_exit,
};

use world::{
    PrivateTmux, STAND_IN_SOCKET, World, count_releases, eventually, fake_tmux, tmux_available,
};

/// Generous for a loaded CI machine; the figures themselves come from the bench.
const PROMPT: Duration = Duration::from_secs(3);

/// The stand-in `pi`: run by the tests' `bin/pi` wrapper through tmux, never on its own.
/// Binds the control socket named in its env and accepts until tmux's server goes (its
/// SIGHUP ends this process) or a minute passes.
#[test]
#[ignore = "the stand-in pi of the tmux tests; they start it in a tmux window"]
fn stand_in_pi() {
    let Some(socket) = std::env::var_os(STAND_IN_SOCKET) else {
        return;
    };
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("stand-in pi: bind");
    std::thread::spawn(move || for _ in listener.incoming() {});
    std::thread::sleep(Duration::from_secs(60));
}

#[tokio::test]
async fn a_pi_that_binds_is_socket_alive_in_ms_and_its_window_stays_open() {
    if !tmux_available() {
        return;
    }
    let tmux = PrivateTmux::start();
    let mut world = World::new();
    world.install_binding_pi(module_path!());
    // A final ';' is a command separator to tmux: it must reach pi unchanged.
    world.options.shared.extension_args =
        PassthroughArgs::new(["-e", "ext;", "kill-server"]).expect("accepted");
    let releases = count_releases(&mut world.options);
    let launcher = TmuxLauncher::named_server(&tmux.name, "main");

    let done = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect("resumed");
    let ObservationReceipt::SocketAlive { after } = done.observation else {
        panic!("{:?}", done.observation)
    };
    eprintln!("socket-alive after {after:?}; launch {}", done.launch);
    assert!(after < PROMPT, "{after:?}");
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert!(!world.lock_exists());
    assert_eq!(done.launch.session, "main");
    assert!(
        tmux.windows().contains(&done.launch.window_id),
        "window closed"
    );

    let file = world.session_file.to_str().expect("utf-8");
    let expected = [
        "--entwurf-control",
        "-e",
        "ext;",
        "kill-server",
        "--session",
        file,
        "--provider",
        "prov",
        "--model",
        "model",
    ];
    assert_eq!(world.recorded_argv().expect("pi ran"), expected);
}

#[tokio::test]
async fn a_pi_that_dies_at_once_is_pane_exited_in_ms_not_a_timeout() {
    if !tmux_available() {
        return;
    }
    let tmux = PrivateTmux::start();
    let mut world = World::new();
    world.install_pi("exit 3");
    let releases = count_releases(&mut world.options);
    // The caller's own server, as $TMUX names it from inside the session.
    let launcher = TmuxLauncher::caller(Some(tmux.tmux_env()));

    let done = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect("resumed");
    let ObservationReceipt::PaneExited { after, status } = done.observation else {
        panic!("{:?}", done.observation)
    };
    eprintln!("pane-exited after {after:?}");
    assert!(after < PROMPT, "{after:?}");
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert!(!world.lock_exists());
    assert!(world.recorded_argv().is_some(), "pi never ran");
    // As the operator sees it: the status in the receipt, the window named after the
    // gid and still there with its dead pane (remain-on-exit for that window only).
    assert_eq!(status, Some(PaneExitStatus::Code(3)));
    let show = |target: &str, format: &str| {
        let out = tmux
            .tmux()
            .args(["display-message", "-p", "-t", target, format])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let window = done.launch.window_id.as_str();
    assert!(tmux.windows().iter().any(|w| w == window), "window closed");
    assert_eq!(
        show(window, "#{window_name} #{pane_dead} #{remain-on-exit}"),
        format!("{} 1 on", world.gid)
    );
    assert_eq!(
        show("main:0", "#{remain-on-exit}"),
        "off",
        "remain-on-exit must be for that window only"
    );
}

#[tokio::test]
async fn a_process_that_is_already_gone_counts_as_exited() {
    let mut child = std::process::Command::new("true").spawn().expect("true");
    let pid = child.id();
    child.wait().expect("reaped");
    let exited = watch_process_exit(pid).expect("watch");
    tokio::time::timeout(PROMPT, exited)
        .await
        .expect("resolved at once")
        .expect("exited");
}

fn request(world: &World, cwd: &std::path::Path) -> LaunchRequest {
    LaunchRequest::new(
        world.gid.clone(),
        world.options.shared.pi_program.clone(),
        vec!["--entwurf-control".into()],
        cwd.to_path_buf(),
    )
}

#[tokio::test]
async fn a_cwd_tmux_would_misread_is_refused_with_nothing_launched() {
    let mut world = World::new();
    world.install_pi("exit 0");
    let root = world.tmp.path().to_path_buf();
    let marker = root.join("marker");
    let hash = root.join(format!("#(touch {})", marker.display()));
    std::fs::create_dir_all(&hash).expect("mkdir");
    let file = root.join("a-file");
    std::fs::write(&file, b"").expect("file");
    let (fake, ran) = fake_tmux(&root, "9 1 %1 @1 1 main\n");
    let launcher = TmuxLauncher::named_server("unused", "main").with_tmux_program(&fake);

    type Expect = fn(&LaunchError) -> bool;
    let cases: [(&std::path::Path, Expect); 4] = [
        (std::path::Path::new("work"), |e| {
            matches!(e, LaunchError::CwdNotAbsolute { .. })
        }),
        (&root.join("missing"), |e| {
            matches!(e, LaunchError::CwdMissing { .. })
        }),
        (&file, |e| matches!(e, LaunchError::CwdNotDirectory { .. })),
        (&hash, |e| matches!(e, LaunchError::CwdHasHash { .. })),
    ];
    for (cwd, expected) in cases {
        let error = launcher
            .launch(&request(&world, cwd))
            .await
            .expect_err("refused");
        assert!(expected(&error), "{cwd:?}: {error}");
        assert!(error.nothing_launched() && !error.advice().is_empty());
    }
    assert!(!ran.exists(), "tmux ran for a refused cwd");

    // And against a real server: no window, and the #(…) never executed.
    if tmux_available() {
        let tmux = PrivateTmux::start();
        let before = tmux.windows();
        let real = TmuxLauncher::named_server(&tmux.name, "main");
        let error = real
            .launch(&request(&world, &hash))
            .await
            .expect_err("refused");
        assert!(matches!(error, LaunchError::CwdHasHash { .. }), "{error}");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(tmux.windows(), before);
    }
    assert!(!marker.exists(), "tmux executed the #(…) in the cwd");
}

#[tokio::test]
async fn a_runtime_path_with_whitespace_is_refused_with_nothing_launched() {
    let world = World::new();
    let root = world.tmp.path();
    let spaced = root.join("my bin");
    std::fs::create_dir_all(&spaced).expect("mkdir");
    let pi = spaced.join("pi");
    std::fs::write(&pi, "#!/bin/sh\n").expect("pi");
    std::fs::set_permissions(&pi, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (fake, ran) = fake_tmux(root, "9 1 %1 @1 1 main\n");
    let launcher = TmuxLauncher::named_server("unused", "main")
        .with_tmux_program(&fake)
        .with_search_path(spaced.clone().into_os_string());
    let mut req = request(&world, &world.cwd);
    req.program = OsString::from("pi");
    let error = launcher.launch(&req).await.expect_err("refused");
    assert!(
        matches!(error, LaunchError::RuntimeWhitespace { .. }),
        "{error}"
    );

    for (program, kind) in [("nope", "not found"), ("bin/pi", "relative")] {
        req.program = OsString::from(program);
        let error = launcher.launch(&req).await.expect_err(program);
        assert!(error.to_string().contains(kind), "{error}");
    }
    assert!(!ran.exists(), "tmux ran for a refused runtime");
}

#[tokio::test]
async fn an_unparsable_handle_says_a_window_may_be_open() {
    let mut world = World::new();
    world.install_pi("exit 0");
    let (fake, ran) = fake_tmux(world.tmp.path(), "not a handle\n");
    let launcher = TmuxLauncher::named_server("unused", "main").with_tmux_program(&fake);
    let releases = count_releases(&mut world.options);
    let error = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect_err("uncertain");
    assert!(ran.exists(), "tmux did run");
    let VisibleError::LaunchUncertain { error: launch, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(matches!(launch, LaunchError::UnparsableHandle { .. }));
    assert!(
        entwurf_v2_spawn::error_chain(&error).contains("a window may be open"),
        "{error}"
    );
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert!(!world.lock_exists());
}

#[tokio::test]
async fn no_tmux_env_and_no_named_server_is_a_refusal_with_nothing_launched() {
    let mut world = World::new();
    world.install_pi("exit 0");
    let (fake, ran) = fake_tmux(world.tmp.path(), "9 1 %1 @1 1 main\n");
    let launcher = TmuxLauncher::caller(None).with_tmux_program(&fake);
    let releases = count_releases(&mut world.options);
    let error = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect_err("refused");
    let Some(Refusal::Launch(LaunchError::NoServer)) = error.refusal() else {
        panic!("{error:?}")
    };
    assert!(
        error
            .refusal()
            .is_some_and(|r| r.advice().contains("inside tmux"))
    );
    assert!(!ran.exists(), "tmux ran without a server");
    assert!(world.recorded_argv().is_none(), "pi ran");
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert!(!world.lock_exists());
}

#[tokio::test]
async fn a_live_citizen_is_refused_and_no_window_opens() {
    if !tmux_available() {
        return;
    }
    let tmux = PrivateTmux::start();
    let mut world = World::new();
    world.install_pi("exit 0");
    let _live = UnixListener::bind(world.options.socket_path(&world.gid)).expect("bind");
    let before = tmux.windows();
    let launcher = TmuxLauncher::named_server(&tmux.name, "main");
    let error = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect_err("refused");
    assert_eq!(error.refusal().map(Refusal::kind), Some("target-live"));
    assert_eq!(tmux.windows(), before);
    assert!(!eventually(Duration::from_millis(200), || world
        .recorded_argv()
        .is_some()));
}

#[tokio::test]
async fn a_tmux_that_never_answers_is_bounded_and_says_a_window_may_be_open() {
    let mut world = World::new();
    world.install_pi("exit 0");
    let (fake, ran) = fake_tmux(world.tmp.path(), "");
    let slow = world.tmp.path().join("slow-tmux");
    std::fs::write(
        &slow,
        format!("#!/bin/sh\n'{}'\nexec sleep 30\n", fake.display()),
    )
    .expect("slow tmux");
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let launcher = TmuxLauncher::named_server("unused", "main")
        .with_tmux_program(&slow)
        .with_launch_timeout(Duration::from_millis(200));
    let releases = count_releases(&mut world.options);
    let started = std::time::Instant::now();
    let error = visible_resume(&world.gid, &world.options, &launcher)
        .await
        .expect_err("timed out");
    assert!(started.elapsed() < PROMPT, "{:?}", started.elapsed());
    let VisibleError::LaunchUncertain { error: launch, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(launch, LaunchError::TmuxTimedOut { .. }),
        "{launch}"
    );
    assert!(ran.exists(), "tmux did run");
    assert_eq!(releases.load(Ordering::SeqCst), 1);
    assert!(!world.lock_exists());
}

/// A pane's process is a child of the tmux server. A process at the pane's pid whose
/// parent is not the server took the pid of a pane process that is gone: exited at once.
#[tokio::test]
async fn a_pid_that_is_not_the_servers_child_is_not_the_pane() {
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .spawn()
        .expect("sleep");
    let receipt = |server_pid| LaunchReceipt::new("main", "@1", 1, "%1", child.id(), server_pid);
    let launcher = TmuxLauncher::named_server("unused", "main");

    // Its parent is this test process, not "server" pid 1: not the pane, gone at once.
    let stranger = launcher.watch_pane_exit(&receipt(1)).expect("watch");
    tokio::time::timeout(PROMPT, stranger)
        .await
        .expect("resolved at once")
        .expect("exited");

    // With its real parent as the server, it is the pane: running until it exits.
    let pane = launcher
        .watch_pane_exit(&receipt(std::process::id()))
        .expect("watch");
    let mut pane = std::pin::pin!(pane);
    let early = tokio::time::timeout(Duration::from_millis(200), pane.as_mut()).await;
    assert!(early.is_err(), "a running pane counted as exited");
    child.kill().expect("kill");
    tokio::time::timeout(PROMPT, pane)
        .await
        .expect("exit observed")
        .expect("exited");
    child.wait().expect("reaped");
}

/// Until the tmux server reaps the pane's process, the kernel keeps its exit status in
/// `/proc/<pid>/stat` (field 52, in `waitpid` form): an exit code and a signal read
/// there as they are, from a zombie of the server only. This test process stands in for
/// the server (the zombies are its children, unreaped until the end); the tmux program
/// does not exist, so the server cannot be asked and `/proc` is the only source.
#[tokio::test]
async fn a_zombie_pane_process_tells_its_status_to_its_server_only() {
    use std::os::unix::process::ExitStatusExt;

    let tmp = tempfile::tempdir().expect("tmp");
    // A command name that reads like the start of a zombie's stat when counted from
    // its first ')': state Z, parent 1.
    let odd_name = tmp.path().join("x) Z 1 (y");
    std::os::unix::fs::symlink("/bin/sh", &odd_name).expect("symlink");
    let launcher =
        TmuxLauncher::named_server("unused", "main").with_tmux_program(tmp.path().join("no-tmux"));
    let server = std::process::id();
    let status_of = async |child: &std::process::Child, server_pid| {
        let receipt = LaunchReceipt::new("main", "@1", 1, "%1", child.id(), server_pid);
        launcher.pane_exit_status(&receipt).await
    };
    let zombie = |child: &std::process::Child| {
        let pid = child.id();
        assert!(
            eventually(PROMPT, || entwurf_procfs::proc_state(pid) == Some('Z')),
            "{pid} did not become a zombie"
        );
    };

    let mut exited = std::process::Command::new(&odd_name)
        .args(["-c", "exit 3"])
        .spawn()
        .expect("sh");
    zombie(&exited);
    assert_eq!(
        status_of(&exited, server).await,
        Some(PaneExitStatus::Code(3))
    );
    // Not the server's child: a stranger's zombie at the pane's pid says nothing about
    // the pane.
    assert_eq!(status_of(&exited, 1).await, None);

    let mut killed = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let mut running = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    killed.kill().expect("SIGKILL");
    zombie(&killed);
    assert_eq!(
        status_of(&killed, server).await,
        Some(PaneExitStatus::Signal(9))
    );
    // Still running: no status yet.
    assert_eq!(status_of(&running, server).await, None);

    // The kernel agrees with what was read (and the zombies are reaped).
    assert_eq!(exited.wait().expect("reap").code(), Some(3));
    assert_eq!(killed.wait().expect("reap").signal(), Some(9));
    running.kill().expect("SIGKILL");
    running.wait().expect("reap");
}

/// Once the tmux server has reaped the pane's process (no zombie left to read), the
/// server alone knows how it ended: remain-on-exit keeps the dead pane, and it is asked.
/// A server that is gone is asked once, not for a second: its failure is an answer.
#[tokio::test]
async fn a_reaped_pane_process_has_its_status_from_the_server() {
    if !tmux_available() {
        return;
    }
    let tmux = PrivateTmux::start();
    let world = World::new();
    // The real tmux behind a wrapper that counts the calls.
    let calls = world.tmp.path().join("tmux-calls");
    let counting = world.tmp.path().join("counting-tmux");
    std::fs::write(
        &counting,
        format!(
            "#!/bin/sh\necho >> '{}'\nexec tmux \"$@\"\n",
            calls.display()
        ),
    )
    .expect("counting tmux");
    std::fs::set_permissions(
        &counting,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let launcher = TmuxLauncher::named_server(&tmux.name, "main").with_tmux_program(&counting);
    let asked = || std::fs::read_to_string(&calls).map_or(0, |c| c.lines().count());
    let dead = |pane: &str| {
        let out = tmux
            .tmux()
            .args(["display-message", "-p", "-t", pane, "#{pane_dead}"])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    };

    let mut last = None;
    for (script, expected) in [
        ("exit 3", PaneExitStatus::Code(3)),
        ("kill -9 $$", PaneExitStatus::Signal(9)),
    ] {
        let request = LaunchRequest::new(
            world.gid.clone(),
            "/bin/sh".into(),
            vec!["-c".into(), script.into()],
            world.cwd.clone(),
        );
        // Dead to tmux and reaped by it: no zombie of the server is left to read. Both,
        // because tmux marks the pane dead when its pty closes, which can come before
        // the server's waitpid. Now and then a pane is not reaped within the wait (a
        // tmux 3.3a server has left zombies unreaped for good, see `pane_exit_status`,
        // and a server starved of CPU is late): such a pane cannot show the server's
        // answer, so another window is opened.
        let mut reaped = None;
        for _ in 0..5 {
            let receipt = launcher.launch(&request).await.expect("window");
            let gone = || {
                dead(&receipt.pane_id)
                    && !entwurf_procfs::proc_stat(receipt.pane_pid)
                        .is_some_and(|s| s.state == 'Z' && s.ppid == receipt.server_pid)
            };
            if eventually(Duration::from_secs(2), gone) {
                reaped = Some(receipt);
                break;
            }
        }
        let receipt = reaped.unwrap_or_else(|| panic!("{script}: tmux reaped no pane"));
        assert_eq!(
            launcher.pane_exit_status(&receipt).await,
            Some(expected),
            "{script}"
        );
        last = Some(receipt);
    }

    let receipt = last.expect("launched");
    let status = tmux
        .tmux()
        .arg("kill-server")
        .status()
        .expect("kill-server");
    assert!(status.success());
    let before = asked();
    assert_eq!(launcher.pane_exit_status(&receipt).await, None);
    assert_eq!(asked() - before, 1, "the gone server was asked again");
}
