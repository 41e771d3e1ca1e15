//! The pure release reducer: given a policy, what has happened so far and a new event,
//! may the dispatch lock be released now?
//!
//! Keeping this pure makes "released at most once" a property of one small function
//! (checked by proptest) instead of a convention spread over the watcher.

/// When a dispatch lock may be released: the one release-policy type of the crate. A
/// plan states its policy
/// ([`SpawnBgPlan::release_policy`](crate::plan::SpawnBgPlan::release_policy)) and the
/// reducer applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// No lock is held; nothing ever releases.
    NoLock,
    /// Release once the final message was sent (foreground transports).
    AfterSendFinal,
    /// Release on the first observed transition of a spawned child (spawn-bg): the
    /// control socket is connectable, or the child exited (or it never started).
    AfterSpawnObservation,
}

impl ReleasePolicy {
    /// The name a plan or report spells the rule with. `socket-alive-or-child-exited`
    /// is the TypeScript dispatcher's name for the spawn-bg rule; `no-lock` and
    /// `after-send-final` are this crate's names for the two rules it has no plans for.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoLock => "no-lock",
            Self::AfterSendFinal => "after-send-final",
            Self::AfterSpawnObservation => "socket-alive-or-child-exited",
        }
    }
}

/// Something that happened during a dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseEvent {
    /// The final message was sent.
    SendFinal,
    /// The child process started.
    SpawnStarted {
        /// Its pid.
        pid: u32,
    },
    /// The child could not be started: there is nothing to watch, so holding the lock
    /// would pin the garden id forever.
    SpawnStartFailed {
        /// Why, as text.
        error: String,
    },
    /// The control socket accepted a connection.
    SocketAlive,
    /// The child exited, with a code or by a signal.
    ChildExited {
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// Signal number, when a signal ended it.
        signal: Option<i32>,
    },
    /// A message was queued in the citizen's mailbox.
    MailboxEnqueued,
}

/// What the reducer has seen: only whether release already happened matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReleaseState {
    /// True once a release was decided; every later event is then a no-op.
    pub released: bool,
}

/// The reducer's answer for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseDecision {
    /// Release the lock now (and never again).
    Release,
    /// Keep holding (or already released).
    Hold,
}

impl ReleaseDecision {
    /// True for [`ReleaseDecision::Release`].
    #[must_use]
    pub fn is_release(self) -> bool {
        self == Self::Release
    }
}

/// Applies one event. Once `state.released` is set, the answer is always
/// [`ReleaseDecision::Hold`].
#[must_use]
pub fn reduce(
    policy: ReleasePolicy,
    state: ReleaseState,
    event: &ReleaseEvent,
) -> (ReleaseState, ReleaseDecision) {
    if state.released {
        return (state, ReleaseDecision::Hold);
    }
    let release = match policy {
        ReleasePolicy::NoLock => false,
        ReleasePolicy::AfterSendFinal => matches!(event, ReleaseEvent::SendFinal),
        ReleasePolicy::AfterSpawnObservation => matches!(
            event,
            ReleaseEvent::SocketAlive
                | ReleaseEvent::ChildExited { .. }
                | ReleaseEvent::SpawnStartFailed { .. }
        ),
    };
    if release {
        (ReleaseState { released: true }, ReleaseDecision::Release)
    } else {
        (state, ReleaseDecision::Hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_observation_releases_on_observations_and_failed_spawns_only() {
        let p = ReleasePolicy::AfterSpawnObservation;
        let s = ReleaseState::default();
        for (event, expect) in [
            (ReleaseEvent::SpawnStarted { pid: 7 }, false),
            (ReleaseEvent::SendFinal, false),
            (ReleaseEvent::MailboxEnqueued, false),
            (ReleaseEvent::SocketAlive, true),
            (
                ReleaseEvent::ChildExited {
                    code: Some(0),
                    signal: None,
                },
                true,
            ),
            (
                ReleaseEvent::ChildExited {
                    code: Some(1),
                    signal: None,
                },
                true,
            ),
            (
                ReleaseEvent::ChildExited {
                    code: None,
                    signal: Some(9),
                },
                true,
            ),
            (ReleaseEvent::SpawnStartFailed { error: "x".into() }, true),
        ] {
            let (next, d) = reduce(p, s, &event);
            assert_eq!(d.is_release(), expect, "{event:?}");
            assert_eq!(next.released, expect);
        }
    }

    #[test]
    fn other_policies() {
        let s = ReleaseState::default();
        assert!(
            reduce(ReleasePolicy::AfterSendFinal, s, &ReleaseEvent::SendFinal)
                .1
                .is_release()
        );
        assert!(
            !reduce(ReleasePolicy::AfterSendFinal, s, &ReleaseEvent::SocketAlive)
                .1
                .is_release()
        );
        for e in [ReleaseEvent::SendFinal, ReleaseEvent::SocketAlive] {
            assert!(!reduce(ReleasePolicy::NoLock, s, &e).1.is_release());
        }
    }

    #[test]
    fn released_state_never_releases_again() {
        let s = ReleaseState { released: true };
        let (next, d) = reduce(
            ReleasePolicy::AfterSpawnObservation,
            s,
            &ReleaseEvent::SocketAlive,
        );
        assert_eq!(d, ReleaseDecision::Hold);
        assert!(next.released);
    }
}
