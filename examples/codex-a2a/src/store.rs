//! The state that survives: contexts (context id → codex thread) and tasks,
//! in an embedded SQLite database (sqlx), each change one transaction.
//!
//! Tasks are kept whole as JSON (the versionless [`model`](crate::model)
//! shape) beside the columns that queries filter on. WAL mode: a SIGKILL of
//! this program loses no committed write.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use crate::model::{timestamp, Message, Task, TaskState, TaskStatus};
use crate::wire::ListQuery;

/// A store failure: the database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("state database: {0}")]
    Db(#[from] sqlx::Error),
    /// A row that does not read back (written by another program?).
    #[error("state database holds a task that does not read back: {0}")]
    Corrupt(#[from] serde_json::Error),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS contexts (
    id          TEXT PRIMARY KEY,
    thread_id   TEXT,
    options     TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    context_id  TEXT NOT NULL REFERENCES contexts(id),
    state       TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_context ON tasks(context_id, seq);
"#;

/// The database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Cancel safety
    /// Dropping the future leaves at most an empty or migrated database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL survives a crash of this process (not of the OS).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Held from the first write until the process ends (even by
            // SIGKILL): a second codex-a2a on the same state cannot open it,
            // rather than fail the first one's working tasks.
            .locking_mode(SqliteLockingMode::Exclusive)
            .busy_timeout(Duration::from_secs(2));
        // One connection: every write is a short transaction, and one writer
        // at a time is what SQLite does anyway; no "database is locked".
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Store { pool })
    }

    /// Marks every task that was not finished when this program last
    /// stopped (killed, crashed) as failed, saying so. Returns them.
    ///
    /// # Cancel safety
    /// The change is one transaction: all or nothing.
    pub async fn fail_unfinished(&self, reason: &str) -> Result<Vec<Task>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT body FROM tasks WHERE state IN ('submitted', 'working', 'input_required')",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut failed = Vec::new();
        for row in rows {
            let mut task: Task = serde_json::from_str(row.get::<&str, _>(0))?;
            let was = task.status.state;
            let message = Message::agent_text(
                format!(
                    "{reason} (the task was {} then)",
                    was.as_str().replace('_', "-")
                ),
                &task.context_id,
                &task.id,
            );
            task.status = TaskStatus::now(TaskState::Failed, Some(message));
            update(&mut tx, &task).await?;
            failed.push(task);
        }
        tx.commit().await?;
        Ok(failed)
    }

    /// Records a new task, and its context if new, in one transaction.
    ///
    /// # Cancel safety
    /// All or nothing.
    pub async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let now = timestamp(SystemTime::now());
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO contexts (id, created_at, updated_at) VALUES (?1, ?2, ?2)
             ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(&task.context_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tasks (id, context_id, state, body, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&task.id)
        .bind(&task.context_id)
        .bind(task.status.state.as_str())
        .bind(serde_json::to_string(task)?)
        .bind(&task.created_at)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a task's new state, history and artifacts.
    ///
    /// # Cancel safety
    /// All or nothing.
    pub async fn save_task(&self, task: &Task) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        update(&mut tx, task).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A task by id.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let row = sqlx::query("SELECT body FROM tasks WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(serde_json::from_str(row.get::<&str, _>(0))?),
            None => None,
        })
    }

    /// Whether a context with this id exists.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn context_exists(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM contexts WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// A page of tasks, newest first, with the total count and the token of
    /// the next page (the `seq` to continue below).
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn list_tasks(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<Task>, usize, Option<String>), StoreError> {
        let before: i64 = q
            .page_token
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(i64::MAX);
        let filter = "(?1 IS NULL OR context_id = ?1) AND (?2 IS NULL OR state = ?2)";
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM tasks WHERE {filter}"))
            .bind(q.context_id.as_deref())
            .bind(q.state.map(TaskState::as_str))
            .fetch_one(&self.pool)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT seq, body FROM tasks WHERE {filter} AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
        ))
        .bind(q.context_id.as_deref())
        .bind(q.state.map(TaskState::as_str))
        .bind(before)
        .bind(q.page_size as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut tasks = Vec::new();
        let mut next = None;
        for (i, row) in rows.iter().enumerate() {
            if i == q.page_size {
                next = Some(rows[i - 1].get::<i64, _>(0).to_string());
                break;
            }
            tasks.push(serde_json::from_str(row.get::<&str, _>(1))?);
        }
        Ok((tasks, total as usize, next))
    }

    /// The codex thread of a context, and the thread options it was started
    /// with (JSON), if it has one.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn thread_of(
        &self,
        context_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT thread_id, options FROM contexts WHERE id = ?1 AND thread_id IS NOT NULL",
        )
        .bind(context_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get::<String, _>(0), r.get::<Option<String>, _>(1))))
    }

    /// Records the codex thread of a context (creating the context if new).
    ///
    /// # Cancel safety
    /// All or nothing.
    pub async fn set_thread(
        &self,
        context_id: &str,
        thread_id: Option<&str>,
        options: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = timestamp(SystemTime::now());
        sqlx::query(
            "INSERT INTO contexts (id, thread_id, options, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(id) DO UPDATE SET thread_id = excluded.thread_id, options = excluded.options,
             updated_at = excluded.updated_at",
        )
        .bind(context_id)
        .bind(thread_id)
        .bind(options)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the codex thread of a context (its tasks stay).
    ///
    /// # Cancel safety
    /// All or nothing.
    pub async fn forget_thread(&self, context_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE contexts SET thread_id = NULL, options = NULL WHERE id = ?1")
            .bind(context_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes the database (waits for the connection to finish).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn update(tx: &mut sqlx::SqliteConnection, task: &Task) -> Result<(), StoreError> {
    let now = timestamp(SystemTime::now());
    sqlx::query("UPDATE tasks SET state = ?2, body = ?3, updated_at = ?4 WHERE id = ?1")
        .bind(&task.id)
        .bind(task.status.state.as_str())
        .bind(serde_json::to_string(task)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE contexts SET updated_at = ?2 WHERE id = ?1")
        .bind(&task.context_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Part, Role};

    fn temp_db(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("codex-a2a-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.db")
    }

    fn task(id: &str, ctx: &str, state: TaskState) -> Task {
        Task {
            id: id.into(),
            context_id: ctx.into(),
            status: TaskStatus::now(state, None),
            history: vec![Message {
                message_id: format!("m-{id}"),
                role: Role::User,
                parts: vec![Part::text("hi")],
                context_id: Some(ctx.into()),
                task_id: Some(id.into()),
            }],
            artifacts: vec![],
            created_at: timestamp(SystemTime::now()),
        }
    }

    #[tokio::test]
    async fn tasks_survive_a_reopen_and_unfinished_ones_fail() {
        let path = temp_db("reopen");
        {
            let store = Store::open(&path).await.unwrap();
            store
                .create_task(&task("done", "c", TaskState::Completed))
                .await
                .unwrap();
            store
                .create_task(&task("busy", "c", TaskState::Working))
                .await
                .unwrap();
            store.set_thread("c", Some("thread-1"), None).await.unwrap();
            store.close().await;
        }
        let store = Store::open(&path).await.unwrap();
        let failed = store.fail_unfinished("codex-a2a restarted").await.unwrap();
        assert_eq!(failed.len(), 1);
        let busy = store.task("busy").await.unwrap().unwrap();
        assert_eq!(busy.status.state, TaskState::Failed);
        assert!(busy.status.message.unwrap().text().contains("restarted"));
        assert_eq!(
            store.task("done").await.unwrap().unwrap().status.state,
            TaskState::Completed
        );
        assert_eq!(store.thread_of("c").await.unwrap().unwrap().0, "thread-1");
        assert!(store.task("nope").await.unwrap().is_none());
        store.close().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn lists_page_newest_first_and_filter() {
        let path = temp_db("list");
        let store = Store::open(&path).await.unwrap();
        for i in 0..5 {
            let state = if i % 2 == 0 {
                TaskState::Completed
            } else {
                TaskState::Failed
            };
            store
                .create_task(&task(
                    &format!("t{i}"),
                    if i < 3 { "a" } else { "b" },
                    state,
                ))
                .await
                .unwrap();
        }
        let q = ListQuery {
            page_size: 2,
            ..Default::default()
        };
        let (page, total, next) = store.list_tasks(&q).await.unwrap();
        assert_eq!(total, 5);
        assert_eq!(
            page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t4", "t3"]
        );
        let q2 = ListQuery {
            page_size: 2,
            page_token: next,
            ..Default::default()
        };
        let (page, _, _) = store.list_tasks(&q2).await.unwrap();
        assert_eq!(page[0].id, "t2");
        let q3 = ListQuery {
            page_size: 50,
            context_id: Some("a".into()),
            state: Some(TaskState::Completed),
            ..Default::default()
        };
        let (page, total, next) = store.list_tasks(&q3).await.unwrap();
        assert_eq!((page.len(), total, next), (2, 2, None));
        store.close().await;
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
