//! The adapter against a fake app-server that is a real child process:
//! this test binary, re-run with `CODEX_ADAPTER_FAKE_APP_SERVER=1`, is the
//! fake ([`fake`]). Its stdout is the JSON-RPC channel, where libtest would
//! print, so the binary has its own `main` (`harness = false`) and
//! libtest-mimic gives the test side libtest's command line.
//!
//! `app_server`: turns, watchdogs, approvals and deaths on one app-server.
//! `sessions`: the healing [`Sessions`](codex_adapter::Sessions) against the
//! faults a real codex will not show on demand.

mod app_server;
mod fake;
mod sessions;
#[path = "../support/mod.rs"]
mod support;

use std::future::Future;

use codex_adapter::{AppServer, AppServerBuilder};
use libtest_mimic::{Arguments, Trial};

/// Set (to `1`) in the environment of the child that is to be the fake.
const FAKE_APP_SERVER: &str = "CODEX_ADAPTER_FAKE_APP_SERVER";

fn main() {
    if std::env::var_os(FAKE_APP_SERVER).is_some_and(|v| v == "1") {
        fake::serve(std::env::args().skip(1));
        return;
    }
    let args = Arguments::from_args();
    let mut trials = app_server::trials();
    trials.extend(sessions::trials());
    libtest_mimic::run(&args, trials).exit();
}

/// An app-server builder that starts the fake with `args` (see [`fake`]).
fn fake_server(args: &[&str]) -> AppServerBuilder {
    let me = std::env::current_exe().expect("the test binary's path");
    AppServer::builder()
        .codex(me)
        .env(FAKE_APP_SERVER, "1")
        .args(args.iter().copied())
}

/// An async test as a trial named `module::test`, on a runtime of its own
/// as `#[tokio::test]` gives it.
fn trial<F: Future<Output = ()> + 'static>(module: &str, name: &str, test: fn() -> F) -> Trial {
    Trial::test(format!("{module}::{name}"), move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(test());
        Ok(())
    })
}

/// The trials of a module's async tests, named after them.
macro_rules! trials {
    ($module:literal: $($test:ident),+ $(,)?) => {
        vec![$(crate::trial($module, stringify!($test), $test)),+]
    };
}
use trials;
