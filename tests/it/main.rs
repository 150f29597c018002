//! Integration tests of the real `troupe` binary: each test starts brokers as child
//! processes on ephemeral ports with temp data directories and drives them over HTTP
//! and through the CLI.

mod broker;
mod cli;
mod corruption;
mod dashboard;
mod errors;
mod groups;
mod quickstart;
mod restart;
mod retention;
mod ws;
