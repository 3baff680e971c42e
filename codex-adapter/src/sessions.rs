//! Sessions that heal: one codex thread per caller key, in an app-server
//! that is restarted when it dies, with each thread resumed on its first use
//! afterwards.
//!
//! The supervisor holds the recipe ([`AppServerBuilder`]) and starts codex on
//! first use. When codex dies, the turns open at that moment end with
//! [`TurnOutcome::ServerDied`](crate::TurnOutcome::ServerDied) — a turn has
//! side effects, so it is never run again behind the caller's back — and the
//! next call restarts codex: one restart at a time, the first at once, later
//! ones backed off, and a breaker that fails calls at once after too many
//! failed starts. A key's thread is re-attached with `thread/resume` on its
//! first use in the new process, so the model sees the conversation so far.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::error::Error;
use crate::options::{ThreadOptions, TurnInput, TurnOptions};
use crate::server::{AppServer, AppServerBuilder, Thread};
use crate::turn::{StartFailure, Turn, TurnSummary};

/// A failure of a [`SessionStore`], wrapping the store's own error.
#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps `e`.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError(e.into())
    }
}

/// What a store keeps per key: the codex thread and the options it was
/// started with (used again to resume it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// codex's thread id.
    pub thread_id: String,
    /// The options the thread was started with.
    pub options: ThreadOptions,
}

impl SessionRecord {
    /// A record of `thread_id` started with `options`.
    pub fn new(thread_id: impl Into<String>, options: ThreadOptions) -> Self {
        SessionRecord {
            thread_id: thread_id.into(),
            options,
        }
    }
}

/// Where [`Sessions`] keeps its map of caller key → thread. The default,
/// [`MemoryStore`], forgets everything when the program ends; a service that
/// keeps the map in its own database resumes its conversations after it
/// restarts itself.
///
/// [`Sessions`] saves a record when a key gets a thread (new, forked or
/// replaced) and loads it when a key is first used in a new codex. A failing
/// store fails that call with [`Error::Store`]. Its futures may be dropped
/// (a caller gave up): a store must then leave the record whole, old or new.
///
/// ```
/// use codex_adapter::{MemoryStore, SessionRecord, SessionStore, ThreadOptions};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::default();
/// store.save("chat-1", &SessionRecord::new("thr_1", ThreadOptions::default())).await.unwrap();
/// assert_eq!(store.load("chat-1").await.unwrap().unwrap().thread_id, "thr_1");
/// # }
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The record of `key`, if any.
    async fn load(&self, key: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Stores (or replaces) the record of `key`.
    async fn save(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError>;
    /// Forgets `key`.
    async fn remove(&self, key: &str) -> Result<(), StoreError>;
}

/// The in-memory [`SessionStore`] (the default).
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, SessionRecord>>,
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.records.lock().expect("store").get(key).cloned())
    }

    async fn save(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
        self.records
            .lock()
            .expect("store")
            .insert(key.to_owned(), record.clone());
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.records.lock().expect("store").remove(key);
        Ok(())
    }
}

/// How the supervisor restarts codex, when it gives up for a while, and how
/// it retries an overloaded codex.
///
/// ```
/// use std::time::Duration;
/// use codex_adapter::RestartPolicy;
///
/// let policy = RestartPolicy::default()
///     .backoff(Duration::from_millis(100), Duration::from_secs(5))
///     .breaker(3, Duration::from_secs(30), Duration::from_secs(10));
/// assert_eq!(policy.max_failures, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// The delay before the second restart in a row (the first is
    /// immediate); it doubles for each further one (default 250 ms).
    pub initial_backoff: Duration,
    /// The longest delay between restarts (default 30 s).
    pub max_backoff: Duration,
    /// Each delay is scaled by a random factor in `1 ± jitter` (default
    /// 0.2), so many services do not restart in step.
    pub jitter: f64,
    /// A codex that ran at least this long before it died restarts at once
    /// again (the backoff starts over; default 60 s).
    pub stable_after: Duration,
    /// Failed starts within [`failure_window`](Self::failure_window) that
    /// open the breaker (default 5).
    pub max_failures: u32,
    /// See [`max_failures`](Self::max_failures) (default 60 s).
    pub failure_window: Duration,
    /// How long an open breaker fails calls at once before the next start
    /// is tried (default 30 s).
    pub open_for: Duration,
    /// How many times a request refused with `-32001` (overloaded) is sent
    /// again (default 5).
    pub overload_retries: u32,
    /// The delay before the first overload retry; it doubles for each
    /// further one (default 200 ms).
    pub overload_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            jitter: 0.2,
            stable_after: Duration::from_secs(60),
            max_failures: 5,
            failure_window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
            overload_retries: 5,
            overload_backoff: Duration::from_millis(200),
        }
    }
}

