//! The tmux launcher's pure parts: handle parsing, escaping, targets.

use std::os::unix::ffi::OsStringExt;

use super::*;

#[test]
fn the_handle_row_parses_and_keeps_spaces_in_the_session_name() {
    let receipt = parse_handle(b"77 4242 %7 @3 2 my session\n").expect("parses");
    assert_eq!(
        receipt,
        LaunchReceipt {
            session: "my session".into(),
            window_id: "@3".into(),
            window_index: 2,
            pane_id: "%7".into(),
            pane_pid: 4242,
            server_pid: 77,
        }
    );
}

#[test]
fn an_unparsable_row_says_a_window_may_be_open() {
    for row in [
        &b""[..],
        b"\n",
        b"garbage",
        b"7 0 %1 @1 1 s\n",
        b"0 12 %1 @1 1 s\n",
        b"7 12 1 @1 1 s\n",
        b"7 12 %1 1 1 s\n",
        // A sigil needs a number after it: a pane or window nobody can target.
        b"7 12 % @1 1 s\n",
        b"7 12 %1 @x 1 s\n",
        b"7 12 %1 @1 x s\n",
        b"7 12 %1 @1 1\n",
        b"12 %1 @1 1 s\n",
        b"7 12 %1 @1 1 s\n7 13 %2 @2 2 s\n",
    ] {
        let err = parse_handle(row).expect_err("unparsable");
        assert!(matches!(err, LaunchError::UnparsableHandle { .. }), "{err}");
        assert!(!err.nothing_launched());
        assert!(err.to_string().contains("a window may be open"), "{err}");
    }
}

#[test]
fn escaping_protects_a_final_semicolon_only() {
    let e = |s: &str| escape_tmux_arg(s.into()).into_string().expect("utf-8");
    assert_eq!(e("a;"), "a\\;");
    assert_eq!(e("a\\;"), "a\\\\;");
    assert_eq!(e(";"), "\\;");
    assert_eq!(e("a;b"), "a;b");
    assert_eq!(e("#{x}"), "#{x}");
    assert_eq!(e(""), "");
}

#[test]
fn the_server_comes_from_tmux_env_or_a_name() {
    let request = |cwd: &Path| {
        LaunchRequest::new(
            crate::GardenId::parse("20260613T000000-aaaaaa").expect("gid"),
            "/bin/sh".into(),
            vec!["x;".into()],
            cwd.to_path_buf(),
        )
    };
    let dir = tempfile::tempdir().expect("tmp");
    let r = request(dir.path());
    let args = TmuxLauncher::caller(Some("/tmp/tmux-0/default,123,4".into()))
        .command_args(&r)
        .expect("args");
    assert_eq!(
        args[..2],
        [OsString::from("-S"), "/tmp/tmux-0/default".into()]
    );
    assert!(args.contains(&OsString::from("$4:{end}")));
    // The runtime's last arg, escaped; then, after a bare `;`, remain-on-exit for that
    // window only; the window is named after the gid.
    let tail: Vec<OsString> = [
        "x\\;",
        ";",
        "set-option",
        "-w",
        "-t",
        "$4:{end}",
        "remain-on-exit",
        "on",
    ]
    .map(OsString::from)
    .to_vec();
    assert_eq!(args[args.len() - tail.len()..], tail[..]);
    let name = args.iter().position(|a| a == "-n").expect("-n");
    assert_eq!(args[name + 1], "20260613T000000-aaaaaa");
    let named = TmuxLauncher::named_server("priv", "main")
        .command_args(&r)
        .expect("args");
    assert_eq!(named[..2], [OsString::from("-L"), "priv".into()]);
    assert!(named.contains(&OsString::from("main:{end}")));

    for env in [None, Some(OsString::new())] {
        let err = TmuxLauncher::caller(env)
            .command_args(&r)
            .expect_err("none");
        assert!(matches!(err, LaunchError::NoServer), "{err}");
    }
    for bad in ["nonsense", "rel/sock,1,2", "/s,x,2", "/s,1,"] {
        let err = TmuxLauncher::caller(Some(bad.into()))
            .command_args(&r)
            .expect_err(bad);
        assert!(
            matches!(err, LaunchError::TmuxEnvUnparsable { .. }),
            "{err}"
        );
    }
    for session in ["", "a:b", "a.b"] {
        let err = TmuxLauncher::named_server("priv", session)
            .command_args(&r)
            .expect_err(session);
        assert!(matches!(err, LaunchError::BadSession { .. }), "{err}");
    }
}

#[test]
fn the_window_environment_goes_before_the_command() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut r = LaunchRequest::new(
        crate::GardenId::parse("20260613T000000-aaaaaa").expect("gid"),
        "/bin/sh".into(),
        vec!["-c".into(), "true".into()],
        dir.path().to_path_buf(),
    );
    r.env.push(("HOME".into(), "/scratch/home".into()));
    r.env
        .push(("PI_CODING_AGENT_DIR".into(), "/scratch/agent;".into()));
    // Not UTF-8, and still passed: the environment is bytes, and nothing is dropped.
    let latin1 = OsString::from_vec(b"CAF\xc9".to_vec());
    r.env.push((latin1, "1".into()));
    let args = TmuxLauncher::named_server("priv", "main")
        .command_args(&r)
        .expect("args");
    let dashdash = args.iter().position(|a| a == "--").expect("--");
    let pairs: Vec<_> = args[..dashdash]
        .windows(2)
        .filter(|w| w[0] == "-e")
        .map(|w| w[1].clone())
        .collect();
    assert_eq!(
        pairs,
        [
            OsString::from("HOME=/scratch/home"),
            // Escaped like every argument: a final ';' would end the tmux command.
            "PI_CODING_AGENT_DIR=/scratch/agent\\;".into(),
            OsString::from_vec(b"CAF\xc9=1".to_vec()),
        ]
    );
    assert_eq!(args[dashdash + 1], "/bin/sh");
}

/// As a shell finds a command: on `PATH`, a file without an execute bit and a directory
/// of the runtime's name are passed over for the executable file after them; given as an
/// absolute path, a file that cannot be executed is not found.
#[test]
fn only_an_executable_file_is_taken_as_the_runtime() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().expect("tmp");
    let dir = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        dir
    };
    let (plain, directory, exec) = (dir("plain"), dir("directory"), dir("exec"));
    let write = |path: &Path, mode: u32| {
        std::fs::write(path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    write(&plain.join("pi"), 0o644);
    std::fs::create_dir(directory.join("pi")).expect("mkdir pi");
    write(&exec.join("pi"), 0o755);
    let search = std::env::join_paths([&plain, &directory, &exec]).expect("PATH");

    let found = resolve_runtime(OsStr::new("pi"), &search).expect("found");
    assert_eq!(found, exec.join("pi"));
    let absolute = plain.join("pi");
    let err = resolve_runtime(absolute.as_os_str(), &search).expect_err("not executable");
    assert!(matches!(err, LaunchError::RuntimeNotFound { .. }), "{err}");
}
