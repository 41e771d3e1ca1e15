//! FAKE world (tests/support `fake_dispatch`): every cell of the table × every look,
//! every pre-probe refusal, every send-hand path. Each test counts delivery attempts,
//! probes and releases: "released exactly once" and "no second attempt" are counts.

use std::sync::atomic::AtomicUsize;

use entwurf_test_support::fake_dispatch::{FakeDispatch, Look, SendScript, gid};
use entwurf_v2_spawn::dispatch::{
    DispatchError, DispatchRequest, Dispatched, FailedCause, Intent, Liveness, LockFate, Receipt,
    RejectReason, dispatch,
};
use entwurf_v2_spawn::lock::ReleaseOutcome;
use entwurf_v2_spawn::socket::{AddressConflict, Inspection};

type Outcome = Result<Dispatched<&'static str>, DispatchError<&'static str>>;

fn count(counter: &AtomicUsize) -> usize {
    FakeDispatch::count(counter)
}

async fn run(world: &FakeDispatch, intent: Intent) -> Outcome {
    dispatch(&DispatchRequest::new(gid(), "hello", intent), world).await
}

/// What a receipt says, in the contract's words: its kind, and the reject reason.
fn said(receipt: &Receipt<&'static str>) -> String {
    match receipt.rejected() {
        Some(rejected) => format!("rejected {}", rejected.reason()),
        None => receipt.kind().to_owned(),
    }
}

/// Every intent × every first look, with a send that is acknowledged: the verdict,
/// the observed liveness the receipt carries, and the counts.
#[tokio::test]
async fn every_cell_of_the_table_with_every_look() {
    // (intent, look) → (what the receipt says, deliveries, resumes)
    let cases = [
        (Intent::FireAndForget, Look::Alive, "sent", 1, 0),
        (
            Intent::FireAndForget,
            Look::Dead,
            "rejected dormant-fire-forget-unsupported",
            0,
            0,
        ),
        (
            Intent::FireAndForget,
            Look::Indeterminate,
            "rejected indeterminate-no-spawn",
            0,
            0,
        ),
        (
            Intent::FireAndForget,
            Look::OtherSession,
            "rejected target-address-conflict",
            0,
            0,
        ),
        (
            Intent::FireAndForget,
            Look::Symlink,
            "rejected target-address-conflict",
            0,
            0,
        ),
        (
            Intent::OwnedOutcome,
            Look::Alive,
            "rejected owned-live-no-autosend",
            0,
            0,
        ),
        (Intent::OwnedOutcome, Look::Dead, "resumed", 0, 1),
        (
            Intent::OwnedOutcome,
            Look::Indeterminate,
            "rejected indeterminate-no-spawn",
            0,
            0,
        ),
        (
            Intent::OwnedOutcome,
            Look::OtherSession,
            "rejected target-address-conflict",
            0,
            0,
        ),
        (
            Intent::OwnedOutcome,
            Look::Symlink,
            "rejected target-address-conflict",
            0,
            0,
        ),
    ];
    assert_eq!(cases.len(), Intent::ALL.len() * Look::ALL.len());
    for (intent, look, expected, deliveries, resumes) in cases {
        let world = FakeDispatch::new(std::slice::from_ref(&look), &[SendScript::Ack]);
        let done = run(&world, intent).await.expect("a receipt");
        let case = format!("{intent} × {look:?}");
        assert_eq!(said(&done.receipt), expected, "{case}");
        assert_eq!(count(&world.probes), 1, "{case}: one probe, under the lock");
        assert_eq!(count(&world.probed_before_lock), 0, "{case}");
        assert_eq!(count(&world.deliveries), deliveries, "{case}: deliveries");
        assert_eq!(count(&world.resumes), resumes, "{case}: resumes");
        assert_eq!(count(&world.releases), 1, "{case}: released exactly once");
        assert!(!world.lock_file().exists(), "{case}: no lock file left");
        // The receipt rule: every receipt after the probe carries what it observed,
        // and it is what the look said; a conflict is not a liveness.
        let expected_liveness = match look {
            Look::Alive => Some(Liveness::Alive),
            Look::Dead => Some(Liveness::Dead),
            Look::Indeterminate => Some(Liveness::Indeterminate),
            Look::OtherSession | Look::Symlink => None,
        };
        assert_eq!(
            done.receipt.observed().map(|o| o.liveness()),
            expected_liveness,
            "{case}: observed liveness"
        );
        let fate = if resumes == 1 {
            LockFate::HandedToResume
        } else {
            LockFate::Released(ReleaseOutcome::Released)
        };
        assert_eq!(done.lock, fate, "{case}: the lock's fate");
    }
}