impl RestartPolicy {
    /// Sets the restart backoff: `initial` before the second restart in a
    /// row, doubling up to `max`.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// A codex that ran at least `after` before it died restarts at once
    /// (the backoff starts over).
    pub fn stable_after(mut self, after: Duration) -> Self {
        self.stable_after = after;
        self
    }

    /// Sets the jitter factor (0 for none).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Opens the breaker after `failures` failed starts within `window`,
    /// for `open_for`.
    pub fn breaker(mut self, failures: u32, window: Duration, open_for: Duration) -> Self {
        self.max_failures = failures.max(1);
        self.failure_window = window;
        self.open_for = open_for;
        self
    }

    /// Retries overloaded requests `times`, backing off from `initial`.
    pub fn overload_retries(mut self, times: u32, initial: Duration) -> Self {
        self.overload_retries = times;
        self.overload_backoff = initial;
        self
    }

    /// The delay before restart number `streak` of a run of restarts (0:
    /// immediate).
    fn delay(&self, streak: u32) -> Duration {
        if streak == 0 {
            return Duration::ZERO;
        }
        let doubled = self
            .initial_backoff
            .saturating_mul(1u32 << (streak - 1).min(20));
        jittered(doubled.min(self.max_backoff), self.jitter)
    }
}

/// Scales `d` by a random factor in `1 ± jitter`.
fn jittered(d: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    d.mul_f64(1.0 + jitter * (2.0 * fastrand::f64() - 1.0))
}

/// The supervisor's health.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Health {
    /// Nothing was started yet (codex starts on first use).
    Starting,
    /// codex runs.
    Up {
        /// Its process id.
        pid: Option<u32>,
        /// When it started.
        since: SystemTime,
        /// Restarts so far.
        restarts: u64,
    },
    /// codex died or failed to start; the next call starts it (after the
    /// backoff).
    Restarting {
        /// The number of the next start in this run of restarts.
        attempt: u32,
        /// Why the last one died or failed.
        last_cause: String,
    },
    /// The breaker is open: calls fail at once until `until`.
    Unavailable {
        /// Why the last start failed.
        cause: String,
        /// When the next start will be tried.
        until: SystemTime,
    },
    /// [`Sessions::close`] was called.
    Closed,
}

/// What the supervisor did, counted since construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCounters {
    /// codex restarts (starts after the first one that succeeded).
    pub restarts: u64,
    /// Threads re-attached with `thread/resume`.
    pub resumes: u64,
    /// Threads continued with `thread/fork` because another process held
    /// them.
    pub forks: u64,
    /// Threads replaced by a new one because codex could not resume them.
    pub replacements: u64,
    /// Requests sent again after codex said it was overloaded.
    pub overload_retries: u64,
    /// `turn/start`s sent again because codex had died before any of the
    /// turn ran.
    pub turn_retries: u64,
    /// Starts of codex that failed.
    pub start_failures: u64,
}

/// A healing step, as the caller sees it (also logged with `tracing` and
/// counted in [`SessionCounters`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// codex was started again after it died.
    Restarted {
        /// The new process id.
        pid: Option<u32>,
        /// The number of this start in its run of restarts (1: the first).
        attempt: u32,
    },
    /// codex died.
    Died {
        /// The process id it had.
        pid: Option<u32>,
        /// Why (exit status or signal, and its last stderr lines).
        cause: String,
    },
    /// A start of codex failed.
    StartFailed {
        /// The number of this start in its run of restarts.
        attempt: u32,
        /// Why.
        cause: String,
    },
    /// Too many starts failed: calls fail at once until `until`.
    BreakerOpened {
        /// Why the last start failed.
        cause: String,
        /// When the next start will be tried.
        until: SystemTime,
    },
    /// A key's thread was re-attached with `thread/resume`.
    Resumed {
        /// The caller's key.
        key: String,
        /// The thread.
        thread_id: String,
    },
    /// A key's thread was held by another process; it continues in a fork.
    Forked {
        /// The caller's key.
        key: String,
        /// The thread that could not be resumed.
        from: String,
        /// The fork, now the key's thread.
        thread_id: String,
    },
    /// A key's thread could not be resumed; the key has a new thread (the
    /// model does not see the earlier conversation).
    Replaced {
        /// The caller's key.
        key: String,
        /// The lost thread.
        old: String,
        /// The new thread.
        thread_id: String,
        /// Why (codex's answer to `thread/resume`).
        reason: String,
    },
    /// A `turn/start` went to a codex that was already dead, before any of
    /// the turn ran; it was sent again to the restarted codex.
    TurnRetried {
        /// The caller's key.
        key: String,
        /// How the dead codex ended.
        cause: String,
    },
    /// codex said it was overloaded; the request is sent again after
    /// `after`.
    OverloadRetry {
        /// The caller's key.
        key: String,
        /// Which retry this is (1: the first).
        attempt: u32,
        /// The delay before it.
        after: Duration,
    },
}

