//! All of this service's access to codex: one long-lived `codex app-server`
//! shared by every context, each context (its key) mapped to a codex thread
//! that is resumed with its history after codex dies or this program
//! restarts. The thread ids live in the service's SQLite store.
//!
//! This is a small interim layer over [`AppServer`]: it respawns codex
//! lazily when the last one died, and resumes (`thread/resume`) a context's
//! stored thread in the new process. It has the shape of codex-adapter's
//! healing `Sessions` (`start_turn(key, input, options)`), so moving onto
//! that is a change of this file only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use codex_adapter::{
    AppServer, AppServerBuilder, Error, Thread, ThreadOptions, Turn, TurnInput, TurnOptions,
};

use crate::store::{Store, StoreError};

/// Why a turn could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// codex could not be started, or refused the thread or turn.
    #[error(transparent)]
    Codex(#[from] Error),
    /// The context's thread could not be read from or written to the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The one codex of this service.
#[derive(Clone)]
pub struct Codex {
    inner: Arc<Inner>,
}

struct Inner {
    builder: AppServerBuilder,
    thread_options: ThreadOptions,
    store: Store,
    /// The current app-server (alive or dead), and how many were started.
    server: tokio::sync::Mutex<(Option<AppServer>, u64)>,
    /// Threads loaded in the current app-server, by context id, tagged with
    /// the app-server's generation.
    threads: Mutex<HashMap<String, (u64, Thread)>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Codex {
    /// A codex started from `builder` on first use; new contexts' threads
    /// get `thread_options`.
    pub fn new(builder: AppServerBuilder, thread_options: ThreadOptions, store: Store) -> Codex {
        Codex {
            inner: Arc::new(Inner {
                builder,
                thread_options,
                store,
                server: tokio::sync::Mutex::new((None, 0)),
                threads: Mutex::new(HashMap::new()),
                closed: false.into(),
            }),
        }
    }

    /// Starts a turn in `context`'s thread: starting codex if none is
    /// alive, resuming the context's thread (or starting one) if the
    /// current codex has not loaded it.
    ///
    /// # Cancel safety
    /// Dropping the future may leave codex started or a thread loaded
    /// (both are reused by the next call); a turn already started is
    /// interrupted (see [`Thread::start_turn_with`]).
    pub async fn start_turn(
        &self,
        context: &str,
        input: TurnInput,
        options: TurnOptions,
    ) -> Result<Turn, StartError> {
        let thread = self.thread(context).await?;
        Ok(thread.start_turn_with(input, options).await?)
    }

    async fn server(&self) -> Result<(AppServer, u64), Error> {
        let mut current = self.inner.server.lock().await;
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::ServerDied("codex-a2a is shutting down".into()));
        }
        if let (Some(server), generation) = &*current {
            if server.death().is_none() {
                return Ok((server.clone(), *generation));
            }
            tracing::warn!(cause = %server.death().unwrap_or_default(), "codex died; starting a new one");
        }
        let server = self.inner.builder.clone().spawn().await?;
        current.1 += 1;
        current.0 = Some(server.clone());
        tracing::info!(pid = ?server.pid(), generation = current.1, "codex app-server started");
        Ok((server, current.1))
    }

    async fn thread(&self, context: &str) -> Result<Thread, StartError> {
        let (server, generation) = self.server().await?;
        if let Some((g, thread)) = self.inner.threads.lock().expect("threads").get(context) {
            if *g == generation {
                return Ok(thread.clone());
            }
        }
        let stored = self.inner.store.thread_of(context).await?;
        let thread = match stored {
            Some((thread_id, _)) => match server
                .resume_thread(&thread_id, self.inner.thread_options.clone())
                .await
            {
                Ok(thread) => {
                    tracing::info!(
                        context,
                        thread = thread.id(),
                        "resumed the context's codex thread"
                    );
                    thread
                }
                Err(e) if server.death().is_none() => {
                    // The thread is gone from codex (its rollout deleted):
                    // the context goes on in a new thread, without history.
                    tracing::warn!(context, thread_id, error = %e, "cannot resume the thread; starting a new one");
                    self.start_thread(&server, context).await?
                }
                Err(e) => return Err(e.into()),
            },
            None => self.start_thread(&server, context).await?,
        };
        self.inner
            .threads
            .lock()
            .expect("threads")
            .insert(context.to_owned(), (generation, thread.clone()));
        Ok(thread)
    }

    async fn start_thread(&self, server: &AppServer, context: &str) -> Result<Thread, StartError> {
        let thread = server
            .start_thread(self.inner.thread_options.clone())
            .await?;
        self.inner
            .store
            .set_thread(context, Some(thread.id()), None)
            .await?;
        Ok(thread)
    }

    /// The running app-server's process id, if one runs.
    pub async fn pid(&self) -> Option<u32> {
        let current = self.inner.server.lock().await;
        current
            .0
            .as_ref()
            .filter(|s| s.death().is_none())
            .and_then(AppServer::pid)
    }

    /// Ends codex (gracefully, then forcefully); later turns fail at once.
    ///
    /// # Cancel safety
    /// Dropping the future stops waiting; codex is killed when the last
    /// handle goes.
    pub async fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let server = self.inner.server.lock().await.0.take();
        self.inner.threads.lock().expect("threads").clear();
        if let Some(server) = server {
            server.close().await;
        }
    }
}
