use super::message::{OthersUpdate, Recovery, RowBatch, ShareMessage};
use super::traffic::Traffic;
use crate::error::{Error, Result};
use crate::model::{Evidence, Shape};

/// The global side of the protocol: `contrib[i][r]`, the latest counts from
/// learner `i`, and `global[r] = Σᵢ contrib[i][r]`.
///
/// It counts every message it receives and sends, so its [`Traffic`] is the
/// run's communication volume.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Aggregator {
    outcomes: usize,
    contrib: Vec<Evidence>,
    /// The sequence number each contribution row came with, by slot.
    contrib_seq: Vec<Vec<u64>>,
    global: Evidence,
    changes: Vec<RowChange>,
    /// The clock value when each learner was last answered.
    heard: Vec<u64>,
    /// Advances once per message that changed the global estimate.
    clock: u64,
    traffic: Traffic,
    scratch: Vec<f64>,
}

/// Who changed a row last and when, plus when anyone *else* last changed it:
/// enough to tell, in O(1), whether a row's `others` changed for a learner
/// since a given time.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct RowChange {
    stamp: u64,
    by: u32,
    by_other_stamp: u64,
}

impl RowChange {
    const NEVER: RowChange = RowChange {
        stamp: 0,
        by: u32::MAX,
        by_other_stamp: 0,
    };

    fn record(&mut self, learner: u32, stamp: u64) {
        if learner != self.by {
            self.by_other_stamp = self.stamp;
            self.by = learner;
        }
        self.stamp = stamp;
    }

    /// Whether others' counts of the row changed for `learner` after `since`.
    fn changed_for(&self, learner: u32, since: u64) -> bool {
        if learner == self.by {
            self.by_other_stamp > since
        } else {
            self.stamp > since
        }
    }
}

impl Aggregator {
    pub fn new(shape: Shape, learners: usize) -> Self {
        let (rows, outcomes) = (shape.rows(), shape.outcomes);
        Self {
            outcomes,
            contrib: vec![Evidence::new(rows, outcomes); learners],
            contrib_seq: vec![Vec::new(); learners],
            global: Evidence::new(rows, outcomes),
            changes: vec![RowChange::NEVER; rows],
            heard: vec![0; learners],
            clock: 0,
            traffic: Traffic::default(),
            scratch: vec![0.0; outcomes],
        }
    }

    /// `Σᵢ contrib[i]`, without the prior.
    pub fn global(&self) -> &Evidence {
        &self.global
    }

    /// Learner `i`'s latest counts as the aggregator holds them.
    pub fn contribution(&self, learner: usize) -> &Evidence {
        &self.contrib[learner]
    }

    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Forgets: multiplies every contribution, and so the global estimate,
    /// by `factor`: the decay learners apply to the counts they hold, over the
    /// steps since the last call.
    pub fn decay(&mut self, factor: f64) {
        if factor != 1.0 {
            for c in &mut self.contrib {
                c.scale(factor);
            }
            self.global.scale(factor);
        }
    }

    /// Folds a share message. Rows older than what is held for that learner
    /// (by sequence number) are ignored, so duplicates and reorderings leave
    /// the global estimate as the latest messages define it.
    pub fn receive(&mut self, msg: &ShareMessage) -> Result<()> {
        let i = msg.learner as usize;
        if i >= self.contrib.len() {
            return Err(Error::Runtime(format!(
                "share message from learner {i}, but only {} learners joined",
                self.contrib.len()
            )));
        }
        if !msg.rows.is_well_formed() || msg.rows.outcomes as usize != self.outcomes {
            return Err(Error::Runtime(format!(
                "malformed share message from learner {i}"
            )));
        }
        if let Some(&row) = msg
            .rows
            .rows
            .iter()
            .find(|r| **r as usize >= self.changes.len())
        {
            return Err(Error::Runtime(format!(
                "learner {i} sent row {row}, which does not exist"
            )));
        }
        self.traffic.count_up(msg);
        let mut changed = false;
        for (row, counts) in msg.rows.iter() {
            let slot = self.contrib[i].slot(row);
            let seqs = &mut self.contrib_seq[i];
            if slot == seqs.len() {
                seqs.push(0);
            }
            if msg.seq <= seqs[slot] {
                continue;
            }
            seqs[slot] = msg.seq;
            let held = self.contrib[i].row_mut(row);
            if held == counts {
                continue;
            }
            let global = self.global.row_mut(row);
            for ((g, h), c) in global.iter_mut().zip(held.iter_mut()).zip(counts) {
                *g += c - *h;
                *h = *c;
            }
            if !changed {
                changed = true;
                self.clock += 1;
            }
            self.changes[row].record(msg.learner, self.clock);
        }
        Ok(())
    }

