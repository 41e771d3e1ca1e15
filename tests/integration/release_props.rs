//! Property: over any sequence of events, under any policy, the reducer decides
//! "release" at most once, and exactly once for a spawn-bg sequence that contains an
//! observation or a failed spawn.

use entwurf_v2_spawn::release::{ReleaseEvent, ReleasePolicy, ReleaseState, reduce};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = ReleaseEvent> {
    prop_oneof![
        Just(ReleaseEvent::SendFinal),
        any::<u32>().prop_map(|pid| ReleaseEvent::SpawnStarted { pid }),
        ".{0,8}".prop_map(|error| ReleaseEvent::SpawnStartFailed { error }),
        Just(ReleaseEvent::SocketAlive),
        (
            proptest::option::of(any::<i32>()),
            proptest::option::of(1..64_i32)
        )
            .prop_map(|(code, signal)| ReleaseEvent::ChildExited { code, signal }),
        Just(ReleaseEvent::MailboxEnqueued),
    ]
}

fn policy() -> impl Strategy<Value = ReleasePolicy> {
    prop_oneof![
        Just(ReleasePolicy::NoLock),
        Just(ReleasePolicy::AfterSendFinal),
        Just(ReleasePolicy::AfterSpawnObservation),
    ]
}

/// An observation (socket alive, child exited) or a failed spawn: what ends a spawn-bg watch.
fn ends_spawn_bg_watch(e: &ReleaseEvent) -> bool {
    matches!(
        e,
        ReleaseEvent::SocketAlive
            | ReleaseEvent::ChildExited { .. }
            | ReleaseEvent::SpawnStartFailed { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn releases_at_most_once(policy in policy(), events in proptest::collection::vec(event(), 0..40)) {
        let mut state = ReleaseState::default();
        let mut releases = 0;
        for e in &events {
            let (next, decision) = reduce(policy, state, e);
            if decision.is_release() {
                releases += 1;
                prop_assert!(!state.released, "released from a released state");
            }
            state = next;
        }
        prop_assert!(releases <= 1);
        let expected = match policy {
            ReleasePolicy::NoLock => 0,
            ReleasePolicy::AfterSendFinal => usize::from(events.contains(&ReleaseEvent::SendFinal)),
            ReleasePolicy::AfterSpawnObservation => usize::from(events.iter().any(ends_spawn_bg_watch)),
        };
        prop_assert_eq!(releases, expected);
        prop_assert_eq!(state.released, expected == 1);
    }
}
