//! Pure functions from a [`Snapshot`](crate::snapshot::Snapshot) to the
//! published views: pairing of local connections, client→server direction,
//! typing rules, friendly labels and diffs between samples. No I/O here.

pub mod model;
