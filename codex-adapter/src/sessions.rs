//! One thread per caller key, created on first use.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::error::Error;
use crate::options::{ThreadOptions, TurnInput, TurnOptions};
use crate::server::{AppServer, Thread};
use crate::turn::{Turn, TurnSummary};

/// A map from the caller's own key (a workspace or chat session id) to a
/// codex thread, created with the same [`ThreadOptions`] on first use: the
/// shape of a service that gets one message at a time per workspace.
///
/// Concurrent first uses of one key start one thread. Turns of one key run
/// one at a time (the thread's lock); turns of different keys run
/// concurrently in the same app-server.
///
/// ```no_run
/// # async fn demo(server: codex_adapter::AppServer) -> Result<(), codex_adapter::Error> {
/// use codex_adapter::{Sessions, ThreadOptions};
///
/// let sessions = Sessions::new(server, ThreadOptions::default());
/// let reply = sessions.run(&"workspace-42".to_string(), "What changed?").await?;
/// println!("{}", reply.outcome);
/// # Ok(()) }
/// ```
pub struct Sessions<K> {
    server: AppServer,
    options: ThreadOptions,
    threads: Mutex<HashMap<K, Arc<OnceCell<Thread>>>>,
}

impl<K: Eq + Hash + Clone> Sessions<K> {
    /// An empty map whose threads start in `server` with `options`.
    pub fn new(server: AppServer, options: ThreadOptions) -> Self {
        Sessions {
            server,
            options,
            threads: Mutex::new(HashMap::new()),
        }
    }

    /// The thread of `key`, started now if it has none. A failed start is
    /// not remembered: the next call tries again.
    ///
    /// # Cancel safety
    /// Dropping the future while the thread starts lets another caller (or
    /// the next call) start it.
    pub async fn thread(&self, key: &K) -> Result<Thread, Error> {
        let cell = self
            .threads
            .lock()
            .expect("sessions lock")
            .entry(key.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.server.start_thread(self.options.clone()))
            .await
            .cloned()
    }

    /// Starts a turn on `key`'s thread (see [`Thread::start_turn_with`]).
    ///
    /// # Cancel safety
    /// As for [`Thread::start_turn_with`].
    pub async fn start_turn(
        &self,
        key: &K,
        input: impl Into<TurnInput>,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        self.thread(key)
            .await?
            .start_turn_with(input, options)
            .await
    }

    /// Runs a whole turn on `key`'s thread and collects it.
    ///
    /// # Cancel safety
    /// Dropping the future interrupts the turn.
    pub async fn run(&self, key: &K, input: impl Into<TurnInput>) -> Result<TurnSummary, Error> {
        self.thread(key).await?.run(input).await
    }

    /// Forgets `key`'s thread (codex keeps it); the next use starts a new one.
    pub fn forget(&self, key: &K) -> Option<Thread> {
        let cell = self.threads.lock().expect("sessions lock").remove(key)?;
        cell.get().cloned()
    }

    /// How many keys have a thread (or one starting).
    pub fn len(&self) -> usize {
        self.threads.lock().expect("sessions lock").len()
    }

    /// Whether no key has a thread.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