/// The refusals decided before any probe carry no observed liveness, take no lock (or
/// find it held), and probe nothing.
#[tokio::test]
async fn refusals_before_the_probe_observe_nothing() {
    // No saved session.
    let mut world = FakeDispatch::new(&[Look::Alive], &[SendScript::Ack]);
    world.no_session = true;
    let done = run(&world, Intent::FireAndForget).await.expect("receipt");
    assert_eq!(said(&done.receipt), "rejected bad-target");
    assert!(done.receipt.observed().is_none());
    assert_eq!(done.lock, LockFate::NotTaken);
    assert!(!world.lock_file().exists(), "no lock was taken");

    // A symlink at the socket path, seen by the inspection before the lock.
    for conflict in [AddressConflict::Symlink, AddressConflict::NotSocket] {
        let mut world = FakeDispatch::new(&[Look::Alive], &[SendScript::Ack]);
        world.inspection = Inspection::AddressConflict(conflict);
        let done = run(&world, Intent::FireAndForget).await.expect("receipt");
        assert_eq!(said(&done.receipt), "rejected target-address-conflict");
        assert!(done.receipt.observed().is_none());
        assert_eq!(done.lock, LockFate::NotTaken);
        assert!(!world.lock_file().exists());
        assert_eq!(count(&world.probes), 0, "never probed");
        assert_eq!(count(&world.deliveries), 0);
    }

    // The lock held by another dispatcher: refused, nothing probed, their lock kept.
    for intent in Intent::ALL {
        let world = FakeDispatch::new(&[Look::Alive], &[SendScript::Ack]);
        let theirs = world.hold_lock();
        let done = run(&world, intent).await.expect("receipt");
        assert_eq!(said(&done.receipt), "rejected target-locked");
        assert!(done.receipt.observed().is_none());
        assert_eq!(done.lock, LockFate::NotTaken);
        assert_eq!(count(&world.probes), 0, "nothing probed");
        assert_eq!(count(&world.releases), 0, "nothing of ours to release");
        let on_disk = std::fs::read_to_string(world.lock_file()).expect("their lock stays");
        assert!(on_disk.contains(theirs.nonce()));
    }
}

/// One send-hand path: the looks and sends scripted, what the receipt says, and the
/// counts (probes, deliveries).
async fn hand(looks: &[Look], sends: &[SendScript]) -> (FakeDispatch, Dispatched<&'static str>) {
    let world = FakeDispatch::new(looks, sends);
    let done = run(&world, Intent::FireAndForget).await.expect("a receipt");
    assert_eq!(count(&world.releases), 1, "released exactly once");
    assert_eq!(done.lock, LockFate::Released(ReleaseOutcome::Released));
    assert!(!world.lock_file().exists(), "no lock file left");
    (world, done)
}

#[tokio::test]
async fn an_ack_is_sent_and_an_in_band_refusal_is_final() {
    let (world, done) = hand(&[Look::Alive], &[SendScript::Ack]).await;
    assert_eq!(said(&done.receipt), "sent");
    assert!(done.receipt.delivered());
    let Receipt::Sent { ack, .. } = &done.receipt else {
        panic!("sent");
    };
    assert_eq!(ack.delivered_as(), Some("followUp"));
    assert_eq!((count(&world.probes), count(&world.deliveries)), (1, 1));

    // success:false: the receiver was reached and refused. No re-resolve, no second
    // attempt, even though the next send would be acknowledged.
    let (world, done) = hand(&[Look::Alive], &[SendScript::Refused, SendScript::Ack]).await;
    assert_eq!(said(&done.receipt), "rejected send-refused");
    assert!(!done.receipt.delivered());
    assert_eq!(
        done.receipt.observed().map(|o| o.liveness()),
        Some(Liveness::Alive)
    );
    assert_eq!((count(&world.probes), count(&world.deliveries)), (1, 1));
}

