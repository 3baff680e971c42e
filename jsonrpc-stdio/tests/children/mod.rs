//! Shared by the tests that watch a server's children: the pid a server
//! announces of the process it started.

use futures::StreamExt;

/// The pid the server announced in its first `child` notification.
pub async fn announced_pid(notes: &mut jsonrpc_stdio::Subscription) -> u32 {
    let note = notes
        .next()
        .await
        .expect("subscribed")
        .expect("a notification");
    note.params().expect("a pid")
}
