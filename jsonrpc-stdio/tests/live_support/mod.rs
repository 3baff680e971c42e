//! Shared by the live tests: find the real servers, run an example against
//! one with every byte on the wire recorded, and check that nothing is left
//! running afterwards.

#![allow(dead_code)] // Each test binary uses a different part.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How often to check whether a child has exited: `std::process::Child`
/// has no wait with a deadline, so the tests poll `try_wait` up to one.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// Where `scripts/install-tools servers` installs the npm servers: `.tools/`
/// at the workspace root (the directory with `Cargo.lock`). Found from the
/// including crate, since `examples/jrpc` shares this file through `#[path]`.
pub fn npm() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .unwrap_or(manifest);
    root.join(".tools/npm/node_modules")
}

/// Overrides [`npm`] (e.g. to check what a missing install does).
pub const NPM_OVERRIDE: &str = "JSONRPC_STDIO_NPM_MODULES";

/// Every live run is bounded by this.
pub const RUN_LIMIT: Duration = Duration::from_secs(25);

/// A relay between the client and the real server that copies each direction
/// to a file, so tests can assert on the exact bytes exchanged. It exits with
/// the server's exit code once the server has exited and its output is
/// drained. Written in JavaScript because the servers need node anyway.
const RECORDER_JS: &str = r#"
const { spawn } = require('child_process');
const fs = require('fs');
const [sentLog, receivedLog, program, ...args] = process.argv.slice(2);
const sent = fs.openSync(sentLog, 'w');
const received = fs.openSync(receivedLog, 'w');
const server = spawn(program, args, { stdio: ['pipe', 'pipe', 'inherit'] });
server.stdin.on('error', () => {});
process.stdin.on('data', (d) => { fs.writeSync(sent, d); server.stdin.write(d); });
process.stdin.on('end', () => server.stdin.end());
server.stdout.on('data', (d) => { fs.writeSync(received, d); process.stdout.write(d); });
server.on('close', (code, signal) => {
  fs.closeSync(sent);
  fs.closeSync(received);
  process.exit(code === null ? 128 : code);
});
"#;

/// `Some(path)` when the server script and `node` are installed. Otherwise,
/// under `CI=true` the test fails (CI installs the servers, so a missing one
/// is a broken build); elsewhere it prints why it skips and returns `None`.
pub fn installed(relative: &str, what: &str) -> Option<PathBuf> {
    let npm = std::env::var_os(NPM_OVERRIDE).map_or_else(npm, PathBuf::from);
    let path = npm.join(relative);
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let problem = if !node {
        format!("`node` is not on PATH, so {what} cannot run")
    } else if !path.exists() {
        format!("{what} is not installed at {}", path.display())
    } else {
        return Some(path);
    };
    let advice = "run `scripts/install-tools servers`";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{problem}; CI=true, so this is a failure, not a skip; {advice}");
    }
    eprintln!("skipping: {problem}; {advice}");
    None
}

/// Builds `cargo build -p package <target...>` into this test's own target
/// directory and profile (nothing to do when it is fresh), and returns that
/// profile's directory. Before a test, cargo builds neither another
/// package's binaries nor, when tests are picked with `--test`, this
/// package's examples.
fn cargo_build(package: &str, target: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package])
        .args(target)
        .args(["--profile", profile, "--target-dir"])
        .arg(profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build -p {package} {target:?}: {status}"
    );
    profile_dir.to_owned()
}

/// The path of this package's example `name`, built.
pub fn example(name: &str) -> String {
    let dir = cargo_build(env!("CARGO_PKG_NAME"), &["--example", name]);
    dir.join("examples").join(name).to_str().unwrap().to_owned()
}

/// The path of binary `name` of the workspace's `package`, built.
pub fn binary(package: &str, name: &str) -> String {
    let dir = cargo_build(package, &["--bin", name]);
    dir.join(name).to_str().unwrap().to_owned()
}

/// A fresh directory for one run's wire logs, unique to this process.
pub fn scratch_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "jsonrpc-stdio-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The environment variable that marks every process of one run (the example,
/// the recorder, the server: children inherit it), so the run's leftovers can
/// be found in `/proc`.
pub const RUN_MARKER: &str = "JSONRPC_STDIO_LIVE_RUN";

