//! Deterministic unit tests of the pure layers (classifiers, verdict, backoff, re-looks),
//! plus the portable fallback exercised on this host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::classify::file_type_bits;
use super::relook::{self, Relook};
use super::wait::{Backoff, bound_not_listening, far_future};
use super::*;

fn os(errno: Errno) -> OsError {
    OsError::new("test", errno)
}

fn all_inspections() -> Vec<Inspection> {
    vec![
        Inspection::Absent,
        Inspection::SocketFile,
        Inspection::AddressConflict(AddressConflict::Symlink),
        Inspection::AddressConflict(AddressConflict::NotSocket),
        Inspection::AddressConflict(AddressConflict::ForeignOwner { uid: 65534 }),
        Inspection::Indeterminate(os(Errno::EACCES)),
        Inspection::Indeterminate(os(Errno::ENOTDIR)),
    ]
}

fn all_probes() -> Vec<Option<Probe>> {
    vec![
        None,
        Some(Probe::Alive),
        Some(Probe::ForeignListener { uid: 65534 }),
        Some(Probe::Dead(os(Errno::ECONNREFUSED))),
        Some(Probe::Dead(os(Errno::ENOENT))),
        Some(Probe::Indeterminate(ProbeDoubt::BacklogFull)),
        Some(Probe::Indeterminate(ProbeDoubt::TimedOut {
            after: Duration::from_millis(300),
        })),
        Some(Probe::Indeterminate(ProbeDoubt::PathTooLong { len: 200 })),
        Some(Probe::Indeterminate(ProbeDoubt::Os(os(Errno::EACCES)))),
    ]
}