/// Settings for [`Sessions`]. Start from [`Sessions::builder`].
pub struct SessionsBuilder {
    server: AppServerBuilder,
    thread_options: ThreadOptions,
    store: Option<Arc<dyn SessionStore>>,
    policy: RestartPolicy,
}

impl std::fmt::Debug for SessionsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionsBuilder")
            .field("server", &self.server)
            .field("thread_options", &self.thread_options)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SessionsBuilder {
    /// The options of new keys' threads (default: codex's defaults).
    pub fn thread_options(mut self, options: ThreadOptions) -> Self {
        self.thread_options = options;
        self
    }

    /// Where the key → thread map lives (default: a [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Restart backoff, breaker and overload retries.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The sessions. Starts nothing: codex starts on first use.
    pub fn build(self) -> Sessions {
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        Sessions {
            inner: Arc::new(Shared {
                builder: self.server,
                thread_options: self.thread_options,
                store: self
                    .store
                    .unwrap_or_else(|| Arc::new(MemoryStore::default())),
                policy: self.policy,
                state: Mutex::new(State::default()),
                restart: tokio::sync::Mutex::new(()),
                keys: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                events,
                gone: tokio::sync::watch::channel(()).0,
            }),
        }
    }
}

/// How many [`SessionEvent`]s a slow [`Sessions::events`] receiver may fall
/// behind before it loses the oldest.
const EVENTS_CAPACITY: usize = 256;

/// A supervised, self-healing codex app-server with one thread per caller
/// key: the shape of a service that must keep serving when codex dies.
///
/// * codex starts on first use, and again on the first use after it died:
///   one restart at a time (concurrent callers wait on the same one), the
///   first immediate, later ones backed off exponentially with jitter; after
///   too many failed starts the breaker fails calls at once with
///   [`Error::Unavailable`] (see [`RestartPolicy`]).
/// * Turns open when codex dies end at once with
///   [`TurnOutcome::ServerDied`](crate::TurnOutcome::ServerDied) and are
///   never run again. A `turn/start` that reached an already dead codex,
///   with no event of the turn seen, is sent once more to the restarted one.
/// * A key's thread is resumed (`thread/resume`) on its first use in a new
///   codex, so the model sees the earlier conversation. If another process
///   holds it, it is forked (`thread/fork`); if codex does not know it (a
///   thread is saved only once a turn completed), the key gets a new thread.
///   Each is a [`SessionEvent`], a `tracing` event and a counter.
/// * Turns of one key run one at a time; turns of different keys run
///   concurrently in the same codex.
///
/// Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), codex_adapter::Error> {
/// use codex_adapter::{AppServer, Sessions, ThreadOptions};
///
/// let sessions = Sessions::builder(AppServer::builder())
///     .thread_options(ThreadOptions::default().cwd("/srv/work"))
///     .build();
/// let reply = sessions.run("workspace-42", "What changed?").await?;
/// println!("{}", reply.outcome);
/// println!("{:?}", sessions.status());
/// sessions.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("health", &self.status())
            .finish_non_exhaustive()
    }
}