/// Runs `program args`, killing it if it outlives [`RUN_LIMIT`]. Output is
/// read by threads, so a chatty child cannot block on a full pipe. `marker`
/// is put in the environment as [`RUN_MARKER`].
pub fn run_bounded(program: &str, args: &[&str], marker: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env(RUN_MARKER, marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {program}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).unwrap();
        v
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{program} {args:?} ran longer than {RUN_LIMIT:?} and was killed");
        }
        std::thread::sleep(EXIT_POLL);
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// One example run against a real server, with the wire recorded.
pub struct Recorded {
    /// The example's exit status and output.
    pub output: Output,
    /// The example's `--json` report.
    pub report: Value,
    /// Bytes the client wrote to the server.
    pub sent: Vec<u8>,
    /// Bytes the server wrote to the client.
    pub received: Vec<u8>,
    /// Processes of this run still alive after the example exited (the
    /// recorder, the server): should be none.
    pub leftovers: Vec<String>,
}

/// Runs `example --json -- node RECORDER sent received SERVER...`.
pub fn run_recorded(example: &str, name: &str, server: &[&str]) -> Recorded {
    let dir = scratch_dir(name);
    let recorder = dir.join("recorder.js");
    std::fs::write(&recorder, RECORDER_JS).unwrap();
    let sent = dir.join("sent.log");
    let received = dir.join("received.log");
    let mut args = vec![
        "--json",
        "--",
        "node",
        recorder.to_str().unwrap(),
        sent.to_str().unwrap(),
        received.to_str().unwrap(),
    ];
    args.extend_from_slice(server);
    let marker = dir.to_str().unwrap();
    let output = run_bounded(example, &args, marker);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{example} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{example} --json printed no JSON report ({e}):\n{stdout}"));
    let recorded = Recorded {
        report,
        sent: std::fs::read(&sent).unwrap(),
        received: std::fs::read(&received).unwrap(),
        leftovers: processes_marked(marker),
        output,
    };
    let _ = std::fs::remove_dir_all(&dir);
    recorded
}

/// Runs `init` once per test binary and shares its outcome. A failure is
/// kept as its panic message and re-raised in every test that asks, rather
/// than re-running a broken session once per test.
pub fn once<T>(
    cell: &'static std::sync::OnceLock<Result<Option<T>, String>>,
    init: impl FnOnce() -> Option<T> + std::panic::UnwindSafe,
) -> Option<&'static T> {
    let outcome = cell.get_or_init(|| {
        std::panic::catch_unwind(init).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the session panicked".to_owned())
        })
    });
    match outcome {
        Ok(session) => session.as_ref(),
        Err(message) => panic!("the recorded session failed: {message}"),
    }
}

/// The processes (pid: command line) whose environment holds
/// `RUN_MARKER=marker`. (Zombies read an empty environment, but a zombie
/// of an exited example is reparented and reaped by init.)
pub fn processes_marked(marker: &str) -> Vec<String> {
    let wanted = format!("{RUN_MARKER}={marker}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let marked = environ
            .split(|&b| b == 0)
            .any(|var| var == wanted.as_bytes());
        if marked {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Splits newline-delimited JSON into messages.
pub fn ndjson_messages(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| {
            serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!(
                    "not JSON on the wire ({e}): {}",
                    String::from_utf8_lossy(line)
                )
            })
        })
        .collect()
}

/// Splits `Content-Length` framed bytes into (header block, message), with a
/// parser independent of the crate's codec. Panics on anything else.
pub fn content_length_messages(mut bytes: &[u8]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
        let header = String::from_utf8(bytes[..end].to_vec()).unwrap();
        let length: usize = header
            .split("\r\n")
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no Content-Length in {header:?}"));
        let body = &bytes[end + 4..end + 4 + length];
        out.push((header, serde_json::from_slice(body).unwrap()));
        bytes = &bytes[end + 4 + length..];
    }
    out
}

/// The id of the first request in `messages` with this method that `wanted`
/// accepts.
pub fn request_id(messages: &[Value], method: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    messages
        .iter()
        .find(|m| m["method"] == method && m.get("id").is_some() && wanted(m))
        .unwrap_or_else(|| panic!("no `{method}` request on the wire"))["id"]
        .clone()
}

/// Responses (result or error) to `id` in `messages`.
pub fn responses_to<'a>(messages: &'a [Value], id: &Value) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m.get("method").is_none() && &m["id"] == id)
        .collect()
}
