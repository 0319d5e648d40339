//! procnet: which processes on this machine talk to which, over TCP and UDP.
//!
//! Data flows one way: [`collect`] (the only OS code) produces a
//! [`snapshot::Snapshot`]; [`graph`] turns it into the graph and connections
//! views with pure functions; the binary prints them or serves them.

pub mod collect;
pub mod fleet;
pub mod graph;
pub mod history;
pub mod monitor;
pub mod names;
pub mod rules;
pub mod serve;
pub mod snapshot;
pub mod table;
pub mod user_file;