struct Shared {
    builder: AppServerBuilder,
    thread_options: ThreadOptions,
    store: Arc<dyn SessionStore>,
    policy: RestartPolicy,
    state: Mutex<State>,
    /// Held by the one caller that (re)starts codex; the others wait here
    /// and then use what it started (or fail with what it met).
    restart: tokio::sync::Mutex<()>,
    /// Key → its thread in the current codex. The async lock makes
    /// concurrent first uses of a key attach once.
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Attached>>>>>,
    counters: Counters,
    events: broadcast::Sender<SessionEvent>,
    /// Dropped with the last [`Sessions`] handle: tells the death watchers
    /// to let go of their codex (which is then killed with its last handle).
    gone: tokio::sync::watch::Sender<()>,
}

/// A key's thread, valid in one generation of codex.
struct Attached {
    generation: u64,
    thread: Thread,
}

/// One run of codex.
struct Generation {
    number: u64,
    server: AppServer,
    started: Instant,
    since: SystemTime,
}

#[derive(Default)]
struct State {
    current: Option<Generation>,
    /// Generations started so far.
    generations: u64,
    /// Start attempts so far (each caller waiting on a restart compares it
    /// to see whether one happened meanwhile).
    attempts: u64,
    /// Starts in the current run of restarts (and failed first starts);
    /// 0 when the next start is immediate.
    streak: u32,
    last_attempt: Option<Instant>,
    /// The error of the last start, when it failed.
    last_error: Option<Error>,
    /// Why the last codex died or the last start failed.
    last_cause: Option<String>,
    /// Recent failed starts, within the policy's window.
    failures: VecDeque<Instant>,
    /// The breaker is open until then.
    open_until: Option<(Instant, SystemTime)>,
    closed: bool,
}

impl State {
    fn live(&self) -> Option<(AppServer, u64)> {
        self.current
            .as_ref()
            .filter(|g| g.server.death().is_none())
            .map(|g| (g.server.clone(), g.number))
    }

    fn breaker(&self) -> Option<Error> {
        let (until, at) = self.open_until?;
        (Instant::now() < until).then(|| Error::Unavailable {
            cause: self.last_cause.clone().unwrap_or_default(),
            retry_at: at,
        })
    }
}

