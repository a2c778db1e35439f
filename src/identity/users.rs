//! People: the [`User`] record, the [`UserStore`] binding it lives behind (D1 in the Worker,
//! memory in tests), and the rules that map a verified JWT or a synced profile to one row.
//!
//! A JWT's `sub` is either our own user id (the frontend got it from sync-user) or an
//! external subject we have not seen. An unknown subject whose email is *verified* (see
//! [`Identity::email_verified`]) is linked to the existing row with that email if it has no
//! subject yet (a row made by sync-user gets its subject on its first verified sign-in);
//! otherwise a new row is created: "created on first sight".
//!
//! An unverified email is never trusted with anything: it links nothing (else whoever can
//! get a token carrying someone's address would take over their account and deployments)
//! and is not stored on the new row either (else it could squat the address, and the
//! owner's later sync-user would land on the squatter's row). `last_seen_at` is refreshed
//! at most every [`TOUCH_INTERVAL_MS`] so ordinary requests do not each cost a D1 write.

use serde::{Deserialize, Serialize};

use crate::error::AppResult;
use crate::identity::jwt::Identity;
use crate::identity::sync::SyncProfile;

pub const TOUCH_INTERVAL_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(skip_serializing)]
    pub subject: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub github_id: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// What a resolution did, so the caller can audit first sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Existing,
    Linked,
    Created,
}

/// The storage a user resolution needs. `async fn` without `Send`: Workers are
/// single-threaded and the `worker` types are not `Send`.
#[allow(async_fn_in_trait)]
pub trait UserStore {
    /// The row whose `subject` or `id` equals `key`.
    async fn find(&self, key: &str) -> AppResult<Option<User>>;
    /// Sets `subject` on the row with this email if it has none; returns that row.
    async fn link_subject(&self, email: &str, subject: &str, now: i64) -> AppResult<Option<User>>;
    /// Inserts a new row; if another request inserted the same subject first, returns
    /// that row instead (with `false`). `email` is dropped if another row holds it.
    async fn insert(
        &self,
        id: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> AppResult<(User, bool)>;
    async fn touch(&self, id: &str, now: i64) -> AppResult<()>;
    /// Upsert by email for sync-user; `true` when the row was created.
    async fn upsert_profile(
        &self,
        id: &str,
        profile: &SyncProfile,
        now: i64,
    ) -> AppResult<(User, bool)>;
}

pub async fn resolve<S: UserStore>(
    store: &S,
    identity: &Identity,
    now: i64,
    new_id: impl FnOnce() -> AppResult<String>,
) -> AppResult<(User, Outcome)> {
    if let Some(mut user) = store.find(&identity.subject).await? {
        if now - user.last_seen_at >= TOUCH_INTERVAL_MS {
            store.touch(&user.id, now).await?;
            user.last_seen_at = now;
        }
        return Ok((user, Outcome::Existing));
    }
    let verified_email = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified);
    if let Some(email) = verified_email {
        if let Some(user) = store.link_subject(email, &identity.subject, now).await? {
            return Ok((user, Outcome::Linked));
        }
    }
    let (user, created) = store
        .insert(&new_id()?, &identity.subject, verified_email, now)
        .await?;
    Ok((
        user,
        if created {
            Outcome::Created
        } else {
            Outcome::Existing
        },
    ))
}

/// An in-memory [`UserStore`] for native tests; behaves like the D1 one, including the
/// unique constraints on `subject` and `email`, and can be told to fail.
#[cfg(test)]
pub mod memory {
    use super::*;
    use crate::error::AppError;
    use std::cell::{Cell, RefCell};

    #[derive(Default)]
    pub struct MemoryUsers {
        pub rows: RefCell<Vec<User>>,
        pub writes: Cell<usize>,
        pub fail: Cell<bool>,
    }

    impl MemoryUsers {
        fn check(&self) -> AppResult<()> {
            if self.fail.get() {
                Err(AppError::internal("memory store told to fail"))
            } else {
                Ok(())
            }
        }
    }

    fn blank(id: &str, now: i64) -> User {
        User {
            id: id.into(),
            subject: None,
            email: None,
            name: None,
            avatar_url: None,
            github_id: None,
            created_at: now,
            last_seen_at: now,
        }
    }

    impl UserStore for MemoryUsers {
        async fn find(&self, key: &str) -> AppResult<Option<User>> {
            self.check()?;
            Ok(self
                .rows
                .borrow()
                .iter()
                .find(|u| u.id == key || u.subject.as_deref() == Some(key))
                .cloned())
        }

        async fn link_subject(
            &self,
            email: &str,
            subject: &str,
            now: i64,
        ) -> AppResult<Option<User>> {
            self.check()?;
            let mut rows = self.rows.borrow_mut();
            let hit = rows
                .iter_mut()
                .find(|u| u.email.as_deref() == Some(email) && u.subject.is_none());
            Ok(hit.map(|u| {
                u.subject = Some(subject.into());
                u.last_seen_at = now;
                self.writes.set(self.writes.get() + 1);
                u.clone()
            }))
        }

