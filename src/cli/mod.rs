//! The `troupe` command line: one file per subcommand. Everything but `serve` is a
//! client of a running broker's REST API.

pub mod acls;
pub mod client;
pub mod cluster;
pub mod config_docs;
pub mod consume;
pub mod groups;
pub mod produce;
pub mod serve;
pub mod topics;
pub mod users;
