//! [`Builder`]: a connection's settings, and starting one — over a child
//! process ([`Builder::spawn`]) or any byte streams ([`Builder::connect`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle as Runtime;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::call::CancelNotification;
use crate::client::Client;
use crate::connection::Connection;
use crate::driver;
use crate::error::Error;
use crate::framing::{Framing, DEFAULT_MAX_FRAME_LENGTH};
use crate::process::{ServerCommand, ServerProcess, Spawned};
use crate::stderr::StderrTail;

/// The default bound of the outgoing queue: 16 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// Connection settings. Start from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) framing: Framing,
    pub(crate) max_frame_length: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) cancel_notification: Option<CancelNotification>,
    pub(crate) subscription_capacity: usize,
    pub(crate) request_queue_capacity: usize,
    pub(crate) stderr_tail_bytes: usize,
    pub(crate) stderr_max_line: usize,
    pub(crate) exit_grace: Duration,
    pub(crate) stdin_close_grace: Duration,
    pub(crate) sigterm_grace: Duration,
    pub(crate) max_queued_bytes: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            framing: Framing::default(),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            request_timeout: Some(Duration::from_secs(60)),
            cancel_notification: None,
            subscription_capacity: 4096,
            request_queue_capacity: 256,
            stderr_tail_bytes: 64 * 1024,
            stderr_max_line: 16 * 1024,
            exit_grace: Duration::from_millis(100),
            stdin_close_grace: Duration::from_secs(2),
            sigterm_grace: Duration::from_secs(3),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