    /// The rows whose others' counts changed since `learner` last heard, or
    /// `None` if there are none (nothing is sent then).
    pub fn answer(&mut self, learner: usize) -> Option<OthersUpdate> {
        let id = learner as u32;
        let since = self.heard[learner];
        if self.clock == since {
            return None;
        }
        self.heard[learner] = self.clock;
        let mut batch = RowBatch::new(self.outcomes);
        for (row, global) in self.global.iter() {
            if !self.changes[row].changed_for(id, since) {
                continue;
            }
            self.scratch.copy_from_slice(global);
            if let Some(own) = self.contrib[learner].row(row) {
                for (o, c) in self.scratch.iter_mut().zip(own) {
                    // Exact for whole counts; clamp rounding of discounted ones.
                    *o = (*o - c).max(0.0);
                }
            }
            batch.push(row, &self.scratch);
        }
        if batch.is_empty() {
            return None;
        }
        let update = OthersUpdate {
            learner: id,
            stamp: self.clock,
            rows: batch,
        };
        self.traffic.count_down(&update);
        Some(update)
    }

    /// Everything needed to rebuild learner `learner` after a crash: the
    /// evidence it last shared, as acknowledged here, and all the others'.
    /// Counted as one message down; the learner has then heard everything.
    pub fn recovery(&mut self, learner: usize) -> Recovery {
        let mut own = RowBatch::new(self.outcomes);
        let mut others = RowBatch::new(self.outcomes);
        for (row, counts) in self.contrib[learner].iter() {
            own.push(row, counts);
        }
        for (row, global) in self.global.iter() {
            self.scratch.copy_from_slice(global);
            if let Some(mine) = self.contrib[learner].row(row) {
                for (o, c) in self.scratch.iter_mut().zip(mine) {
                    *o = (*o - c).max(0.0);
                }
            }
            others.push(row, &self.scratch);
        }
        self.heard[learner] = self.clock;
        let recovery = Recovery {
            learner: learner as u32,
            stamp: self.clock,
            seq: self.contrib_seq[learner].iter().copied().max().unwrap_or(0),
            own,
            others,
        };
        self.traffic.count_recovery(&recovery);
        recovery
    }

    /// Answers every learner, in id order.
    pub fn answer_all(&mut self) -> Vec<OthersUpdate> {
        (0..self.contrib.len())
            .filter_map(|i| self.answer(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(learner: u32, seq: u64, rows: &[(usize, [f64; 2])]) -> ShareMessage {
        let mut b = RowBatch::new(2);
        for (r, c) in rows {
            b.push(*r, c);
        }
        ShareMessage {
            learner,
            seq,
            rows: b,
        }
    }

    #[test]
    fn global_is_the_sum_of_latest_contributions() {
        let shape = Shape {
            states: 1,
            actions: 2,
            outcomes: 2,
        };
        let mut agg = Aggregator::new(shape, 2);
        agg.receive(&msg(0, 1, &[(0, [1.0, 2.0])])).unwrap();
        agg.receive(&msg(1, 1, &[(0, [3.0, 0.0]), (1, [1.0, 1.0])]))
            .unwrap();
        agg.receive(&msg(0, 2, &[(0, [2.0, 2.0])])).unwrap();
        assert_eq!(agg.global().row(0), Some(&[5.0, 2.0][..]));
        let up0 = agg.answer(0).unwrap();
        assert_eq!(up0.rows.rows, vec![0, 1]);
        assert_eq!(up0.rows.counts, vec![3.0, 0.0, 1.0, 1.0]);
        let up1 = agg.answer(1).unwrap();
        assert_eq!(up1.rows.rows, vec![0], "row 1 changed only by learner 1");
        assert_eq!(up1.rows.counts, vec![2.0, 2.0]);
        assert!(agg.answer(0).is_none());
        assert_eq!(agg.traffic().messages_up, 3);
        assert_eq!(agg.traffic().messages_down, 2);
        assert_eq!(agg.traffic().rows_down, 3);
    }

    #[test]
    fn one_learner_never_hears_its_own_counts_back() {
        let shape = Shape {
            states: 1,
            actions: 2,
            outcomes: 2,
        };
        let mut agg = Aggregator::new(shape, 1);
        agg.receive(&msg(0, 1, &[(0, [1.0, 2.0])])).unwrap();
        assert!(agg.answer(0).is_none());
    }

    #[test]
    fn rejects_foreign_and_malformed_messages() {
        let shape = Shape {
            states: 1,
            actions: 2,
            outcomes: 2,
        };
        let mut agg = Aggregator::new(shape, 1);
        assert!(agg.receive(&msg(3, 1, &[(0, [1.0, 2.0])])).is_err());
        assert!(agg.receive(&msg(0, 1, &[(9, [1.0, 2.0])])).is_err());
        let mut bad = msg(0, 1, &[(0, [1.0, 2.0])]);
        bad.rows.counts.pop();
        assert!(agg.receive(&bad).is_err());
    }
}