#[tokio::test]
async fn a_send_that_proves_nothing_fails_without_a_second_attempt() {
    // A stall after the request was written: the next send would be acknowledged, and
    // the citizen would look alive again, but a retry could deliver twice.
    let (world, done) = hand(&[Look::Alive], &[SendScript::Stall, SendScript::Ack]).await;
    assert_eq!(said(&done.receipt), "failed");
    let Receipt::Failed { cause, observed } = &done.receipt else {
        panic!("failed");
    };
    assert!(matches!(cause, FailedCause::Unproven(_)), "{cause:?}");
    assert_eq!(observed.liveness(), Liveness::Alive);
    assert_eq!((count(&world.probes), count(&world.deliveries)), (1, 1));
}

#[tokio::test]
async fn a_dead_send_is_re_resolved_once_under_the_same_lock() {
    // (second look, second send) → (receipt, probes, deliveries)
    let cases: [(Look, SendScript, &str, usize, usize); 8] = [
        (Look::Alive, SendScript::Ack, "fallback-sent", 2, 2),
        (
            Look::Alive,
            SendScript::Refused,
            "rejected send-refused",
            2,
            2,
        ),
        (Look::Alive, SendScript::Dead, "failed", 2, 2),
        (Look::Alive, SendScript::Stall, "failed", 2, 2),
        (
            Look::Dead,
            SendScript::Ack,
            "rejected dormant-fire-forget-unsupported",
            2,
            1,
        ),
        (
            Look::Indeterminate,
            SendScript::Ack,
            "rejected indeterminate-no-spawn",
            2,
            1,
        ),
        (
            Look::OtherSession,
            SendScript::Ack,
            "rejected target-address-conflict",
            2,
            1,
        ),
        (
            Look::Symlink,
            SendScript::Ack,
            "rejected target-address-conflict",
            2,
            1,
        ),
    ];
    for (look, second, expected, probes, deliveries) in cases {
        let case = format!("re-resolved {look:?}, then {second:?}");
        let (world, done) = hand(
            &[Look::Alive, look.clone(), Look::Alive],
            &[SendScript::Dead, second.clone(), SendScript::Ack],
        )
        .await;
        assert_eq!(said(&done.receipt), expected, "{case}");
        assert_eq!(
            count(&world.probes),
            probes,
            "{case}: probes (one re-resolve only)"
        );
        assert_eq!(count(&world.deliveries), deliveries, "{case}: deliveries");
        assert_eq!(
            count(&world.resumes),
            0,
            "{case}: a send's re-resolve never resumes"
        );
        // The receipt carries the re-resolve's liveness (a conflict carries none).
        let expected_liveness = match look {
            Look::Alive => Some(Liveness::Alive),
            Look::Dead => Some(Liveness::Dead),
            Look::Indeterminate => Some(Liveness::Indeterminate),
            Look::OtherSession | Look::Symlink => None,
        };
        assert_eq!(
            done.receipt.observed().map(|o| o.liveness()),
            expected_liveness,
            "{case}"
        );
        if let Receipt::Failed { cause, .. } = &done.receipt {
            let gone_again = matches!(cause, FailedCause::GoneAgain(_));
            assert_eq!(gone_again, second == SendScript::Dead, "{case}: {cause:?}");
        }
        if let Receipt::FallbackSent { first_attempt, .. } = &done.receipt {
            assert!(first_attempt.proves_not_delivered(), "{case}");
        }
    }
}