        async fn insert(
            &self,
            id: &str,
            subject: &str,
            email: Option<&str>,
            now: i64,
        ) -> AppResult<(User, bool)> {
            self.check()?;
            let mut rows = self.rows.borrow_mut();
            if let Some(u) = rows.iter().find(|u| u.subject.as_deref() == Some(subject)) {
                return Ok((u.clone(), false));
            }
            let taken = email.is_some_and(|e| rows.iter().any(|u| u.email.as_deref() == Some(e)));
            let mut u = blank(id, now);
            u.subject = Some(subject.into());
            u.email = if taken {
                None
            } else {
                email.map(str::to_string)
            };
            rows.push(u.clone());
            self.writes.set(self.writes.get() + 1);
            Ok((u, true))
        }

        async fn touch(&self, id: &str, now: i64) -> AppResult<()> {
            self.check()?;
            if let Some(u) = self.rows.borrow_mut().iter_mut().find(|u| u.id == id) {
                u.last_seen_at = now;
            }
            self.writes.set(self.writes.get() + 1);
            Ok(())
        }

        async fn upsert_profile(
            &self,
            id: &str,
            p: &SyncProfile,
            now: i64,
        ) -> AppResult<(User, bool)> {
            self.check()?;
            let mut rows = self.rows.borrow_mut();
            self.writes.set(self.writes.get() + 1);
            if let Some(u) = rows
                .iter_mut()
                .find(|u| u.email.as_deref() == Some(p.email.as_str()))
            {
                u.name = p.name.clone().or(u.name.take());
                u.avatar_url = p.avatar_url.clone().or(u.avatar_url.take());
                u.github_id = p.github_id.clone().or(u.github_id.take());
                u.last_seen_at = now;
                return Ok((u.clone(), false));
            }
            let mut u = blank(id, now);
            u.email = Some(p.email.clone());
            u.name = p.name.clone();
            u.avatar_url = p.avatar_url.clone();
            u.github_id = p.github_id.clone();
            rows.push(u.clone());
            Ok((u, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryUsers;
    use super::*;
    use futures_executor::block_on;

    fn ident(sub: &str, email: Option<&str>) -> Identity {
        Identity {
            subject: sub.into(),
            email: email.map(str::to_string),
            email_verified: false,
        }
    }

    fn verified(sub: &str, email: &str) -> Identity {
        Identity {
            subject: sub.into(),
            email: Some(email.into()),
            email_verified: true,
        }
    }

    fn profile(email: &str, name: Option<&str>) -> SyncProfile {
        SyncProfile {
            email: email.into(),
            name: name.map(str::to_string),
            avatar_url: None,
            github_id: None,
        }
    }

    fn id(s: &'static str) -> impl FnOnce() -> AppResult<String> {
        move || Ok(s.to_string())
    }

    #[test]
    fn a_new_subject_creates_a_user_once() {
        let store = MemoryUsers::default();
        let (u, o) = block_on(resolve(
            &store,
            &ident("gh|1", Some("a@x.io")),
            1000,
            id("usr_1"),
        ))
        .unwrap();
        assert_eq!((u.id.as_str(), o), ("usr_1", Outcome::Created));
        let (u2, o2) = block_on(resolve(&store, &ident("gh|1", None), 2000, id("usr_2"))).unwrap();
        assert_eq!((u2.id.as_str(), o2), ("usr_1", Outcome::Existing));
        assert_eq!(store.rows.borrow().len(), 1);
    }

    #[test]
    fn a_subject_equal_to_our_own_user_id_finds_that_user() {
        let store = MemoryUsers::default();
        let profile = profile("a@x.io", None);
        let (synced, created) = block_on(store.upsert_profile("usr_9", &profile, 0)).unwrap();
        assert!(created);
        let (u, o) =
            block_on(resolve(&store, &ident(&synced.id, None), 10, id("usr_new"))).unwrap();
        assert_eq!((u.id.as_str(), o), ("usr_9", Outcome::Existing));
    }

    #[test]
    fn an_unknown_subject_with_a_verified_email_links_to_a_synced_row_with_that_email() {
        let store = MemoryUsers::default();
        let profile = profile("a@x.io", Some("A"));
        block_on(store.upsert_profile("usr_9", &profile, 0)).unwrap();
        let (u, o) = block_on(resolve(
            &store,
            &verified("ext-7", "a@x.io"),
            10,
            id("usr_new"),
        ))
        .unwrap();
        assert_eq!((u.id.as_str(), o), ("usr_9", Outcome::Linked));
        assert_eq!(u.subject.as_deref(), Some("ext-7"));
    }

    #[test]
    fn an_unverified_email_never_claims_the_synced_row_that_holds_it() {
        let store = MemoryUsers::default();
        let victim = profile("victim@x.io", Some("Victim"));
        block_on(store.upsert_profile("usr_victim", &victim, 0)).unwrap();
        let (u, o) = block_on(resolve(
            &store,
            &ident("attacker", Some("victim@x.io")),
            10,
            id("usr_attacker"),
        ))
        .unwrap();
        assert_eq!((u.id.as_str(), o), ("usr_attacker", Outcome::Created));
        assert_eq!((u.subject.as_deref(), u.email), (Some("attacker"), None));
        let rows = store.rows.borrow();
        let held = rows.iter().find(|r| r.id == "usr_victim").unwrap();
        assert_eq!(held.subject, None, "the synced row was claimed");
        assert_eq!(held.email.as_deref(), Some("victim@x.io"));
    }

    #[test]
    fn a_synced_row_gets_its_subject_only_on_the_first_verified_sign_in() {
        let store = MemoryUsers::default();
        block_on(store.upsert_profile("usr_9", &profile("a@x.io", None), 0)).unwrap();
        let (first, _) = block_on(resolve(
            &store,
            &ident("unverified", Some("a@x.io")),
            1,
            id("usr_other"),
        ))
        .unwrap();
        assert_eq!(first.id, "usr_other");
        let (linked, o) = block_on(resolve(
            &store,
            &verified("real", "a@x.io"),
            2,
            id("usr_new"),
        ))
        .unwrap();
        assert_eq!((linked.id.as_str(), o), ("usr_9", Outcome::Linked));
        let (again, o) = block_on(resolve(
            &store,
            &ident("unverified", Some("a@x.io")),
            3,
            id("usr_x"),
        ))
        .unwrap();
        assert_eq!((again.id.as_str(), o), ("usr_other", Outcome::Existing));
    }

    #[test]
    fn an_unverified_email_is_not_stored_so_it_cannot_be_squatted() {
        let store = MemoryUsers::default();
        let (u, o) = block_on(resolve(
            &store,
            &ident("squatter", Some("later@x.io")),
            0,
            id("usr_squat"),
        ))
        .unwrap();
        assert_eq!((o, u.email), (Outcome::Created, None));
        // The real owner's sync then makes a row of their own, not the squatter's.
        let (synced, created) =
            block_on(store.upsert_profile("usr_owner", &profile("later@x.io", None), 1)).unwrap();
        assert!(created);
        assert_eq!(synced.id, "usr_owner");
    }

    #[test]
    fn a_verified_email_is_stored_on_a_new_row() {
        let store = MemoryUsers::default();
        let (u, o) = block_on(resolve(&store, &verified("s", "a@x.io"), 0, id("usr_1"))).unwrap();
        assert_eq!((o, u.email.as_deref()), (Outcome::Created, Some("a@x.io")));
    }

    #[test]
    fn an_email_held_by_another_subject_is_not_taken_over() {
        let store = MemoryUsers::default();
        block_on(resolve(&store, &verified("s1", "a@x.io"), 0, id("usr_1"))).unwrap();
        let (u, o) = block_on(resolve(&store, &verified("s2", "a@x.io"), 0, id("usr_2"))).unwrap();
        assert_eq!((u.id.as_str(), o), ("usr_2", Outcome::Created));
        assert_eq!(u.email, None);
    }

    #[test]
    fn last_seen_is_written_only_after_the_touch_interval() {
        let store = MemoryUsers::default();
        block_on(resolve(&store, &ident("s", None), 0, id("usr_1"))).unwrap();
        let writes = store.writes.get();
        block_on(resolve(
            &store,
            &ident("s", None),
            TOUCH_INTERVAL_MS - 1,
            id("x"),
        ))
        .unwrap();
        assert_eq!(store.writes.get(), writes);
        let (u, _) = block_on(resolve(
            &store,
            &ident("s", None),
            TOUCH_INTERVAL_MS,
            id("x"),
        ))
        .unwrap();
        assert_eq!(store.writes.get(), writes + 1);
        assert_eq!(u.last_seen_at, TOUCH_INTERVAL_MS);
    }

    #[test]
    fn a_failing_store_is_an_error_not_an_anonymous_user() {
        let store = MemoryUsers::default();
        store.fail.set(true);
        assert_eq!(
            block_on(resolve(&store, &ident("s", None), 0, id("u")))
                .unwrap_err()
                .status(),
            500
        );
    }

    #[test]
    fn sync_upserts_by_email_and_keeps_fields_it_is_not_given() {
        let store = MemoryUsers::default();
        let p1 = SyncProfile {
            email: "a@x.io".into(),
            name: Some("Ada".into()),
            avatar_url: None,
            github_id: Some("1".into()),
        };
        block_on(store.upsert_profile("usr_1", &p1, 0)).unwrap();
        let p2 = SyncProfile {
            email: "a@x.io".into(),
            name: None,
            avatar_url: Some("https://a/b".into()),
            github_id: None,
        };
        let (u, created) = block_on(store.upsert_profile("usr_2", &p2, 5)).unwrap();
        assert!(!created);
        assert_eq!(
            (u.id.as_str(), u.name.as_deref(), u.github_id.as_deref()),
            ("usr_1", Some("Ada"), Some("1"))
        );
    }
}
