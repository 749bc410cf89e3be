//! The `sbtg` binary end to end, in one test binary: commands on files made in the
//! tests, bad input with its exit code and fix, and reliability (manifests, settings
//! files, checkpoints, staged output).

mod bad_input;
mod commands;
mod first_use;
mod reliability;
mod states;
mod support;
