//! The embedded SQLite store (the default). WAL mode so reads never wait for the writer, a
//! busy timeout so concurrent writers queue instead of failing, and every write a single
//! statement or transaction so a failure changes nothing. The queries are shared with
//! PostgreSQL (see `sql.rs`).

use super::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::borrow::Cow;
use std::str::FromStr;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// SQLite reads the shared queries' `?` parameters as they are.
fn sql(text: &'static str) -> Cow<'static, str> {
    Cow::Borrowed(text)
}

/// Resources with a relation to a target: SQLite's JSON1 over the stored body.
const RELATION_TARGET_IS: &str =
    " AND EXISTS (SELECT 1 FROM json_each(r.body_json, '$.relations') rel
       WHERE json_extract(rel.value, '$.target') = ";
const RELATION_KIND_IS: &str = " AND json_extract(rel.value, '$.kind') = ";

impl_sql_store!(SqliteStore, sqlx::Sqlite);
