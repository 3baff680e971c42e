//! A program that makes itself the child subreaper and ends what its servers
//! left behind. Alone in its test binary: being a subreaper changes where
//! every orphan of this process goes.

use std::time::{Duration, Instant};

mod children;

use children::announced_pid;
use jsonrpc_stdio::process::{become_subreaper, end_orphans, reap_orphans};
use jsonrpc_stdio::{Client, Filter, ServerCommand};
use serde_json::json;

/// One test at a time: `end_orphans` in one would reap or end the orphans
/// another is watching.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

#[tokio::test]
async fn end_orphans_ends_and_reaps_what_no_client_owns_and_spares_live_servers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    become_subreaper().unwrap();
    let me = std::process::id();
    // A server whose daemon leaves it (and, we being the subreaper, comes
    // to us); it reports the daemon's pid, then serves.
    let client = Client::spawn(ServerCommand::new("sh").arg("-c").arg(
        r#"( setsid sleep 300 > /dev/null 2>&1 < /dev/null & printf '{"method":"child","params":%s}\n' $! ); read a; printf '{"id":0,"result":"alive"}\n'; cat > /dev/null"#,
    ))
    .unwrap();
    let server = client.pid().unwrap();
    let mut notes = client.subscribe(Filter::method("child"));
    let daemon = announced_pid(&mut notes).await;
    // And an orphan of our own: a child no client owns.
    let mut orphan_child = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let orphan = orphan_child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(daemon).map(|s| s.1) != Some(me) {
        assert!(Instant::now() < deadline, "the daemon never came to us");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let left = end_orphans(Duration::from_secs(2)).await;
    assert!(left.is_empty(), "still running: {left:?}");
    assert_eq!(stat(daemon), None, "the daemon is ended and reaped");
    assert_eq!(stat(orphan), None, "the orphan is ended and reaped");
    assert!(
        orphan_child.try_wait().is_err(),
        "already reaped by end_orphans"
    );
    // The live server was spared, and still answers.
    assert!(matches!(stat(server), Some((s, _)) if s != 'Z'));
    assert_eq!(
        client.request("m", json!(null)).await.unwrap(),
        json!("alive")
    );
    assert!(client.close().await.unwrap().unwrap().success());
    assert_eq!(stat(server), None);
}

#[tokio::test]
async fn reap_orphans_reaps_exited_orphans_and_leaves_live_servers_unreaped() {
    let _alone = ONE_AT_A_TIME.lock().await;
    become_subreaper().unwrap();
    let me = std::process::id();
    // A server whose background command outlives it briefly: once the
    // server has gone on, the command is re-parented to us, exits, and would
    // stay a zombie for the life of a long-running service.
    let client = Client::spawn(ServerCommand::new("sh").arg("-c").arg(
        r#"( sleep 0.2 & printf '{"method":"child","params":%s}\n' $! ); read a; printf '{"id":0,"result":"alive"}\n'; cat > /dev/null"#,
    ))
    .unwrap();
    let server = client.pid().unwrap();
    let mut notes = client.subscribe(Filter::method("child"));
    let orphan = announced_pid(&mut notes).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stat(orphan) != Some(('Z', me)) {
        assert!(
            Instant::now() < deadline,
            "the orphan never became our zombie: {:?}",
            stat(orphan)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    assert!(reap_orphans().await >= 1);
    assert_eq!(stat(orphan), None, "the zombie is reaped");
    // The live server is untouched and still answers.
    assert!(matches!(stat(server), Some((s, _)) if s != 'Z'));
    assert_eq!(
        client.request("m", json!(null)).await.unwrap(),
        json!("alive")
    );
    assert!(client.close().await.unwrap().unwrap().success());
}
