/// Experience counts `n(row, outcome)` without the prior, stored sparsely by
/// row: only rows that were ever touched take memory.
///
/// Counts are `f64` so discounted (forgotten) evidence fits the same type.
/// A row's counts are contiguous, so a row is one slice.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    outcomes: usize,
    /// `slot_of[row]` is the row's index into `rows`/`counts`, or `NONE`.
    slot_of: Vec<u32>,
    rows: Vec<u32>,
    counts: Vec<f64>,
}

const NONE: u32 = u32::MAX;

/// Equal when every row holds the same counts, whatever order the rows
/// were first touched in.
impl PartialEq for Evidence {
    fn eq(&self, other: &Self) -> bool {
        self.outcomes == other.outcomes
            && self.slot_of.len() == other.slot_of.len()
            && self.rows.len() == other.rows.len()
            && self.iter().all(|(row, c)| other.row(row) == Some(c))
    }
}

impl Evidence {
    /// An empty store for `rows` rows of `outcomes` outcomes each.
    pub fn new(rows: usize, outcomes: usize) -> Self {
        Self {
            outcomes,
            slot_of: vec![NONE; rows],
            rows: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// Checks a store read back from a file for `rows` rows of `outcomes`
    /// numbers each and a consistent index, whatever the numbers.
    pub(crate) fn check_layout(&self, rows: usize, outcomes: usize) -> Result<(), String> {
        if self.outcomes != outcomes || self.slot_of.len() != rows {
            return Err(format!(
                "{} rows of {} outcomes; the task has {rows} of {outcomes}",
                self.slot_of.len(),
                self.outcomes
            ));
        }
        if self.counts.len() != self.rows.len() * outcomes
            || self
                .rows
                .iter()
                .enumerate()
                .any(|(slot, &row)| self.slot_of.get(row as usize) != Some(&(slot as u32)))
            || self.slot_of.iter().filter(|&&s| s != NONE).count() != self.rows.len()
        {
            return Err("its row index is inconsistent".into());
        }
        Ok(())
    }

    /// Appends `rows` untouched rows.
    pub fn add_rows(&mut self, rows: usize) {
        self.slot_of.resize(self.slot_of.len() + rows, NONE);
    }

    /// Rows in all, touched or not.
    pub fn rows(&self) -> usize {
        self.slot_of.len()
    }

    /// Outcomes per row.
    pub fn outcomes(&self) -> usize {
        self.outcomes
    }

    /// How many rows hold counts.
    pub fn stored_rows(&self) -> usize {
        self.rows.len()
    }

    /// The row's counts, or `None` if it was never touched.
    #[inline]
    pub fn row(&self, row: usize) -> Option<&[f64]> {
        match self.slot_of[row] {
            NONE => None,
            s => {
                let s = s as usize * self.outcomes;
                Some(&self.counts[s..s + self.outcomes])
            }
        }
    }

    /// The row's storage slot, if it was ever touched.
    #[inline]
    pub fn existing_slot(&self, row: usize) -> Option<usize> {
        match self.slot_of[row] {
            NONE => None,
            s => Some(s as usize),
        }
    }

    /// The row's counts, created as zeros on first touch.
    #[inline]
    pub fn row_mut(&mut self, row: usize) -> &mut [f64] {
        let s = self.slot(row) * self.outcomes;
        &mut self.counts[s..s + self.outcomes]
    }

    /// The row's storage slot, created on first touch; slots are dense
    /// `0..stored_rows()` and never move, so callers may key side tables by
    /// them.
    #[inline]
    pub fn slot(&mut self, row: usize) -> usize {
        match self.slot_of[row] {
            NONE => {
                let s = self.rows.len();
                self.slot_of[row] = s as u32;
                self.rows.push(row as u32);
                self.counts.resize(self.counts.len() + self.outcomes, 0.0);
                s
            }
            s => s as usize,
        }
    }

    /// Adds `weight` to `n(row, outcome)`.
    #[inline]
    pub fn add(&mut self, row: usize, outcome: usize, weight: f64) {
        self.row_mut(row)[outcome] += weight;
    }

    /// Replaces a row's counts.
    pub fn set_row(&mut self, row: usize, counts: &[f64]) {
        self.row_mut(row).copy_from_slice(counts);
    }

    /// Multiplies every count by `factor` (forgetting).
    pub fn scale(&mut self, factor: f64) {
        for c in &mut self.counts {
            *c *= factor;
        }
    }

    /// Stored rows and their counts, in first-touch order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &[f64])> {
        self.rows
            .iter()
            .zip(self.counts.chunks_exact(self.outcomes))
            .map(|(r, c)| (*r as usize, c))
    }

    /// Sum of every count.
    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_touched_rows() {
        let mut e = Evidence::new(1000, 3);
        assert_eq!(e.row(7), None);
        e.add(7, 2, 1.0);
        e.add(7, 2, 1.0);
        e.add(500, 0, 0.5);
        assert_eq!(e.stored_rows(), 2);
        assert_eq!(e.row(7), Some(&[0.0, 0.0, 2.0][..]));
        assert_eq!(e.row(500), Some(&[0.5, 0.0, 0.0][..]));
        e.scale(0.5);
        assert_eq!(e.total(), 1.25);
        let rows: Vec<usize> = e.iter().map(|(r, _)| r).collect();
        assert_eq!(rows, vec![7, 500]);
    }
}
