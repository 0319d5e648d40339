//! History: what the machine looked like at any kept moment, and every
//! connection that closed. On by default, in memory inside a byte cap
//! (`--history-size`), optionally recorded to disk (`--record DIR`) in the
//! same compressed blocks and replayed later (`serve --from DIR`).
//!
//! - [`changes`]: what changed between two moments, the activity strip;
//! - [`frame`]: one sample as a keyframe or a delta (pure, exact inverse);
//! - [`codec`]: blocks as zstd, of binary frames (JSON lines before);
//! - [`wire`]: a frame's binary form (postcard, a block's strings once);
//! - [`store`]: the in-memory blocks inside the cap, queries by time;
//! - [`flows`]: closed connections derived from the samples;
//! - [`replay`]: answers straight from a recording (the CLI);
//! - [`record`]: segment files on disk, crash-safe (the only I/O here);
//! - [`time`]: the times and sizes the API and CLI accept.

pub mod changes;
pub mod codec;
pub mod flows;
pub mod frame;
pub mod record;
pub mod replay;
pub mod store;
pub mod time;
pub mod wire;

pub use flows::FlowRecord;
pub use frame::SampleMeta;
pub use store::{HistoryConfig, HistoryStore, OutOfRange};