#[derive(Default)]
struct Counters {
    restarts: AtomicU64,
    resumes: AtomicU64,
    forks: AtomicU64,
    replacements: AtomicU64,
    overload_retries: AtomicU64,
    turn_retries: AtomicU64,
    start_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Sessions {
    /// Sessions whose codex is started by `server`. Lazy: nothing is
    /// spawned until the first call that needs codex.
    pub fn builder(server: AppServerBuilder) -> SessionsBuilder {
        SessionsBuilder {
            server,
            thread_options: ThreadOptions::default(),
            store: None,
            policy: RestartPolicy::default(),
        }
    }

    /// Starts a turn on `key`'s thread: a new key gets a thread with the
    /// builder's [`ThreadOptions`]; a known one continues its thread,
    /// resumed first if codex restarted since its last use. Waits while
    /// another turn of the key runs.
    ///
    /// # Errors
    /// [`Error::Unavailable`] at once while the breaker is open; the error
    /// of a failed start of codex; [`Error::Store`]; what codex answered.
    ///
    /// # Cancel safety
    /// Dropping the future before `turn/start` was sent does nothing (a
    /// restart or resume under way is finished by the next caller); after,
    /// the turn is interrupted as soon as codex names it.
    pub async fn start_turn(
        &self,
        key: &str,
        input: impl Into<TurnInput>,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        let thread_options = self.inner.thread_options.clone();
        self.start_turn_with_thread(key, thread_options, input, options)
            .await
    }

    /// Like [`start_turn`](Self::start_turn), but a new key's thread gets
    /// `thread_options` instead of the builder's.
    ///
    /// # Cancel safety
    /// As for [`start_turn`](Self::start_turn).
    pub async fn start_turn_with_thread(
        &self,
        key: &str,
        thread_options: ThreadOptions,
        input: impl Into<TurnInput>,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        let input = input.into();
        let mut resent = false;
        let mut overloads = 0;
        loop {
            let started = match self.attach(key, &thread_options).await {
                Ok(thread) => Turn::start_checked(&thread, input.clone(), options.clone()).await,
                Err(failure) => Err(failure),
            };
            match started {
                Ok(turn) => return Ok(turn),
                Err(StartFailure {
                    error: Error::ServerDied(cause),
                    unseen: true,
                }) if !resent => {
                    resent = true;
                    bump(&self.inner.counters.turn_retries);
                    tracing::info!(key, %cause, "turn/start reached a dead codex; sending it to a new one");
                    self.emit(SessionEvent::TurnRetried {
                        key: key.to_owned(),
                        cause: cause.to_string(),
                    });
                }
                Err(StartFailure {
                    error: Error::Overloaded { .. },
                    ..
                }) if overloads < self.inner.policy.overload_retries => {
                    overloads += 1;
                    let after = jittered(
                        self.inner
                            .policy
                            .overload_backoff
                            .saturating_mul(1 << (overloads - 1).min(16))
                            .min(self.inner.policy.max_backoff),
                        self.inner.policy.jitter,
                    );
                    bump(&self.inner.counters.overload_retries);
                    tracing::info!(
                        key,
                        attempt = overloads,
                        ?after,
                        "codex is overloaded; retrying"
                    );
                    self.emit(SessionEvent::OverloadRetry {
                        key: key.to_owned(),
                        attempt: overloads,
                        after,
                    });
                    tokio::time::sleep(after).await;
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// Runs a whole turn on `key`'s thread and collects it.
    ///
    /// # Cancel safety
    /// Dropping the future interrupts the turn.
    pub async fn run(&self, key: &str, input: impl Into<TurnInput>) -> Result<TurnSummary, Error> {
        Ok(self
            .start_turn(key, input, TurnOptions::default())
            .await?
            .collect_summary()
            .await)
    }

    /// `key`'s thread in the running codex: started, or resumed, now if
    /// needed (with the builder's [`ThreadOptions`] for a new key).
    ///
    /// # Cancel safety
    /// Dropping the future leaves the key as it was, or attached.
    pub async fn thread(&self, key: &str) -> Result<Thread, Error> {
        let options = self.inner.thread_options.clone();
        self.attach(key, &options).await.map_err(|f| f.error)
    }

    /// Forgets `key` (codex keeps its thread); its next use starts a new
    /// thread.
    ///
    /// # Cancel safety
    /// Dropping the future may leave the key in the store.
    pub async fn forget(&self, key: &str) -> Result<(), Error> {
        self.inner.keys.lock().expect("keys").remove(key);
        self.inner.store.remove(key).await.map_err(store_error)
    }

    /// Health right now.
    pub fn status(&self) -> Health {
        let state = self.inner.state.lock().expect("state");
        if state.closed {
            return Health::Closed;
        }
        if let Some(Error::Unavailable { cause, retry_at }) = state.breaker() {
            return Health::Unavailable {
                cause,
                until: retry_at,
            };
        }
        match (&state.current, state.live()) {
            (Some(g), Some(_)) => Health::Up {
                pid: g.server.pid(),
                since: g.since,
                restarts: self.inner.counters.restarts.load(Ordering::Relaxed),
            },
            (Some(g), None) => Health::Restarting {
                attempt: state.streak + 1,
                last_cause: g.server.death().map(|r| r.to_string()).unwrap_or_default(),
            },
            (None, _) if state.attempts == 0 => Health::Starting,
            (None, _) => Health::Restarting {
                attempt: state.streak + 1,
                last_cause: state.last_cause.clone().unwrap_or_default(),
            },
        }
    }

    /// Counters since construction.
    pub fn counters(&self) -> SessionCounters {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SessionCounters {
            restarts: get(&c.restarts),
            resumes: get(&c.resumes),
            forks: get(&c.forks),
            replacements: get(&c.replacements),
            overload_retries: get(&c.overload_retries),
            turn_retries: get(&c.turn_retries),
            start_failures: get(&c.start_failures),
        }
    }

    /// Every healing event from now on.
    pub fn events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// The running codex, if any (for its pid, or calls this crate does not
    /// wrap). Starts nothing.
    pub fn server(&self) -> Option<AppServer> {
        self.inner
            .state
            .lock()
            .expect("state")
            .live()
            .map(|(s, _)| s)
    }

    /// Ends codex (stdin closed, then SIGTERM, then SIGKILL) and what it
    /// left in its process group; open turns end with
    /// [`TurnOutcome::ServerDied`](crate::TurnOutcome::ServerDied) and later
    /// calls fail with [`Error::Closed`].
    ///
    /// # Cancel safety
    /// Dropping the future stops waiting; later calls fail all the same,
    /// and codex is killed when its last handle is dropped.
    pub async fn close(&self) {
        let current = {
            let mut state = self.inner.state.lock().expect("state");
            state.closed = true;
            state.current.take()
        };
        self.inner.keys.lock().expect("keys").clear();
        if let Some(g) = current {
            g.server.close().await;
        }
    }

    fn emit(&self, event: SessionEvent) {
        let _ = self.inner.events.send(event);
    }

    /// The running codex, started (or restarted) now if needed.
    async fn server_now(&self) -> Result<(AppServer, u64), Error> {
        let seen_attempts = {
            let state = self.inner.state.lock().expect("state");
            if state.closed {
                return Err(Error::Closed);
            }
            if let Some(live) = state.live() {
                return Ok(live);
            }
            if let Some(open) = state.breaker() {
                return Err(open);
            }
            state.attempts
        };
        let _restarting = self.inner.restart.lock().await;
        let (old, wait, attempt) = {
            let mut state = self.inner.state.lock().expect("state");
            if state.closed {
                return Err(Error::Closed);
            }
            if let Some(live) = state.live() {
                return Ok(live);
            }
            if state.attempts != seen_attempts {
                // A start happened while this caller waited, and failed:
                // share its outcome instead of starting another at once.
                if let Some(e) = state.breaker().or_else(|| state.last_error.clone()) {
                    return Err(e);
                }
            }
            if let Some(open) = state.breaker() {
                return Err(open);
            }
            let old = state.current.take();
            if let Some(g) = &old {
                // A codex that ran long enough starts a new run of restarts.
                if g.started.elapsed() >= self.inner.policy.stable_after {
                    state.streak = 0;
                }
                state.last_cause = g.server.death().map(|r| r.to_string());
            }
            let delay = self.inner.policy.delay(state.streak);
            let wait = state
                .last_attempt
                .map(|at| at + delay)
                .filter(|at| *at > Instant::now());
            (old, wait, state.streak + 1)
        };
        if let Some(old) = old {
            // It is dead, but may have left its process group behind (or
            // still be exiting): make sure none of it holds a thread.
            old.server.close().await;
        }
        if let Some(at) = wait {
            tracing::debug!(attempt, "codex restart backs off");
            tokio::time::sleep_until(at).await;
        }
        let spawned = self.inner.builder.clone().spawn().await;
        match self.record_start(spawned, attempt) {
            Started::Up(server, number) => {
                self.watch(server.clone());
                Ok((server, number))
            }
            Started::Failed(error) => Err(error),
            Started::Closed(server) => {
                server.close().await;
                Err(Error::Closed)
            }
        }
    }

    /// Books the outcome of a start of codex.
    fn record_start(&self, spawned: Result<AppServer, Error>, attempt: u32) -> Started {
        let mut state = self.inner.state.lock().expect("state");
        state.attempts += 1;
        state.last_attempt = Some(Instant::now());
        match spawned {
            Ok(server) if state.closed => Started::Closed(server),
            Ok(server) => {
                let restart = state.generations > 0;
                state.generations += 1;
                // The first start is not a restart: the first restart after
                // it is immediate.
                state.streak = if restart { state.streak + 1 } else { 0 };
                state.failures.clear();
                state.open_until = None;
                state.last_error = None;
                let number = state.generations;
                let pid = server.pid();
                state.current = Some(Generation {
                    number,
                    server: server.clone(),
                    started: Instant::now(),
                    since: SystemTime::now(),
                });
                drop(state);
                if restart {
                    bump(&self.inner.counters.restarts);
                    tracing::info!(?pid, attempt, "codex restarted");
                    self.emit(SessionEvent::Restarted { pid, attempt });
                } else {
                    tracing::debug!(?pid, "codex started");
                }
                Started::Up(server, number)
            }
            Err(error) => {
                let now = Instant::now();
                // The breaker says when the next start comes; a death's own
                // advice ("start a new one") would contradict it.
                let cause = match error.close_reason() {
                    Some(reason) => format!("codex app-server died: {reason}"),
                    None => error.to_string(),
                };
                state.streak += 1;
                state.failures.push_back(now);
                let window = self.inner.policy.failure_window;
                while state
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > window)
                {
                    state.failures.pop_front();
                }
                state.last_cause = Some(cause.clone());
                state.last_error = Some(error.clone());
                bump(&self.inner.counters.start_failures);
                tracing::warn!(attempt, %cause, "codex failed to start");
                self.emit(SessionEvent::StartFailed {
                    attempt,
                    cause: cause.clone(),
                });
                if state.failures.len() >= self.inner.policy.max_failures as usize {
                    let open_for = self.inner.policy.open_for;
                    let until = SystemTime::now() + open_for;
                    state.open_until = Some((now + open_for, until));
                    tracing::error!(%cause, ?open_for, "codex keeps failing to start; breaker open");
                    self.emit(SessionEvent::BreakerOpened { cause, until });
                }
                Started::Failed(error)
            }
        }
    }

    /// Reports the death of `server` when it happens (while these sessions
    /// exist).
    fn watch(&self, server: AppServer) {
        let weak = Arc::downgrade(&self.inner);
        let mut gone = self.inner.gone.subscribe();
        tokio::spawn(async move {
            let cause = tokio::select! {
                cause = server.died() => cause.to_string(),
                _ = gone.changed() => return,
            };
            let Some(inner) = weak.upgrade() else { return };
            if inner.state.lock().expect("state").closed {
                return;
            }
            let pid = server.pid();
            tracing::warn!(?pid, %cause, "codex died");
            let _ = inner.events.send(SessionEvent::Died { pid, cause });
        });
    }

    /// `key`'s thread in the running codex, attached now if needed.
    async fn attach(&self, key: &str, new_options: &ThreadOptions) -> Result<Thread, StartFailure> {
        let slot = self
            .inner
            .keys
            .lock()
            .expect("keys")
            .entry(key.to_owned())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        // A failed start is not a death to retry past: it counts toward the
        // breaker, once per call.
        let (server, generation) = self.server_now().await?;
        if let Some(attached) = slot.as_ref().filter(|a| a.generation == generation) {
            return Ok(attached.thread.clone());
        }
        let attached = async {
            let store = &self.inner.store;
            match store.load(key).await.map_err(store_error)? {
                None => {
                    let thread = server.start_thread(new_options.clone()).await?;
                    let record = SessionRecord::new(thread.id(), new_options.clone());
                    store.save(key, &record).await.map_err(store_error)?;
                    Ok(thread)
                }
                Some(record) => self.reattach(key, &server, record).await,
            }
        };
        let thread = attached.await.map_err(|error| StartFailure {
            // codex died while the thread was being attached: no
            // turn/start was sent, so none of the turn ran.
            unseen: matches!(error, Error::ServerDied(_)),
            error,
        })?;
        *slot = Some(Attached {
            generation,
            thread: thread.clone(),
        });
        Ok(thread)
    }

    /// Resumes `record`'s thread in `server`; forks it when another process
    /// holds it; replaces it when codex cannot resume it.
    async fn reattach(
        &self,
        key: &str,
        server: &AppServer,
        record: SessionRecord,
    ) -> Result<Thread, Error> {
        let old = record.thread_id.clone();
        let options = record.options.clone();
        let mut refusal = match server.resume_thread(&old, options.clone()).await {
            Ok(thread) => return self.resumed(key, record, thread).await,
            Err(Error::Refused { message, .. }) => message,
            Err(e) => return Err(e),
        };
        if is_held_elsewhere(&refusal) {
            // Our previous codex was closed before this one started; give
            // its lock a moment to go, then try once more.
            tracing::info!(key, thread_id = %old, %refusal, "thread held by another process; retrying resume once");
            tokio::time::sleep(HELD_RETRY_DELAY).await;
            refusal = match server.resume_thread(&old, options.clone()).await {
                Ok(thread) => return self.resumed(key, record, thread).await,
                Err(Error::Refused { message, .. }) => message,
                Err(e) => return Err(e),
            };
            if is_held_elsewhere(&refusal) {
                match server.fork_thread(&old, options.clone()).await {
                    Ok(thread) => {
                        bump(&self.inner.counters.forks);
                        tracing::warn!(key, from = %old, thread_id = thread.id(), "thread held elsewhere; continuing in a fork");
                        self.save(key, thread.id(), &options).await?;
                        self.emit(SessionEvent::Forked {
                            key: key.to_owned(),
                            from: old,
                            thread_id: thread.id().to_owned(),
                        });
                        return Ok(thread);
                    }
                    Err(Error::Refused { message, .. }) => {
                        refusal = format!("{refusal}; thread/fork: {message}");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let thread = server.start_thread(options.clone()).await?;
        bump(&self.inner.counters.replacements);
        tracing::warn!(key, %old, thread_id = thread.id(), reason = %refusal, "thread could not be resumed; replaced by a new one");
        self.save(key, thread.id(), &options).await?;
        self.emit(SessionEvent::Replaced {
            key: key.to_owned(),
            old,
            thread_id: thread.id().to_owned(),
            reason: refusal,
        });
        Ok(thread)
    }

    async fn resumed(
        &self,
        key: &str,
        record: SessionRecord,
        thread: Thread,
    ) -> Result<Thread, Error> {
        if thread.id() != record.thread_id {
            self.save(key, thread.id(), &record.options).await?;
        }
        bump(&self.inner.counters.resumes);
        tracing::info!(key, thread_id = thread.id(), "thread resumed");
        self.emit(SessionEvent::Resumed {
            key: key.to_owned(),
            thread_id: thread.id().to_owned(),
        });
        Ok(thread)
    }

    async fn save(&self, key: &str, thread_id: &str, options: &ThreadOptions) -> Result<(), Error> {
        let record = SessionRecord::new(thread_id, options.clone());
        self.inner
            .store
            .save(key, &record)
            .await
            .map_err(store_error)
    }
}

/// What a start of codex came to.
enum Started {
    Up(AppServer, u64),
    Failed(Error),
    /// It started, but [`Sessions::close`] was called meanwhile.
    Closed(AppServer),
}

/// How long to let a dead codex's hold on a thread go before resuming again.
const HELD_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Whether codex refused `thread/resume` because another process holds the
/// thread (newer codex has a per-thread writer lock).
/// Seen on codex 0.169.0: "thread … already has an active writer".
fn is_held_elsewhere(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("active writer") || m.contains("lock")
}

fn store_error(e: StoreError) -> Error {
    Error::Store(Arc::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service spawns these futures onto a multi-threaded runtime.
    #[test]
    fn sessions_and_their_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<Sessions>();
        let sessions = Sessions::builder(AppServer::builder()).build();
        send(&sessions.start_turn("k", "hi", TurnOptions::default()));
        send(&sessions.run("k", "hi"));
        send(&sessions.thread("k"));
        send(&sessions.close());
    }

    #[test]
    fn restarts_back_off_from_immediate_to_the_cap() {
        let p = RestartPolicy::default().jitter(0.0);
        let delays: Vec<_> = (0..10).map(|s| p.delay(s)).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert_eq!(delays[1], Duration::from_millis(250));
        assert_eq!(delays[2], Duration::from_millis(500));
        assert_eq!(delays[3], Duration::from_secs(1));
        assert_eq!(delays[9], Duration::from_secs(30));
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let p = RestartPolicy::default();
        for _ in 0..100 {
            let d = p.delay(2);
            assert!(
                d >= Duration::from_millis(400) && d <= Duration::from_millis(600),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let record = SessionRecord::new(
            "thr_1",
            ThreadOptions::default()
                .cwd("/w")
                .approval_policy(crate::AskForApproval::Never),
        );
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(
            json,
            r#"{"thread_id":"thr_1","options":{"cwd":"/w","approvalPolicy":"never"}}"#
        );
        assert_eq!(
            serde_json::from_str::<SessionRecord>(&json).unwrap(),
            record
        );
    }

    #[tokio::test]
    async fn a_missing_codex_fails_the_call_and_counts_toward_the_breaker() {
        let sessions =
            Sessions::builder(AppServer::builder().codex("/nonexistent/codex-for-a-test"))
                .restart_policy(
                    RestartPolicy::default()
                        .backoff(Duration::from_millis(1), Duration::from_millis(2))
                        .breaker(2, Duration::from_secs(60), Duration::from_secs(60)),
                )
                .build();
        assert_eq!(sessions.status(), Health::Starting);
        assert!(sessions.run("k", "hi").await.is_err());
        assert!(matches!(
            sessions.status(),
            Health::Restarting { attempt: 2, .. }
        ));
        assert!(sessions.run("k", "hi").await.is_err());
        let started = std::time::Instant::now();
        let err = sessions.run("k", "hi").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(50));
        let Error::Unavailable { cause, .. } = &err else {
            panic!("{err}");
        };
        assert!(cause.contains("codex-for-a-test"), "{cause}");
        assert!(
            err.to_string().contains("next start will be tried in"),
            "{err}"
        );
        assert!(matches!(sessions.status(), Health::Unavailable { .. }));
        assert_eq!(sessions.counters().start_failures, 2);
    }
}
