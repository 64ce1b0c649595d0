//! The sharing protocol.
//!
//! A learner's [`Ledger`] keeps its own counts apart from everyone else's and
//! decides, by a [`ShareRule`], which rows to send. The [`Aggregator`] keeps
//! every learner's latest counts and answers each learner with the sum of the
//! *others'*, for the rows its [`Downlink`] finds news; a [`Sharing`] names
//! both directions. Messages carry full counts, never deltas, and a sequence
//! number, so a duplicated or reordered message cannot corrupt the global
//! estimate; on the wire the counts take their shortest lossless form
//! ([`compact_counts`]).

mod aggregator;
mod family;
mod ledger;
mod message;
mod rule;
mod schedule;
mod traffic;

pub use aggregator::Aggregator;
pub use family::{Dirichlet, Divergence, Family};
pub use ledger::Ledger;
pub use message::{OthersUpdate, Recovery, RowBatch, ShareMessage, compact_counts, encoded_len};
pub use rule::{Downlink, SHARE_FORMS, ShareRule, Sharing};
pub use schedule::{Due, Schedule};
pub use traffic::{Traffic, WireTraffic};
