//! One learner's pass-by-pass order through a fixed set of rows.

use rand::Rng;
use rand::seq::SliceRandom;

/// Rows `0..n` in an order of the learner's own, shuffled afresh with its
/// random stream at the start of every pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowStream {
    order: Vec<u32>,
    /// The next position in `order`.
    next: usize,
    /// The row being decided on.
    current: usize,
}

impl RowStream {
    /// A stream through `rows` rows; its first pass is shuffled at the
    /// first [`advance`](Self::advance).
    pub(crate) fn new(rows: usize) -> Self {
        Self {
            order: (0..rows as u32).collect(),
            next: rows,
            current: 0,
        }
    }

    /// Moves to the next row (shuffling for a new pass) and returns it.
    pub(crate) fn advance<R: Rng + ?Sized>(&mut self, rng: &mut R) -> usize {
        if self.next == self.order.len() {
            self.order.shuffle(rng);
            self.next = 0;
        }
        self.current = self.order[self.next] as usize;
        self.next += 1;
        self.current
    }

    /// The row being decided on.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Bytes a learner's copy holds.
    pub(crate) fn bytes(&self) -> u64 {
        4 * self.order.len() as u64
    }

    /// The next position, the current row, then this pass's order.
    pub(crate) fn position(&self) -> Vec<u64> {
        [self.next as u64, self.current as u64]
            .into_iter()
            .chain(self.order.iter().map(|&r| u64::from(r)))
            .collect()
    }

    /// Continues from a [`position`](Self::position) of a stream through
    /// as many rows; anything else is refused.
    pub(crate) fn resume_at(&mut self, position: &[u64]) -> Result<(), String> {
        let rows = self.order.len();
        let [next, current, order @ ..] = position else {
            return Err("no position".into());
        };
        let mut seen = vec![false; rows];
        let fits = order.len() == rows
            && *next as usize <= rows
            && (*current as usize) < rows
            && order
                .iter()
                .all(|&r| (r as usize) < rows && !std::mem::replace(&mut seen[r as usize], true));
        if !fits {
            return Err(format!(
                "not a position in a stream of {rows} rows (its order must list every row once)"
            ));
        }
        self.order = order.iter().map(|&r| r as u32).collect();
        (self.next, self.current) = (*next as usize, *current as usize);
        Ok(())
    }
}