#[test]
fn verdict_over_every_inspection_and_probe() {
    let mut checked = 0;
    for inspection in all_inspections() {
        for probe in all_probes() {
            let expected = match (&inspection, &probe) {
                (Inspection::AddressConflict(c), _) => Verdict::Forged(*c),
                (Inspection::SocketFile, Some(Probe::ForeignListener { uid })) => {
                    Verdict::Forged(AddressConflict::ForeignListener { uid: *uid })
                }
                (Inspection::SocketFile, Some(Probe::Alive)) => Verdict::Alive,
                _ => Verdict::Wait,
            };
            let observation = SocketState {
                inspection: inspection.clone(),
                probe: probe.clone(),
            };
            assert_eq!(verdict(&observation), expected, "{observation:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 9);
}

#[test]
fn verdict_spot_checks_spell_out_the_rules() {
    let obs = |inspection, probe| SocketState { inspection, probe };
    // Time cannot heal a conflict, whatever a probe said.
    assert_eq!(
        verdict(&obs(
            Inspection::AddressConflict(AddressConflict::Symlink),
            Some(Probe::Alive)
        )),
        Verdict::Forged(AddressConflict::Symlink)
    );
    assert_eq!(
        verdict(&obs(Inspection::SocketFile, Some(Probe::Alive))),
        Verdict::Alive
    );
    // Unsure is never dead and never alive.
    assert_eq!(
        verdict(&obs(
            Inspection::SocketFile,
            Some(Probe::Indeterminate(ProbeDoubt::BacklogFull))
        )),
        Verdict::Wait
    );
    assert_eq!(verdict(&obs(Inspection::Absent, None)), Verdict::Wait);
    // A socket file that was not probed is not alive.
    assert_eq!(verdict(&obs(Inspection::SocketFile, None)), Verdict::Wait);
}

#[test]
fn inspect_errors_only_enoent_is_absent() {
    assert_eq!(
        classify_inspect_error("open", Errno::ENOENT),
        Inspection::Absent
    );
    for errno in [
        Errno::EACCES,
        Errno::ENOTDIR,
        Errno::ELOOP,
        Errno::EIO,
        Errno::ENAMETOOLONG,
        Errno::EINVAL,
    ] {
        assert_eq!(
            classify_inspect_error("open", errno),
            Inspection::Indeterminate(OsError::new("open", errno)),
            "{errno}"
        );
    }
}

#[test]
fn modes_classify_by_file_type_then_owner() {
    let mode = |flag: nix::sys::stat::SFlag| file_type_bits(flag) | 0o755;
    use nix::sys::stat::SFlag;
    assert_eq!(
        classify_mode(mode(SFlag::S_IFLNK), 1000, 1000),
        Inspection::AddressConflict(AddressConflict::Symlink)
    );
    for kind in [
        SFlag::S_IFREG,
        SFlag::S_IFDIR,
        SFlag::S_IFIFO,
        SFlag::S_IFCHR,
        SFlag::S_IFBLK,
    ] {
        assert_eq!(
            classify_mode(mode(kind), 1000, 1000),
            Inspection::AddressConflict(AddressConflict::NotSocket),
            "{kind:?}"
        );
    }
    assert_eq!(
        classify_mode(mode(SFlag::S_IFSOCK), 1000, 1000),
        Inspection::SocketFile
    );
    assert_eq!(
        classify_mode(mode(SFlag::S_IFSOCK), 0, 1000),
        Inspection::AddressConflict(AddressConflict::ForeignOwner { uid: 0 })
    );
    // A symlink owned by someone else is still reported as a symlink first.
    assert_eq!(
        classify_mode(mode(SFlag::S_IFLNK), 0, 1000),
        Inspection::AddressConflict(AddressConflict::Symlink)
    );
}

#[test]
fn connect_errors_only_refused_and_enoent_are_dead() {
    assert_eq!(
        classify_connect_error(Errno::ECONNREFUSED),
        Probe::Dead(OsError::new("connect", Errno::ECONNREFUSED))
    );
    assert_eq!(
        classify_connect_error(Errno::ENOENT),
        Probe::Dead(OsError::new("connect", Errno::ENOENT))
    );
    assert_eq!(
        classify_connect_error(Errno::EAGAIN),
        Probe::Indeterminate(ProbeDoubt::BacklogFull)
    );
    for errno in [
        Errno::EACCES,
        Errno::ETIMEDOUT,
        Errno::EPROTOTYPE,
        Errno::EPERM,
        Errno::EIO,
    ] {
        assert_eq!(
            classify_connect_error(errno),
            Probe::Indeterminate(ProbeDoubt::Os(OsError::new("connect", errno))),
            "{errno}"
        );
    }
}

#[test]
fn os_error_keeps_kind_and_says_which_call() {
    let e = OsError::new("open", Errno::EACCES);
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert_eq!(e.errno(), Errno::EACCES);
    assert!(e.to_string().starts_with("open: "), "{e}");
}

#[test]
fn backoff_doubles_from_one_ms_to_the_cap_and_resets() {
    let mut b = Backoff::new(Duration::from_millis(150));
    let delays: Vec<u64> = (0..10).map(|_| b.next_delay().as_millis() as u64).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 150, 150]);
    b.reset();
    assert_eq!(b.next_delay(), Duration::from_millis(1));
    assert_eq!(b.next_delay(), Duration::from_millis(2));
}

#[test]
fn backoff_saturates_to_the_cap_until_reset() {
    let mut b = Backoff::new(Duration::from_millis(150));
    b.saturate();
    assert_eq!(b.next_delay(), Duration::from_millis(150));
    assert_eq!(b.next_delay(), Duration::from_millis(150));
    b.reset();
    assert_eq!(b.next_delay(), Duration::from_millis(1));
}

#[test]
fn backoff_never_spins_on_a_zero_interval() {
    let mut b = Backoff::new(Duration::ZERO);
    assert_eq!(b.next_delay(), Backoff::MIN);
    assert_eq!(b.next_delay(), Backoff::MIN);
}

/// Every re-look delay of one window, simulated: each look lands exactly when its
/// delay ends (the fastest the waiter could go).
fn relook_delays() -> Vec<Duration> {
    let opened = std::time::Instant::now();
    let window = Relook::opened_at(opened);
    let mut at = opened;
    let mut delays = Vec::new();
    while let Some(delay) = window.next_delay(at) {
        delays.push(delay);
        at += delay;
        assert!(delays.len() < 1000, "the window never closes: {delays:?}");
    }
    delays
}

#[test]
fn relooks_start_within_tens_of_microseconds_and_stay_fine() {
    let delays = relook_delays();
    assert_eq!(delays[0], relook::STEP_MIN);
    assert!(delays[0] <= Duration::from_micros(20), "{delays:?}");
    // A quarter of the time since the event: a listen() at t is seen by t·5/4 (or one
    // STEP_MAX later), so a 60 µs bind → listen gap costs ≤ 20 µs.
    let mut at = Duration::ZERO;
    for &d in &delays {
        assert!(d <= relook::STEP_MAX, "{d:?} in {delays:?}");
        assert!(d <= (at / 4).max(relook::STEP_MIN), "{d:?} after {at:?}");
        at += d;
    }
    assert!(
        delays.iter().all(|d| *d < Backoff::MIN),
        "every re-look beats the backoff's first step: {delays:?}"
    );
}

#[test]
fn a_relook_window_ends_and_costs_a_bounded_number_of_looks() {
    let delays = relook_delays();
    let total: Duration = delays.iter().sum();
    assert_eq!(total, relook::WINDOW, "{delays:?}");
    assert!(delays.len() <= 60, "{} looks: {delays:?}", delays.len());
    // Nothing after the window, however long one waits.
    let opened = std::time::Instant::now();
    let window = Relook::opened_at(opened);
    assert_eq!(window.next_delay(opened + relook::WINDOW), None);
    assert_eq!(window.next_delay(opened + Duration::from_secs(3600)), None);
}

#[test]
fn errors_name_the_path_and_say_never_connected() {
    let forged = AwaitSocketError::Forged {
        path: PathBuf::from("/x/y.sock"),
        conflict: AddressConflict::Symlink,
    };
    let text = forged.to_string();
    assert!(text.contains("/x/y.sock"), "{text}");
    assert!(text.contains("never connected"), "{text}");
    // A foreign listener is only found by connecting: the text must not claim otherwise.
    let foreign = AwaitSocketError::Forged {
        path: PathBuf::from("/x/y.sock"),
        conflict: AddressConflict::ForeignListener { uid: 65534 },
    };
    let text = foreign.to_string();
    assert!(
        text.contains("65534") && text.contains("nothing was sent") && !text.contains("never"),
        "{text}"
    );
    let cancelled = AwaitSocketError::Cancelled {
        path: PathBuf::from("/x/y.sock"),
    };
    assert!(cancelled.to_string().contains("cancelled"));
}

#[test]
fn only_a_refusing_socket_file_of_ours_earns_a_quick_second_look() {
    let mut quick = 0;
    for inspection in all_inspections() {
        for probe in all_probes() {
            let observation = SocketState {
                inspection: inspection.clone(),
                probe: probe.clone(),
            };
            let expected =
                inspection == Inspection::SocketFile && matches!(probe, Some(Probe::Dead(_)));
            assert_eq!(
                bound_not_listening(&observation),
                expected,
                "{observation:?}"
            );
            quick += usize::from(expected);
        }
    }
    assert_eq!(quick, 2, "refused and vanished, on a socket file of ours");
}

#[test]
fn await_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let cancel = tokio_util::sync::CancellationToken::new();
    let path = Path::new("/nonexistent/x.sock");
    let fut = await_socket_alive(path, cancel, WaitOptions::default());
    assert_send(&fut);
    let obs = inspect_and_probe(path, Duration::from_millis(1), Backend::Native);
    assert_send(&obs);
}

