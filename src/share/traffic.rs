use serde::{Deserialize, Serialize};

use super::message::{OthersUpdate, Recovery, ShareMessage, encoded_len};

/// Cumulative communication, both ways: messages, rows and encoded bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Share messages received by the aggregator.
    pub messages_up: u64,
    /// Rows those messages carried.
    pub rows_up: u64,
    /// Their MessagePack size in bytes.
    pub bytes_up: u64,
    /// Answers and recoveries sent to learners.
    pub messages_down: u64,
    /// Rows those carried.
    pub rows_down: u64,
    /// Their MessagePack size in bytes.
    pub bytes_down: u64,
}

impl Traffic {
    /// Counts a share message received.
    pub fn count_up(&mut self, msg: &ShareMessage) {
        self.messages_up += 1;
        self.rows_up += msg.rows.len() as u64;
        self.bytes_up += encoded_len(msg);
    }

    /// Counts a recovery sent to a rebuilt learner.
    pub fn count_recovery(&mut self, msg: &Recovery) {
        self.messages_down += 1;
        self.rows_down += (msg.own.len() + msg.others.len()) as u64;
        self.bytes_down += encoded_len(msg);
    }

    /// Counts an answer sent to a learner.
    pub fn count_down(&mut self, msg: &OthersUpdate) {
        self.messages_down += 1;
        self.rows_down += msg.rows.len() as u64;
        self.bytes_down += encoded_len(msg);
    }
}

/// Messages and payload bytes through the aggregator's door, as serialized
/// for the wire (MessagePack, before libp2p's framing and encryption):
/// what a run whose learners live in other processes sends and receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTraffic {
    /// Joins and syncs accepted.
    pub messages_in: u64,
    /// Of those, joins (a block's first, and each rejoin).
    #[serde(default)]
    pub joins: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Replies sent.
    pub messages_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Messages refused.
    pub refused: u64,
}

impl WireTraffic {
    /// Both counts summed.
    pub fn add(&mut self, other: &WireTraffic) {
        self.messages_in += other.messages_in;
        self.joins += other.joins;
        self.bytes_in += other.bytes_in;
        self.messages_out += other.messages_out;
        self.bytes_out += other.bytes_out;
        self.refused += other.refused;
    }
}
