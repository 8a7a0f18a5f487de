//! All SQL of the users service.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{DisplayName, Email, Role, User},
    error::UsersError,
};
use messaging::{Envelope, outbox};

#[derive(Clone, Debug)]
pub struct UserStore {
    pool: PgPool,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    role: String,
    created_at: OffsetDateTime,
}

impl TryFrom<UserRow> for User {
    type Error = UsersError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id,
            email: Email::parse(&row.email)
                .map_err(|err| UsersError::Corrupt(format!("email of {}: {err}", row.id)))?,
            display_name: DisplayName::from_trusted(row.display_name),
            role: Role::parse(&row.role)
                .ok_or_else(|| UsersError::Corrupt(format!("role of {}: {}", row.id, row.role)))?,
            created_at: row.created_at,
        })
    }
}

impl UserStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Inserts the account and records its `UserRegistered` event in one transaction
    /// (transactional outbox): either both exist afterwards or neither does.
    pub async fn register(
        &self,
        user: &User,
        password_hash: &str,
        event: &Envelope,
    ) -> Result<(), UsersError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, role, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id)
        .bind(user.email.as_str())
        .bind(user.display_name.as_str())
        .bind(password_hash)
        .bind(user.role.as_str())
        .bind(user.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(UsersError::EmailTaken);
            }
            Err(other) => return Err(other.into()),
        }
        outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account and its password hash, for authentication.
    pub async fn find_credentials(
        &self,
        email: &Email,
    ) -> Result<Option<(User, String)>, UsersError> {
        let row: Option<(Uuid, String, String, String, OffsetDateTime, String)> = sqlx::query_as(
            "SELECT id, email, display_name, role, created_at, password_hash
             FROM users WHERE email = $1",
        )
        .bind(email.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, email, display_name, role, created_at, hash)| {
            let user = User::try_from(UserRow {
                id,
                email,
                display_name,
                role,
                created_at,
            })?;
            Ok((user, hash))
        })
        .transpose()
    }

    /// Gives the account registered as `email` the `role`; `None` if there is none.
    pub async fn set_role(&self, email: &Email, role: Role) -> Result<Option<User>, UsersError> {
        sqlx::query_as::<_, UserRow>(
            "UPDATE users SET role = $2 WHERE email = $1
             RETURNING id, email, display_name, role, created_at",
        )
        .bind(email.as_str())
        .bind(role.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(User::try_from)
        .transpose()
    }

    pub async fn find(&self, id: Uuid) -> Result<Option<User>, UsersError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, display_name, role, created_at FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(User::try_from)
        .transpose()
    }
}