#[tokio::test]
async fn a_failed_release_never_hides_what_happened_to_the_message() {
    // (looks, sends, intent) → the receipt the error carries
    let cases: [(&[Look], &[SendScript], Intent, &str); 4] = [
        (
            &[Look::Alive],
            &[SendScript::Ack],
            Intent::FireAndForget,
            "sent",
        ),
        (
            &[Look::Alive],
            &[SendScript::Stall],
            Intent::FireAndForget,
            "failed",
        ),
        (
            &[Look::Alive],
            &[SendScript::Refused],
            Intent::FireAndForget,
            "rejected send-refused",
        ),
        (
            &[Look::Alive],
            &[SendScript::Ack],
            Intent::OwnedOutcome,
            "rejected owned-live-no-autosend",
        ),
    ];
    for (looks, sends, intent, expected) in cases {
        let mut world = FakeDispatch::new(looks, sends);
        world.release_fails = true;
        let error = run(&world, intent).await.expect_err("the release failed");
        let DispatchError::Release { receipt, source } = &error else {
            panic!("{expected}: {error}");
        };
        assert_eq!(said(receipt), expected);
        assert_eq!(source.path, world.lock_file());
        assert_eq!(count(&world.releases), 1, "{expected}: tried once");
        let text = error.to_string();
        assert!(
            text.contains(receipt.kind()) && text.contains("releasing the lock failed"),
            "{text}"
        );
    }
}

#[test]
fn reasons_are_spelled_as_the_contract() {
    let spelled = [
        (RejectReason::BadTarget, "bad-target"),
        (
            RejectReason::TargetAddressConflict,
            "target-address-conflict",
        ),
        (RejectReason::TargetLocked, "target-locked"),
        (RejectReason::OwnedLiveNoAutosend, "owned-live-no-autosend"),
        (
            RejectReason::DormantFireForgetUnsupported,
            "dormant-fire-forget-unsupported",
        ),
        (RejectReason::IndeterminateNoSpawn, "indeterminate-no-spawn"),
        (RejectReason::SendRefused, "send-refused"),
    ];
    for (reason, text) in spelled {
        assert_eq!(reason.as_str(), text);
        assert_eq!(reason.to_string(), text);
    }
}

/// A refusal reads as its reason, then its evidence: what a dispatcher logs.
#[tokio::test]
async fn a_refusal_reads_as_its_reason_and_its_evidence() {
    let said_of = |done: Dispatched<&'static str>| {
        done.receipt
            .rejected()
            .map(ToString::to_string)
            .expect("a refusal")
    };
    let mut world = FakeDispatch::new(&[Look::Alive], &[SendScript::Ack]);
    world.no_session = true;
    let text = said_of(run(&world, Intent::FireAndForget).await.expect("receipt"));
    assert!(
        text.starts_with("bad-target: no saved session for 20260613T000000-aaaaaa"),
        "{text}"
    );

    let world = FakeDispatch::new(&[Look::Dead], &[SendScript::Ack]);
    let text = said_of(run(&world, Intent::FireAndForget).await.expect("receipt"));
    assert_eq!(
        text,
        "dormant-fire-forget-unsupported: the citizen is dead (no socket at the path)"
    );

    let world = FakeDispatch::new(&[Look::Alive], &[SendScript::Refused]);
    let text = said_of(run(&world, Intent::FireAndForget).await.expect("receipt"));
    assert_eq!(
        text,
        "send-refused: the receiver answered \"Missing message\""
    );

    let world = FakeDispatch::new(&[Look::OtherSession], &[SendScript::Ack]);
    let text = said_of(run(&world, Intent::FireAndForget).await.expect("receipt"));
    assert!(
        text.starts_with("target-address-conflict: ")
            && text.ends_with("the listener answered as another session (20990101T000000-ffffff)"),
        "{text}"
    );

    let world = FakeDispatch::new(&[Look::Alive], &[SendScript::Ack]);
    let _theirs = world.hold_lock();
    let text = said_of(run(&world, Intent::FireAndForget).await.expect("receipt"));
    assert!(text.starts_with("target-locked: "), "{text}");
    assert!(
        text.contains(&world.lock_file().display().to_string()),
        "{text}"
    );
}