/// The portable probe's own layer against real objects (the integration tests run the
/// public API with both backends).
mod portable_on_this_host {
    use std::os::unix::net::UnixListener;

    use super::super::portable as fallback;
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("runtime: {e}"),
        }
    }

    fn tmp() -> tempfile::TempDir {
        match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        }
    }

    #[test]
    fn classifies_and_probes_by_path() {
        let dir = tmp();
        let sock = dir.path().join("s.sock");
        assert_eq!(fallback::inspect_held(&sock).0, Inspection::Absent);

        let listener = match UnixListener::bind(&sock) {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let (inspection, held) = fallback::inspect_held(&sock);
        assert_eq!(inspection, Inspection::SocketFile);
        let Some(held) = held else {
            panic!("no handle for a socket file")
        };
        assert!(
            rt().block_on(held.connect(Duration::from_millis(300)))
                .is_ok(),
            "connected"
        );
        drop(listener);
        // The file stays, nobody listens.
        assert!(matches!(
            rt().block_on(held.connect(Duration::from_millis(300))),
            Err(Probe::Dead(_))
        ));

        let link = dir.path().join("link.sock");
        if let Err(e) = std::os::unix::fs::symlink(&sock, &link) {
            panic!("symlink: {e}");
        }
        assert_eq!(
            fallback::inspect_held(&link).0,
            Inspection::AddressConflict(AddressConflict::Symlink)
        );
        assert_eq!(
            fallback::inspect_held(dir.path()).0,
            Inspection::AddressConflict(AddressConflict::NotSocket)
        );
    }

    #[test]
    fn a_path_too_long_for_sun_path_is_reported_not_dead() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(200)));
        assert_eq!(fallback::too_long(&long), Some(long.as_os_str().len()));
        assert_eq!(fallback::too_long(Path::new("/tmp/short.sock")), None);
    }
}

