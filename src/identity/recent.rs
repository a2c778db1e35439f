//! The people this isolate resolved lately, by JWT subject: so a signed-in request in a
//! warm isolate costs no D1 read. An entry lives [`FRESH_MS`]; after that the next request
//! resolves the row again (which also keeps `last_seen_at` within its refresh interval).
//! Writers of what an entry holds (profile sync, settings) forget it in their isolate;
//! other isolates see the change within [`FRESH_MS`]. Pure: the table lives in a
//! thread-local of the routes layer.

use std::collections::HashMap;

use crate::identity::users::User;

/// How long a resolved person is trusted without reading D1.
pub const FRESH_MS: i64 = 60_000;
/// Entries one isolate keeps; past it, expired ones go, and if none had, all do.
pub const CAPACITY: usize = 2_048;

/// A resolved person and what their analyses depend on.
#[derive(Debug, Clone)]
pub struct Known {
    pub user: User,
    /// Their settings hold their own LLM key (so their own cached plans are looked for).
    pub own_llm_key: bool,
}

#[derive(Debug, Default)]
pub struct Recent {
    by_subject: HashMap<String, (Known, i64)>,
}

impl Recent {
    pub fn get(&self, subject: &str, now: i64) -> Option<Known> {
        self.by_subject
            .get(subject)
            .filter(|(_, at)| now - at < FRESH_MS && now >= *at)
            .map(|(k, _)| k.clone())
    }

    pub fn put(&mut self, subject: &str, known: Known, now: i64) {
        if self.by_subject.len() >= CAPACITY && !self.by_subject.contains_key(subject) {
            self.by_subject.retain(|_, (_, at)| now - *at < FRESH_MS);
            if self.by_subject.len() >= CAPACITY {
                self.by_subject.clear();
            }
        }
        self.by_subject.insert(subject.to_string(), (known, now));
    }

    /// After a write to this person's row or settings.
    pub fn forget_user(&mut self, user_id: &str) {
        self.by_subject.retain(|_, (k, _)| k.user.id != user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(id: &str) -> Known {
        Known {
            user: User {
                id: id.into(),
                subject: Some(format!("sub-{id}")),
                email: None,
                name: None,
                avatar_url: None,
                github_id: None,
                created_at: 0,
                last_seen_at: 0,
            },
            own_llm_key: false,
        }
    }

    #[test]
    fn a_person_is_trusted_for_a_minute_then_read_again() {
        let mut r = Recent::default();
        r.put("sub-a", known("usr_a"), 1_000);
        assert_eq!(
            r.get("sub-a", 1_000 + FRESH_MS - 1).map(|k| k.user.id),
            Some("usr_a".into())
        );
        assert!(r.get("sub-a", 1_000 + FRESH_MS).is_none());
        assert!(
            r.get("sub-a", 999).is_none(),
            "a clock that steps back trusts nothing"
        );
        assert!(r.get("sub-b", 1_000).is_none());
    }

    #[test]
    fn a_write_to_the_person_forgets_them() {
        let mut r = Recent::default();
        r.put("sub-a", known("usr_a"), 0);
        r.put("sub-b", known("usr_b"), 0);
        r.forget_user("usr_a");
        assert!(r.get("sub-a", 1).is_none());
        assert!(r.get("sub-b", 1).is_some());
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut r = Recent::default();
        for i in 0..CAPACITY {
            r.put(&format!("s{i}"), known(&format!("u{i}")), 0);
        }
        r.put("late", known("late"), FRESH_MS);
        assert!(r.get("late", FRESH_MS).is_some());
        assert!(r.get("s0", FRESH_MS).is_none());
        assert!(r.by_subject.len() <= CAPACITY);
    }
}
