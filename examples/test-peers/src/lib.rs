//! Peers the tests and benchmarks run against, and the benchmarks themselves;
//! see `src/bin/`. Never published. This library target exists so that the
//! root README's code is compiled and tested with both library crates in
//! reach.

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
