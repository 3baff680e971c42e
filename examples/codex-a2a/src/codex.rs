//! All of this service's access to codex: codex-adapter's self-healing
//! [`Sessions`] — one long-lived `codex app-server` shared by every
//! context, restarted when it dies — keyed by context id, with the map of
//! context → codex thread kept in this service's SQLite store. A context's
//! thread is resumed with its history on its first use after codex died or
//! this program restarted.

use std::sync::Arc;

use async_trait::async_trait;
use codex_adapter::{
    AppServerBuilder, Error, Health, SessionCounters, SessionRecord, SessionStore, Sessions,
    StoreError, ThreadOptions, Turn, TurnInput, TurnOptions,
};

use crate::store::Store;

/// The one codex of this service. Cheap to clone.
#[derive(Clone)]
pub struct Codex {
    sessions: Sessions,
}

impl Codex {
    /// A codex started from `builder` on first use; new contexts' threads
    /// get `thread_options`; the thread map lives in `store`.
    pub fn new(builder: AppServerBuilder, thread_options: ThreadOptions, store: Store) -> Codex {
        let sessions = Sessions::builder(builder)
            .thread_options(thread_options)
            .store(Arc::new(ContextThreads(store)))
            .build();
        Codex { sessions }
    }

    /// Starts a turn in `context`'s thread (a new thread for a new
    /// context), restarting codex and resuming the thread first if needed.
    ///
    /// # Cancel safety
    /// As for [`Sessions::start_turn`]: before `turn/start` is sent,
    /// dropping does nothing; after, the turn is interrupted.
    pub async fn start_turn(
        &self,
        context: &str,
        input: TurnInput,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        self.sessions.start_turn(context, input, options).await
    }

    /// The running app-server's process id, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.sessions.server().and_then(|s| s.pid())
    }

    /// codex's health right now.
    pub fn health(&self) -> Health {
        self.sessions.status()
    }

    /// What the healing did so far.
    pub fn counters(&self) -> SessionCounters {
        self.sessions.counters()
    }

    /// Ends codex (gracefully, then forcefully); later turns fail at once.
    ///
    /// # Cancel safety
    /// Dropping the future stops waiting; later calls fail all the same.
    pub async fn close(&self) {
        self.sessions.close().await;
    }
}

/// The [`SessionStore`] of [`Sessions`]: the `contexts` table.
struct ContextThreads(Store);

#[async_trait]
impl SessionStore for ContextThreads {
    async fn load(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        let Some((thread_id, options)) = self.0.thread_of(key).await.map_err(StoreError::new)?
        else {
            return Ok(None);
        };
        let options = match options {
            Some(json) => serde_json::from_str(&json).map_err(StoreError::new)?,
            None => ThreadOptions::default(),
        };
        Ok(Some(SessionRecord::new(thread_id, options)))
    }

    async fn save(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
        let options = serde_json::to_string(&record.options).map_err(StoreError::new)?;
        self.0
            .set_thread(key, Some(&record.thread_id), Some(&options))
            .await
            .map_err(StoreError::new)
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.0.forget_thread(key).await.map_err(StoreError::new)
    }
}