#[tokio::test]
async fn an_enormous_poll_interval_waits_instead_of_overflowing_the_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("never.sock");
    let cancel = tokio_util::sync::CancellationToken::new();
    let options = super::WaitOptions {
        poll_interval: Duration::MAX,
        probe_timeout: Duration::from_millis(300),
        backend: crate::Backend::Native,
    };
    let waiter = super::await_socket_alive(&path, cancel.clone(), options);
    let canceller = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        cancel.cancel();
    };
    let (result, ()) = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(waiter, canceller)
    })
    .await
    .expect("settles");
    assert!(
        matches!(result, Err(super::AwaitSocketError::Cancelled { .. })),
        "{result:?}"
    );
}

#[test]
fn the_wait_builders_set_what_they_name_and_nothing_else() {
    let base = WaitOptions::default();
    let poll = base.with_poll_interval(Duration::from_millis(7));
    assert_eq!(poll.poll_interval, Duration::from_millis(7));
    assert_eq!(
        (poll.probe_timeout, poll.backend),
        (base.probe_timeout, base.backend)
    );
    let probe = base.with_probe_timeout(Duration::from_millis(9));
    assert_eq!(probe.probe_timeout, Duration::from_millis(9));
    assert_eq!(
        (probe.poll_interval, probe.backend),
        (base.poll_interval, base.backend)
    );
    let portable = base.with_backend(crate::Backend::Portable);
    assert_eq!(portable.backend, crate::Backend::Portable);
    assert_eq!(
        (portable.poll_interval, portable.probe_timeout),
        (base.poll_interval, base.probe_timeout)
    );
}

#[test]
fn probe_doubts_read_as_what_was_met() {
    assert_eq!(
        ProbeDoubt::TimedOut {
            after: Duration::from_millis(300)
        }
        .to_string(),
        "connect timed out after 300ms"
    );
    assert_eq!(
        ProbeDoubt::BacklogFull.to_string(),
        "accept backlog full (EAGAIN)"
    );
    assert_eq!(
        ProbeDoubt::PathTooLong { len: 200 }.to_string(),
        format!("path is 200 bytes, longer than sun_path allows ({SUN_PATH_MAX} bytes)")
    );
    let os = OsError::new("connect", Errno::EACCES);
    assert_eq!(ProbeDoubt::Os(os).to_string(), os.to_string());
    assert!(
        os.to_string().starts_with("connect: Permission denied"),
        "{os}"
    );
}

#[test]
fn the_far_future_never_comes_in_practice() {
    // The deadline for a delay that would overflow the clock (an enormous poll
    // interval): the waiter sleeps until it, so it must be decades away, not hours or
    // (worse) in the past, where the waiter would spin.
    let now = tokio::time::Instant::now();
    let far = far_future();
    let decades = Duration::from_secs(86_400 * 365 * 25);
    assert!(far >= now + decades, "{:?} from now", far - now);
}
