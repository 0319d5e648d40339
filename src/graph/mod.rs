//! Pure functions from a [`Snapshot`](crate::snapshot::Snapshot) to the
//! published views: pairing of local connections, client→server direction,
//! typing rules, friendly labels, container labels, services (workers under
//! their master) and diffs between samples.
//! No I/O here.

pub mod build;
pub mod containers;
pub mod diff;
pub mod direction;
pub mod fleet;
pub mod labels;
pub mod model;
pub mod pairing;
pub mod ports;
pub mod query;
pub mod redact;
pub mod services;
pub mod socket_deltas;
pub mod traffic;

pub use build::{build_connections, build_graph, ContainerLabels, GraphOptions, Inputs};
