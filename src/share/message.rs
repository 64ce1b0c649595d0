use serde::{Deserialize, Serialize};

use crate::model::Shape;

/// Full counts of some rows, flat: row `rows[k]` has counts
/// `counts[k·outcomes .. (k+1)·outcomes]`. Two allocations per message, not
/// one per row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowBatch {
    /// Outcomes per row.
    pub outcomes: u32,
    /// The rows, in the order their counts follow.
    pub rows: Vec<u32>,
    /// `outcomes` counts per row, row after row.
    pub counts: Vec<f64>,
}

impl RowBatch {
    /// An empty batch of rows of `outcomes` outcomes.
    pub fn new(outcomes: usize) -> Self {
        Self {
            outcomes: outcomes as u32,
            rows: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Appends `row` with its counts.
    pub fn push(&mut self, row: usize, counts: &[f64]) {
        debug_assert_eq!(counts.len(), self.outcomes as usize);
        self.rows.push(row as u32);
        self.counts.extend_from_slice(counts);
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the counts array fits the rows (a message from outside may lie).
    pub fn is_well_formed(&self) -> bool {
        self.outcomes > 0 && self.counts.len() == self.rows.len() * self.outcomes as usize
    }

    /// Checks that the batch fits a task of `shape`: its outcome count, rows
    /// that exist, counts that are finite and ≥ 0.
    pub fn check(&self, shape: Shape) -> Result<(), String> {
        if self.outcomes as usize != shape.outcomes {
            return Err(format!(
                "{} outcomes per row; the task has {}",
                self.outcomes, shape.outcomes
            ));
        }
        if !self.is_well_formed() {
            return Err(format!(
                "{} counts for {} rows of {} outcomes",
                self.counts.len(),
                self.rows.len(),
                self.outcomes
            ));
        }
        if let Some(r) = self.rows.iter().find(|r| **r as usize >= shape.rows()) {
            return Err(format!(
                "row {r} does not exist; the task has {}",
                shape.rows()
            ));
        }
        if let Some(c) = self.counts.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
            return Err(format!("count {c}; counts must be finite and ≥ 0"));
        }
        Ok(())
    }

    /// The rows and their counts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[f64])> {
        self.rows
            .iter()
            .zip(self.counts.chunks_exact(self.outcomes.max(1) as usize))
            .map(|(r, c)| (*r as usize, c))
    }
}

/// Learner → aggregator: the learner's full own counts of the chosen rows.
/// `seq` grows with every message a learner sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareMessage {
    /// The sender.
    pub learner: u32,
    /// Grows with every message the learner sends.
    pub seq: u64,
    /// The chosen rows' full own counts.
    pub rows: RowBatch,
}

/// Aggregator → a rebuilt learner, after a crash: its last evidence the
/// aggregator acknowledged (`own`), everyone else's (`others`), the
/// aggregator's clock, and the highest sequence number it has seen from it,
/// so the learner's next messages are not taken for stale ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The learner to rebuild.
    pub learner: u32,
    /// The aggregator's clock when the record was made.
    pub stamp: u64,
    /// The highest sequence number seen from the learner.
    pub seq: u64,
    /// Its evidence as the aggregator last acknowledged it.
    pub own: RowBatch,
    /// Everyone else's counts.
    pub others: RowBatch,
}

/// Aggregator → learner: `others[r] = global[r] − contrib[learner][r]` for the
/// rows that changed since the learner last heard. `stamp` is the
/// aggregator's clock when it was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OthersUpdate {
    /// The learner it is for.
    /// The learner it is for.
    pub learner: u32,
    /// The aggregator's clock when it was sent; newer wins.
    /// The aggregator's clock when it was sent; newer wins.
    pub stamp: u64,
    /// `global − contrib[learner]` of the rows that changed.
    pub rows: RowBatch,
}

/// The size of `msg` in MessagePack (rmp-serde, the encoding kameo's remote
/// messages use), counted without building the buffer.
pub fn encoded_len<T: Serialize>(msg: &T) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing into a counter cannot fail for these plain structs.
    let _ = rmp_serde::encode::write(&mut c, msg);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_is_the_real_encoding_length() {
        let mut rows = RowBatch::new(2);
        rows.push(3, &[10.0, 2.0]);
        rows.push(17, &[0.5, 1e6]);
        let msg = ShareMessage {
            learner: 7,
            seq: 300,
            rows,
        };
        let bytes = rmp_serde::to_vec(&msg).unwrap();
        assert_eq!(encoded_len(&msg), bytes.len() as u64);
        let back: ShareMessage = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, msg);
    }
}
