//! Drive `codex app-server` (work in progress).
pub mod approval;
pub mod decode;
pub mod event;
pub mod mock_model;