impl Builder {
    /// How messages are framed on the wire (default: one JSON per line).
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// The longest frame accepted from the server (default 64 MiB). Longer
    /// frames are discarded as they stream in, never buffered whole; a
    /// response among them fails its caller at once with
    /// [`Error::ResponseTooLarge`] (its id is read from its first or last
    /// bytes).
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max_frame_length = bytes;
        self
    }

    /// The default timeout of every request (default 60 s); `None` waits for
    /// as long as the server lives. A call can override it.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A notification to send when a request is abandoned (default: none).
    pub fn cancel_notification(mut self, cancel: CancelNotification) -> Self {
        self.cancel_notification = Some(cancel);
        self
    }

    /// How many notifications a subscriber may fall behind before it starts
    /// losing them (default 4096). Memory per subscriber is bounded by this.
    pub fn subscription_capacity(mut self, n: usize) -> Self {
        self.subscription_capacity = n;
        self
    }

    /// How many unanswered server→client requests may queue per handler
    /// before more are refused with an error reply (default 256).
    pub fn request_queue_capacity(mut self, n: usize) -> Self {
        self.request_queue_capacity = n;
        self
    }

    /// How much of the server's stderr to keep for death reports (default
    /// 64 KiB).
    pub fn stderr_tail_bytes(mut self, bytes: usize) -> Self {
        self.stderr_tail_bytes = bytes;
        self
    }

    /// How long to wait, when stdout ends, for the exit status (and, when the
    /// process exits, for stdout and stderr to drain) before declaring the
    /// cause (default 100 ms). Bounds how late a death can be reported.
    pub fn exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }

    /// How many bytes of outgoing messages may wait for the server to read
    /// its stdin (default 16 MiB, [`DEFAULT_MAX_QUEUED_BYTES`]). When they do
    /// not fit, [`Client::request`] waits for room (within its timeout) and
    /// [`Client::notify`] fails at once with [`Error::QueueFull`]; nothing is
    /// dropped. One message larger than the limit is sent alone, once the
    /// queue is empty.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// [`Client::close`]: how long to wait after closing stdin before SIGTERM,
    /// and after SIGTERM before SIGKILL (defaults 2 s and 3 s).
    pub fn close_grace(mut self, after_stdin: Duration, after_sigterm: Duration) -> Self {
        self.stdin_close_grace = after_stdin;
        self.sigterm_grace = after_sigterm;
        self
    }

    /// Starts `command` and connects to its stdio.
    ///
    /// Must be called inside a tokio runtime with IO and timers enabled
    /// (`enable_all`); the connection's tasks and timers run on it, whatever
    /// runtime (or executor) later awaits its calls. Outside one, or on one
    /// without IO or timers, it returns [`Error::Runtime`] and starts
    /// nothing. Any other failure is an [`Error::Spawn`] that names the
    /// culprit (working directory, program and `PATH`, permission); no
    /// process is left behind.
    pub fn spawn(self, command: ServerCommand) -> Result<Client, Error> {
        let runtime = runtime_with_io_and_timers()?;
        let Spawned {
            process,
            stdin,
            stdout,
            stderr,
        } = command.spawn()?;
        let pid = process.pid();
        let pipes = (|| {
            Ok::<_, std::io::Error>((
                tokio::process::ChildStdin::from_std(stdin)?,
                tokio::process::ChildStdout::from_std(stdout)?,
                tokio::process::ChildStderr::from_std(stderr)?,
            ))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                process.release_in_background();
                return Err(Error::Spawn {
                    program: command.program().to_string_lossy().into_owned(),
                    problem: format!("could not register its pipes with the runtime: {e}"),
                    source: Arc::new(e),
                });
            }
        };
        let tail = Arc::new(Mutex::new(StderrTail::new(self.stderr_tail_bytes)));
        let span = tracing::debug_span!("jsonrpc", pid);
        let stderr_task = runtime.spawn(
            crate::stderr::drain(stderr, tail.clone(), self.stderr_max_line, Some(pid))
                .instrument(span.clone()),
        );
        let watch = driver::Process {
            exit: process.exit(),
            stderr_task,
            tail,
        };
        Ok(self.start(stdout, stdin, Some((process, watch)), runtime, true, span))
    }

    /// Connects over any byte streams: a socket, `tokio::io::duplex`, the
    /// stdio of a process started elsewhere. Without a process, the end of
    /// `reader` is the end of the connection.
    ///
    /// # Panics
    /// Outside a tokio runtime. Request timeouts need the runtime's timers:
    /// on a runtime without them a request with a timeout fails with
    /// [`Error::Runtime`] before anything is sent (one without a timeout
    /// goes).
    pub fn connect<R, W>(self, reader: R, writer: W) -> Client
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let span = tracing::debug_span!("jsonrpc");
        self.start(reader, writer, None, Runtime::current(), has_timers(), span)
    }

    fn start<R, W>(
        self,
        reader: R,
        writer: W,
        process: Option<(ServerProcess, driver::Process)>,
        runtime: Runtime,
        timers: bool,
        span: tracing::Span,
    ) -> Client
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let (process, watch) = process.unzip();
        let connection = Arc::new(Connection::new(self, process, runtime.clone(), timers));
        let (write_failed_tx, write_failed_rx) = oneshot::channel();
        connection
            .outbox
            .attach(writer, connection.config.framing, write_failed_tx);
        runtime.spawn(driver::write(connection.clone()).instrument(span.clone()));
        if connection.has_timers() {
            runtime.spawn(driver::sweep_deadlines(connection.clone()).instrument(span.clone()));
        }
        runtime.spawn(
            driver::read(connection.clone(), reader, watch, write_failed_rx).instrument(span),
        );
        Client::new(connection)
    }
}

/// The current runtime, if it has what a connection needs.
///
/// tokio has no way to ask whether a runtime's IO or time driver is
/// enabled; using a disabled one panics. So the two are probed here, before
/// any process starts, and the panic becomes an error. (The panic hook still
/// prints tokio's message, which says exactly what to enable.)
fn runtime_with_io_and_timers() -> Result<Runtime, Error> {
    let runtime = Runtime::try_current().map_err(|_| Error::Runtime {
        problem: "Builder::spawn was called outside of one",
    })?;
    if !has_timers() {
        return Err(Error::Runtime {
            problem: "this runtime has no timers (build it with enable_all or enable_time)",
        });
    }
    let io = std::panic::catch_unwind(|| drop(tokio::net::UnixStream::pair()));
    if io.is_err() {
        return Err(Error::Runtime {
            problem: "this runtime has no IO driver (build it with enable_all or enable_io)",
        });
    }
    Ok(runtime)
}

/// Whether the current runtime has its time driver: a timer is made, and
/// the panic of a runtime without one caught.
fn has_timers() -> bool {
    std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}
