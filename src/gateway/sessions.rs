//! The handshake-era sessions of one deployment, as its gateway object keeps them: our
//! session id → the runner's session id, the negotiated version and the client's original
//! `initialize` (to re-initialize behind the client's back when the runner lost the
//! session). Pure: the object persists what this table says changed.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A session unused this long is forgotten.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// `last_seen` is persisted at most this often (expiry only needs minutes).
pub const TOUCH_EVERY_MS: i64 = 60 * 1000;
/// Sessions one deployment keeps; past it the least recently used one goes (its client
/// gets 404 and initializes again, as the transport prescribes).
pub const MAX_SESSIONS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub upstream_session: String,
    pub version: Option<String>,
    /// The client's original `initialize` request (JSON text).
    pub initialize: String,
    pub last_seen: i64,
    /// When `last_seen` was last persisted (not itself stored).
    #[serde(skip)]
    persisted_seen: i64,
}

impl Session {
    pub fn new(
        upstream_session: String,
        version: Option<String>,
        initialize: String,
        now: i64,
    ) -> Self {
        Self {
            upstream_session,
            version,
            initialize,
            last_seen: now,
            persisted_seen: now,
        }
    }
}

/// What a request found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub upstream_session: String,
    /// The session changed in a way worth persisting now (version, or a stale `last_seen`).
    pub persist: bool,
}

#[derive(Debug, Default)]
pub struct Sessions {
    map: HashMap<String, Session>,
}

impl Sessions {
    /// The table as persisted (a restarted object reads its storage back).
    pub fn from_stored(stored: impl IntoIterator<Item = (String, Session)>) -> Self {
        let map = stored
            .into_iter()
            .map(|(id, mut s)| {
                s.persisted_seen = s.last_seen;
                (id, s)
            })
            .collect();
        Self { map }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Session> {
        self.map.get(id)
    }

    /// Records a new session; returns the id of the one evicted to make room, if any.
    pub fn begin(&mut self, id: String, session: Session) -> Option<String> {
        let evicted = if self.map.len() >= MAX_SESSIONS && !self.map.contains_key(&id) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone());
            oldest.inspect(|k| {
                self.map.remove(k);
            })
        } else {
            None
        };
        self.map.insert(id, session);
        evicted
    }

    /// An authenticated request on session `id`: it is seen now, at the version the
    /// client states (clients send the negotiated one on every request after initialize).
    pub fn touch(&mut self, id: &str, version: Option<&str>, now: i64) -> Option<Found> {
        let s = self.map.get_mut(id)?;
        let mut persist = now - s.persisted_seen > TOUCH_EVERY_MS;
        if let Some(v) = version.filter(|v| s.version.as_deref() != Some(v)) {
            s.version = Some(v.to_string());
            persist = true;
        }
        s.last_seen = now;
        if persist {
            s.persisted_seen = now;
        }
        Some(Found {
            upstream_session: s.upstream_session.clone(),
            persist,
        })
    }

    /// After a re-initialize: the runner's new session replaces `stale`, unless someone
    /// already replaced it. Returns the session's current runner id.
    pub fn recovered(&mut self, id: &str, stale: &str, fresh: &str, now: i64) -> Option<String> {
        let s = self.map.get_mut(id)?;
        if s.upstream_session == stale {
            s.upstream_session = fresh.to_string();
            s.last_seen = now;
            s.persisted_seen = now;
        }
        Some(s.upstream_session.clone())
    }

    pub fn end(&mut self, id: &str) -> Option<Session> {
        self.map.remove(id)
    }

    /// Removes sessions idle for [`IDLE_MS`]; returns their ids and when the next one
    /// falls due (for the object's alarm).
    pub fn sweep(&mut self, now: i64) -> (Vec<String>, Option<i64>) {
        let expired: Vec<String> = self
            .map
            .iter()
            .filter(|(_, s)| now - s.last_seen >= IDLE_MS)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.map.remove(k);
        }
        let next = self.map.values().map(|s| s.last_seen + IDLE_MS).min();
        (expired, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(up: &str, now: i64) -> Session {
        Session::new(up.into(), Some("2025-06-18".into()), "{}".into(), now)
    }

    #[test]
    fn a_request_finds_its_session_and_persists_only_what_changed() {
        let mut t = Sessions::default();
        t.begin("a".into(), session("u1", 0));
        let f = t.touch("a", Some("2025-06-18"), 1_000).expect("found");
        assert_eq!(f.upstream_session, "u1");
        assert!(!f.persist, "nothing changed within a minute");
        assert!(
            t.touch("a", Some("2025-11-25"), 2_000)
                .expect("found")
                .persist
        );
        assert_eq!(
            t.get("a").and_then(|s| s.version.as_deref()),
            Some("2025-11-25")
        );
        assert!(!t.touch("a", None, 3_000).expect("found").persist);
        assert!(
            t.touch("a", None, 3_000 + TOUCH_EVERY_MS)
                .expect("found")
                .persist
        );
        assert_eq!(t.touch("b", None, 0), None);
    }

    #[test]
    fn a_recovery_replaces_only_the_session_it_saw() {
        let mut t = Sessions::default();
        t.begin("a".into(), session("u1", 0));
        assert_eq!(t.recovered("a", "u1", "u2", 5).as_deref(), Some("u2"));
        // A late second recovery of the same stale id keeps the first one's result.
        assert_eq!(t.recovered("a", "u1", "u3", 6).as_deref(), Some("u2"));
        assert_eq!(t.recovered("gone", "u1", "u3", 6), None);
    }

    #[test]
    fn idle_sessions_expire_and_the_next_expiry_is_known() {
        let mut t = Sessions::default();
        t.begin("old".into(), session("u1", 0));
        t.begin("new".into(), session("u2", IDLE_MS / 2));
        let (gone, next) = t.sweep(IDLE_MS);
        assert_eq!(gone, vec!["old".to_string()]);
        assert_eq!(next, Some(IDLE_MS / 2 + IDLE_MS));
        t.touch("new", None, IDLE_MS);
        let (gone, next) = t.sweep(IDLE_MS + 1);
        assert!(gone.is_empty());
        assert_eq!(next, Some(2 * IDLE_MS));
        t.end("new");
        assert_eq!(t.sweep(0), (vec![], None));
    }

    #[test]
    fn a_full_table_makes_room_by_dropping_the_least_recently_used() {
        let mut t = Sessions::default();
        for i in 0..MAX_SESSIONS {
            t.begin(format!("s{i}"), session("u", 10 + i as i64));
        }
        t.touch("s0", None, 1_000_000);
        assert_eq!(
            t.begin("new".into(), session("u", 1_000_001)).as_deref(),
            Some("s1")
        );
        assert_eq!(t.len(), MAX_SESSIONS);
        assert!(t.get("s0").is_some() && t.get("s1").is_none());
    }

    #[test]
    fn a_stored_table_comes_back_with_its_sessions() {
        let stored = vec![("a".to_string(), session("u1", 7))];
        let text = serde_json::to_string(&stored[0].1).expect("json");
        assert!(!text.contains("persisted"), "{text}");
        let mut t = Sessions::from_stored(stored);
        assert!(!t.touch("a", Some("2025-06-18"), 8).expect("found").persist);
    }
}
