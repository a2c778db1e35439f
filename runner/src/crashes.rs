//! The crash-loop rule: which child exits count as crashes, and when new children are held
//! back. A server that cannot stay up must not be respawned in a tight loop; a server that
//! was killed from outside must not be held back as if it could not.
//!
//! A crash is a child that exited soon after it started without ever answering. A loop is
//! a chain of them: start, die, start, die. So a crash counts only if its child started
//! after the last counted crash. Children that were already running when one was counted
//! and then die with it (a kill of the whole group, an OOM sweep, every session's server
//! killed while a herd of them was still starting after a restart) are the same incident,
//! not a loop: one crash, however many children it took.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A child that exits within this long after start, having answered nothing, crashed.
const EARLY_EXIT: Duration = Duration::from_secs(10);
/// Crashes further apart than this are no loop.
const WINDOW: Duration = Duration::from_secs(60);
/// Counted crashes within [`WINDOW`] that start a back-off.
const BEFORE_BACKOFF: usize = 3;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Crashes {
    /// When each counted crash happened, oldest first, within [`WINDOW`].
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    /// Back-offs in a row; each doubles the wait.
    streak: u32,
}

impl Crashes {
    /// How long new children are still held back, if they are.
    pub fn backoff(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .and_then(|t| t.checked_duration_since(now))
    }

    /// Notes a child's exit (one the runner did not ask for). Returns whether it counted
    /// as a crash.
    pub fn exited(&mut self, started: Instant, answered: bool, now: Instant) -> bool {
        if answered || now.duration_since(started) > EARLY_EXIT {
            self.streak = 0;
            return false;
        }
        if self.recent.back().is_some_and(|last| started < *last) {
            return false;
        }
        self.recent.push_back(now);
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= BEFORE_BACKOFF {
            self.streak += 1;
            let secs = 5u64.saturating_mul(1 << self.streak.min(4));
            let wait = Duration::from_secs(secs).min(MAX_BACKOFF);
            self.blocked_until = Some(now + wait);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_chain_of_early_exits_is_backed_off() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        // Each child starts after the previous one died, and dies at once.
        for i in 0..3u64 {
            let start = t0 + ms(i * 20);
            assert!(c.exited(start, false, start + ms(10)));
        }
        let wait = c.backoff(t0 + ms(60)).expect("backing off");
        assert!(wait >= Duration::from_secs(9), "{wait:?}");
        assert!(c.backoff(t0 + ms(60) + wait + ms(1)).is_none());
    }

    #[test]
    fn children_dying_together_are_one_crash() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        // 32 children started over two seconds, all killed in the same moment before any
        // answered.
        let killed = t0 + Duration::from_secs(3);
        let counted = (0..32u64)
            .filter(|i| c.exited(t0 + ms(i * 60), false, killed + ms(*i)))
            .count();
        assert_eq!(counted, 1);
        assert!(c.backoff(killed + ms(40)).is_none());
        // Their replacements, started after it, can still form a loop of their own.
        let again = killed + ms(100);
        assert!(c.exited(again, false, again + ms(5)));
        let third = again + ms(10);
        assert!(c.exited(third, false, third + ms(5)));
        assert!(c.backoff(third + ms(6)).is_some());
    }

    #[test]
    fn exits_after_an_answer_or_a_long_life_are_no_crash_and_end_a_streak() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        assert!(!c.exited(t0, true, t0 + ms(5)));
        assert!(!c.exited(t0, false, t0 + EARLY_EXIT + ms(1)));
        assert!(c.backoff(t0 + EARLY_EXIT + ms(2)).is_none());
    }

    #[test]
    fn crashes_a_window_apart_are_no_loop() {
        let t0 = Instant::now();
        let mut c = Crashes::default();
        for i in 0..5u64 {
            let start = t0 + WINDOW * i as u32 + ms(i);
            assert!(c.exited(start, false, start + ms(5)));
            assert!(c.backoff(start + ms(6)).is_none(), "crash {i}");
        }
    }
}
