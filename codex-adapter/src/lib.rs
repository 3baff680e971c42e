//! Drive `codex app-server` (see issue 3).
