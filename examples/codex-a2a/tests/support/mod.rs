//! Shared by the codex-a2a tests: find real codex (latest) and the official
//! A2A Python client, run the built `codex-a2a` against them, and talk to
//! it over HTTP. A missing tool fails the test under `CI=true` (CI installs
//! them with `scripts/install-tools`) and skips it, saying why, elsewhere.

#![allow(dead_code)] // Each test binary uses a different part.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `Some(path)` when `path` exists; otherwise fails under CI, or prints why
/// the test skips.
fn required(path: PathBuf, what: &str, var: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let problem = format!(
        "{what} not found at {} (set {var}, or run scripts/install-tools)",
        path.display()
    );
    if ci() {
        panic!("{problem}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("skipping: {problem}");
    None
}

/// The real codex (latest) binary.
pub fn codex() -> Option<PathBuf> {
    let path = std::env::var_os("CODEX_LATEST_BIN").map(PathBuf::from).unwrap_or_else(|| {
        root().join(
            ".tools/codex-latest/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        )
    });
    required(path, "codex (latest)", "CODEX_LATEST_BIN")
}

/// The Python of the venv holding the official A2A client (a2a-sdk).
pub fn python() -> Option<PathBuf> {
    let path = std::env::var_os("A2A_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".tools/a2a-venv/bin/python"));
    required(path, "the a2a-sdk Python venv", "A2A_PYTHON")
}

static DIRS: AtomicU64 = AtomicU64::new(0);

/// A fresh scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "codex-a2a-test-{name}-{}-{nanos}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(dir.join("work")).unwrap();
    dir
}

/// A running `codex-a2a --mock-model` on a port of its own.
pub struct Agent {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    /// Its scratch directory: `state.db`, `work/` (codex's cwd), `stderr.log`.
    pub dir: PathBuf,
    codex: PathBuf,
    extra: Vec<String>,
    http: reqwest::blocking::Client,
}

impl Agent {
    /// Starts an agent in a new scratch directory, or `None` (skip) when
    /// codex is missing outside CI.
    pub fn start(name: &str, extra: &[&str]) -> Option<Agent> {
        let codex = codex()?;
        let dir = scratch(name);
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Some(Agent::spawn(dir, codex, extra))
    }

    fn spawn(dir: PathBuf, codex: PathBuf, extra: Vec<String>) -> Agent {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_codex-a2a"))
            .arg("--mock-model")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state")
            .arg(dir.join("state.db"))
            .arg("--codex")
            .arg(&codex)
            .arg("--cwd")
            .arg(dir.join("work"))
            .args(&extra)
            // codex runs commands in login shells; a login shell killed
            // mid-start-up (these tests kill codex) can leave the machine
            // profile's pyenv rehash lock behind, and every later `bash -l`
            // then stalls 60 s. An empty HOME runs no profile.
            .env("HOME", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start codex-a2a");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("codex-a2a printed no `listening on` line; stderr:\n{log}")
            });
        let addr = line
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Agent {
            child: Some(child),
            url: format!("http://{addr}/"),
            dir,
            codex,
            extra,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
        }
    }

    /// Starts a new agent on the same state (after [`kill9`](Self::kill9)
    /// or [`sigterm`](Self::sigterm)).
    pub fn restart(mut self) -> Agent {
        assert!(self.child.is_none(), "stop the agent before restarting it");
        // The scratch directory moves to the new agent (and is not removed
        // when this one is dropped).
        let dir = std::mem::take(&mut self.dir);
        Agent::spawn(dir, self.codex.clone(), self.extra.clone())
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// POSTs `body` (any bytes) to the JSON-RPC URL.
    pub fn post_raw(
        &self,
        body: impl Into<reqwest::blocking::Body>,
        token: Option<&str>,
    ) -> reqwest::blocking::Response {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().expect("POST to codex-a2a")
    }

    /// A JSON-RPC call; returns the whole answer.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self.post_raw(body.to_string(), None);
        assert_eq!(
            resp.status(),
            200,
            "{method} answered HTTP {}",
            resp.status()
        );
        resp.json().expect("a JSON answer")
    }

    /// A JSON-RPC call that must succeed; returns its result.
    pub fn call(&self, method: &str, params: Value) -> Value {
        let answer = self.rpc(method, params);
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// `SendMessage` (1.0) of `text` in `context` (`None`: a new one);
    /// returns the task.
    pub fn send(&self, text: &str, context: Option<&str>, return_immediately: bool) -> Value {
        let mut message =
            json!({"messageId": uuid(), "role": "ROLE_USER", "parts": [{"text": text}]});
        if let Some(c) = context {
            message["contextId"] = c.into();
        }
        let result = self.call(
            "SendMessage",
            json!({"message": message, "configuration": {"returnImmediately": return_immediately}}),
        );
        result["task"].clone()
    }

    /// Sends `text` in a new context and returns the task, which must be
    /// waiting for an approval.
    pub fn send_for_approval(&self, text: &str) -> Value {
        let task = self.send(text, None, false);
        assert_eq!(
            task["status"]["state"], "TASK_STATE_INPUT_REQUIRED",
            "{task}"
        );
        task
    }

    /// `GetTask` (1.0).
    pub fn get(&self, id: &str) -> Value {
        self.call("GetTask", json!({"id": id}))
    }

    /// Polls `GetTask` until the task's state is `state`.
    pub fn wait_state(&self, id: &str, state: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let task = self.get(id);
            if task["status"]["state"] == state {
                return task;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} not {state} within {within:?}: {task}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// GET `/health`.
    pub fn health(&self) -> Value {
        self.http
            .get(format!("{}health", self.url))
            .send()
            .expect("GET /health")
            .json()
            .unwrap()
    }

    /// The pid of the codex app-server the agent runs (waiting up to 20 s
    /// for one to be up).
    pub fn codex_pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = self.health();
            if let Some(pid) = health["codexPid"].as_u64() {
                return pid as u32;
            }
            assert!(Instant::now() < deadline, "no codex running: {health}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a scenario of `tests/py/a2a_client.py` with the official
    /// client; returns what it printed, or `None` (skip) without the venv.
    pub fn python(
        &self,
        scenario: &str,
        version: &str,
        args: &[&str],
        token: Option<&str>,
    ) -> Option<Value> {
        let python = python()?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/a2a_client.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .arg(scenario)
            .arg(&self.url)
            .arg(version)
            .args(args);
        if let Some(token) = token {
            cmd.env("A2A_TOKEN", token);
        }
        let out = cmd.output().expect("run the a2a-sdk client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "a2a-sdk scenario {scenario} ({version}) failed:\n{stderr}\n{stdout}\nagent log:\n{}",
            self.log()
        );
        Some(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}")))
    }

    /// The agent's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// SIGKILLs the agent. Its codex then exits on its own (its stdin
    /// closes); it is also sent SIGTERM, as a supervisor would. Nothing is
    /// SIGKILLed but the agent: a login shell codex started, killed in the
    /// middle of its profile, can leave a stale lock (pyenv's) that stalls
    /// every later `bash -l` on the machine.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let codex: Vec<u32> = descendants(child.id())
            .into_iter()
            .filter(|p| cmdline(*p).contains("app-server"))
            .collect();
        child.kill().unwrap();
        child.wait().unwrap();
        for pid in codex {
            signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }

    /// SIGTERMs the agent and waits (at most `within`) for it to exit.
    pub fn sigterm(&mut self, within: Duration) -> ExitStatus {
        self.stop(nix::sys::signal::Signal::SIGTERM, within)
    }

    /// Sends `sig` to the agent and waits (at most `within`) for it to exit.
    pub fn stop(&mut self, sig: nix::sys::signal::Signal, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), sig);
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "codex-a2a did not exit within {within:?} of {sig}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SIGTERM: the agent interrupts its turns and ends codex and what
        // codex started (gracefully first) before it exits.
        if let Some(mut child) = self.child.take() {
            signal(child.id(), nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() && !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends `sig` to one process.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// Every live descendant of `pid` (from /proc).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command (which may hold spaces) end with ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        if let Some(ppid) = fields.get(1).and_then(|f| f.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The command line of a process.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Flags that make codex ask before it runs any command, with a sandbox that
/// lets an approved command write to the work directory.
pub const ASKING: [&str; 4] = [
    "--approval-policy",
    "untrusted",
    "--sandbox",
    "danger-full-access",
];

/// `SendMessage` params that answer the question of task `task_id` with `part`
/// (`{"text": "approve"}`, `{"data": {"decision": "accept"}}`, …).
pub fn answer(task_id: &Value, part: Value) -> Value {
    json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "taskId": task_id,
                       "parts": [part]}})
}

/// A fresh id.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The text of a task's artifacts (1.0 JSON).
pub fn artifact_text(task: &Value) -> String {
    task["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["parts"].as_array().into_iter().flatten())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

/// The text of a task's status message (1.0 JSON).
pub fn status_text(task: &Value) -> String {
    task["status"]["message"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
