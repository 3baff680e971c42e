//! Example programs and command-line tools for `jsonrpc-stdio` and
//! `codex-adapter`; see `src/bin/`. This library target exists so that the
//! README's code is compiled and tested with both crates in reach.

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
