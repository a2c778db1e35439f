//! [`UserStore`] over the D1 `users` table.

use worker::D1Database;

use crate::error::AppResult;
use crate::identity::sync::SyncProfile;
use crate::identity::users::{User, UserStore};
use crate::store::d1::{int, opt_text, text};

const COLUMNS: &str = "id, subject, email, name, avatar_url, github_id, created_at, last_seen_at";

pub struct D1Users<'a> {
    pub db: &'a D1Database,
}

#[derive(serde::Deserialize)]
struct UpsertRow {
    #[serde(flatten)]
    user: User,
    created: i64,
}

impl UserStore for D1Users<'_> {
    async fn find(&self, key: &str) -> AppResult<Option<User>> {
        // A subject match wins over an id match should the two ever collide.
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE subject = ?1 OR id = ?1 ORDER BY (subject = ?1) DESC LIMIT 1"
        );
        Ok(self
            .db
            .prepare(sql)
            .bind(&[text(key)])?
            .first::<User>(None)
            .await?)
    }

    async fn link_subject(&self, email: &str, subject: &str, now: i64) -> AppResult<Option<User>> {
        let sql = format!(
            "UPDATE users SET subject = ?2, last_seen_at = ?3 WHERE email = ?1 AND subject IS NULL RETURNING {COLUMNS}"
        );
        Ok(self
            .db
            .prepare(sql)
            .bind(&[text(email), text(subject), int(now)])?
            .first::<User>(None)
            .await?)
    }

    async fn insert(
        &self,
        id: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> AppResult<(User, bool)> {
        let sql = format!(
            "INSERT INTO users (id, subject, email, created_at, last_seen_at) \
             VALUES (?1, ?2, CASE WHEN EXISTS (SELECT 1 FROM users WHERE email = ?3) THEN NULL ELSE ?3 END, ?4, ?4) \
             ON CONFLICT (subject) DO NOTHING RETURNING {COLUMNS}"
        );
        let inserted = self
            .db
            .prepare(sql)
            .bind(&[text(id), text(subject), opt_text(email), int(now)])?
            .first::<User>(None)
            .await?;
        match inserted {
            Some(user) => Ok((user, true)),
            None => {
                let existing = self.find(subject).await?;
                existing.map(|u| (u, false)).ok_or_else(|| {
                    crate::error::AppError::internal("user insert conflicted but no row found")
                })
            }
        }
    }

    async fn touch(&self, id: &str, now: i64) -> AppResult<()> {
        self.db
            .prepare("UPDATE users SET last_seen_at = ?2 WHERE id = ?1")
            .bind(&[text(id), int(now)])?
            .run()
            .await?;
        Ok(())
    }

    async fn upsert_profile(&self, id: &str, p: &SyncProfile, now: i64) -> AppResult<(User, bool)> {
        let sql = format!(
            "INSERT INTO users (id, email, name, avatar_url, github_id, created_at, last_seen_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (email) DO UPDATE SET \
               name = COALESCE(excluded.name, users.name), \
               avatar_url = COALESCE(excluded.avatar_url, users.avatar_url), \
               github_id = COALESCE(excluded.github_id, users.github_id), \
               last_seen_at = excluded.last_seen_at \
             RETURNING {COLUMNS}, (id = ?1) AS created"
        );
        let row = self
            .db
            .prepare(sql)
            .bind(&[
                text(id),
                text(&p.email),
                opt_text(p.name.as_deref()),
                opt_text(p.avatar_url.as_deref()),
                opt_text(p.github_id.as_deref()),
                int(now),
            ])?
            .first::<UpsertRow>(None)
            .await?
            .ok_or_else(|| crate::error::AppError::internal("user upsert returned no row"))?;
        Ok((row.user, row.created != 0))
    }
}
