//! JSON-RPC 2.0 over a child process's stdio (work in progress).
pub mod framing;
pub mod message;
