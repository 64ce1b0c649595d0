use super::family::{Dirichlet, Divergence, Family};
use super::message::{OthersUpdate, RowBatch, ShareMessage};
use super::rule::ShareRule;
use crate::model::{Evidence, Shape};
use crate::policy::PosteriorRows;

/// One learner's side of the protocol: its own counts, what it last sent,
/// and the others' counts as the aggregator last told it.
///
/// The combined estimate `prior + own + others` drives decisions; the
/// learner's picture of the global estimate is `prior + sent + others`. Its
/// own counts never enter twice.
///
/// Generic over the posterior [`Family`] whose evidence it keeps; counts
/// under a Dirichlet prior unless told otherwise.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Ledger<F: Family = Dirichlet> {
    learner: u32,
    /// Saved under the name the Dirichlet prior had, so older files read.
    #[serde(rename = "prior")]
    family: F,
    own: Evidence,
    sent: Evidence,
    others: Evidence,
    /// `own + others`, kept up to date so a decision reads one row, not two.
    combined: Evidence,
    /// The aggregator stamp each `others` row was last set from, by slot.
    others_stamp: Vec<u64>,
    /// Rows observed since the last check.
    touched: Vec<u32>,
    is_touched: Vec<bool>,
    /// Rows whose own counts changed since they were last sent.
    unsent: Vec<u32>,
    is_unsent: Vec<bool>,
    steps_since_periodic: u64,
    /// Observations in all, for `ramp:K`.
    #[serde(default)]
    steps: u64,
    seq: u64,
    /// Room for the two posteriors a KL rule compares.
    combined_alpha: Vec<f64>,
    global_alpha: Vec<f64>,
}

impl Ledger {
    /// Learner `learner`'s empty ledger for a task of `shape`, with prior
    /// pseudo-count `prior` per outcome.
    pub fn new(learner: u32, shape: Shape, prior: f64) -> Self {
        Ledger::with_family(learner, shape.rows(), shape.outcomes, Dirichlet::new(prior))
    }

    /// Checks a ledger read back from a file against the task's `shape`
    /// and the configuration's `prior`.
    pub(crate) fn check_fits(&self, shape: Shape, prior: f64) -> Result<(), String> {
        let (rows, outcomes) = (shape.rows(), shape.outcomes);
        if self.family.prior() != prior {
            return Err(format!(
                "prior {}; the configuration's is {prior}",
                self.family.prior()
            ));
        }
        // The layout, and every count finite and ≥ 0 (the family's check).
        self.check_layout(rows, outcomes)
    }

    /// A ledger rebuilt after a crash from the aggregator's record: what the
    /// learner last shared becomes both its own and its sent counts (anything
    /// it saw since is lost with it), and the others' counts are current.
    pub fn recovered(shape: Shape, prior: f64, rec: &super::Recovery) -> Self {
        Self::recovered_with(shape.rows(), shape.outcomes, Dirichlet::new(prior), rec)
    }
}

impl<F: Family> Ledger<F> {
    /// [`Ledger::recovered`] for any family: `keys` keys of `width`
    /// statistics, rebuilt from the aggregator's record `rec`.
    pub fn recovered_with(keys: usize, width: usize, family: F, rec: &super::Recovery) -> Self {
        let mut ledger = Self::with_family(rec.learner, keys, width, family);
        for (row, counts) in rec.own.iter() {
            ledger.own.set_row(row, counts);
            ledger.sent.set_row(row, counts);
            ledger.combined.set_row(row, counts);
        }
        ledger.absorb(&OthersUpdate {
            learner: rec.learner,
            stamp: rec.stamp,
            rows: rec.others.clone(),
        });
        ledger.seq = rec.seq;
        ledger
    }

    /// Checks a ledger read back from a file against `keys` keys of
    /// `width` statistics: a consistent index, every key's statistics
    /// valid for its family, bookkeeping that fits.
    pub(crate) fn check_layout(&self, keys: usize, width: usize) -> Result<(), String> {
        for (name, e) in [
            ("own", &self.own),
            ("sent", &self.sent),
            ("others", &self.others),
            ("combined", &self.combined),
        ] {
            e.check_layout(keys, width)
                .map_err(|p| format!("{name} statistics: {p}"))?;
            e.iter()
                .try_for_each(|(_, stats)| self.family.check_stats(stats))
                .map_err(|p| format!("{name} statistics: {p}"))?;
        }
        let listed = |list: &[u32], marks: &[bool]| {
            marks.len() == keys
                && list.len() == marks.iter().filter(|&&m| m).count()
                && list.iter().all(|&r| marks.get(r as usize) == Some(&true))
        };
        if !listed(&self.touched, &self.is_touched)
            || !listed(&self.unsent, &self.is_unsent)
            || self.others_stamp.len() != self.others.stored_rows()
            || self.combined_alpha.len() != width
            || self.global_alpha.len() != width
        {
            return Err("its bookkeeping does not fit the task's shape".into());
        }
        Ok(())
    }

    /// Appends `keys` keys with no evidence (a bandit's new arms).
    pub fn add_keys(&mut self, keys: usize) {
        for e in [
            &mut self.own,
            &mut self.sent,
            &mut self.others,
            &mut self.combined,
        ] {
            e.add_rows(keys);
        }
        let all = self.is_touched.len() + keys;
        self.is_touched.resize(all, false);
        self.is_unsent.resize(all, false);
    }

    /// Learner `learner`'s empty ledger of `keys` keys whose evidence is
    /// `width` statistics of `family` each.
    pub fn with_family(learner: u32, keys: usize, width: usize, family: F) -> Self {
        Self {
            learner,
            family,
            own: Evidence::new(keys, width),
            sent: Evidence::new(keys, width),
            others: Evidence::new(keys, width),
            combined: Evidence::new(keys, width),
            others_stamp: Vec::new(),
            touched: Vec::new(),
            is_touched: vec![false; keys],
            unsent: Vec::new(),
            is_unsent: vec![false; keys],
            steps_since_periodic: 0,
            steps: 0,
            seq: 0,
            combined_alpha: vec![0.0; width],
            global_alpha: vec![0.0; width],
        }
    }

    /// The family of its evidence.
    pub fn family(&self) -> &F {
        &self.family
    }

    /// Whose ledger it is.
    pub fn learner(&self) -> u32 {
        self.learner
    }

    /// The learner's own counts.
    pub fn own(&self) -> &Evidence {
        &self.own
    }

    /// The own counts it last sent, row by row.
    pub fn sent(&self) -> &Evidence {
        &self.sent
    }

    /// `own + others`: the evidence decisions use, without the prior.
    pub fn combined(&self) -> &Evidence {
        &self.combined
    }

    /// Everyone else's counts, as the aggregator last told it.
    pub fn others(&self) -> &Evidence {
        &self.others
    }

    /// Records one observation of `row`.
    #[inline]
    pub fn observe(&mut self, row: usize, obs: F::Observation<'_>) {
        self.family.add(self.own.row_mut(row), obs);
        self.family.add(self.combined.row_mut(row), obs);
        if !self.is_touched[row] {
            self.is_touched[row] = true;
            self.touched.push(row as u32);
        }
        if !self.is_unsent[row] {
            self.is_unsent[row] = true;
            self.unsent.push(row as u32);
        }
        self.steps_since_periodic += 1;
        self.steps += 1;
    }

    /// Forgets: evidence decays by `factor` wherever it is held, so own,
    /// sent and others' counts all shrink together (the aggregator applies
    /// the same decay, see [`Aggregator::decay`](super::Aggregator::decay)).
    /// Uniform decay leaves every mean, and so every KL test, unchanged: it
    /// never makes a row due for sending on its own.
    pub fn discount(&mut self, factor: f64) {
        self.own.scale(factor);
        self.sent.scale(factor);
        self.others.scale(factor);
        self.combined.scale(factor);
    }

    /// Writes the parameters of the combined posterior `prior + own +
    /// others` of `row` (for counts, the concentrations).
    #[inline]
    pub fn combined_alpha_into(&self, row: usize, out: &mut [f64]) {
        self.family
            .posterior_into([self.combined.row(row), None], out);
    }

    /// Writes the parameters of the learner's picture of the global
    /// posterior `prior + sent + others` of `row`.
    pub fn global_alpha_into(&self, row: usize, out: &mut [f64]) {
        self.family
            .posterior_into([self.sent.row(row), self.others.row(row)], out);
    }

    /// How many more observations the learner can make with every check
    /// after them sending nothing under `rule`: 0 if the check after the
    /// next observation may send, `u64::MAX` if none ever will. Only rules
    /// that fire on a count of steps (`periodic`, `ramp`) can promise more
    /// than 0; the others look at the counts. A runtime uses it to run
    /// trials in a row without a barrier between them.
    pub fn quiet_observations(&self, rule: ShareRule) -> u64 {
        let threshold = match rule {
            ShareRule::Never => return u64::MAX,
            ShareRule::Periodic(k) => k,
            ShareRule::Ramp(k) => (self.steps - self.steps_since_periodic).clamp(1, k),
            ShareRule::Always
            | ShareRule::Kl(_)
            | ShareRule::KlPosterior(_)
            | ShareRule::Doubling(_) => return 0,
        };
        // A check fires once `steps_since_periodic` reaches the threshold.
        threshold.saturating_sub(self.steps_since_periodic + 1)
    }

    /// Runs the share rule; returns the message to send, if any.
    pub fn check(&mut self, rule: ShareRule) -> Option<ShareMessage> {
        let mut batch = RowBatch::new(self.own.outcomes());
        match rule {
            ShareRule::Never => {}
            ShareRule::Always => self.send_unsent(&mut batch),
            ShareRule::Periodic(k) => {
                if self.steps_since_periodic >= k {
                    self.steps_since_periodic = 0;
                    self.send_unsent(&mut batch);
                }
            }
            ShareRule::Ramp(k) => {
                // The period is the number of steps taken before the last
                // send, capped at k: sends after 1, 2, 4, 8, … steps.
                let before = self.steps - self.steps_since_periodic;
                if self.steps_since_periodic >= before.clamp(1, k) {
                    self.steps_since_periodic = 0;
                    self.send_unsent(&mut batch);
                }
            }
            ShareRule::Kl(_) | ShareRule::KlPosterior(_) | ShareRule::Doubling(_) => {
                for k in 0..self.touched.len() {
                    let row = self.touched[k] as usize;
                    if self.is_unsent[row] && self.is_due(rule, row) {
                        self.send_row(row, &mut batch);
                    }
                }
                // Rows sent above are no longer unsent; drop them from the list.
                let is_unsent = &self.is_unsent;
                self.unsent.retain(|r| is_unsent[*r as usize]);
            }
        }
        for r in self.touched.drain(..) {
            self.is_touched[r as usize] = false;
        }
        self.message(batch)
    }

    /// Every row sent so far, at the counts last sent, under a new sequence
    /// number: for an aggregator that restarted from an older snapshot and
    /// must hear the learner's full counts again. `None` if nothing was
    /// ever sent.
    pub fn resend(&mut self) -> Option<ShareMessage> {
        let mut batch = RowBatch::new(self.sent.outcomes());
        for (row, counts) in self.sent.iter() {
            batch.push(row, counts);
        }
        self.message(batch)
    }

    /// `batch` as the learner's next message, unless it is empty.
    fn message(&mut self, batch: RowBatch) -> Option<ShareMessage> {
        if batch.is_empty() {
            return None;
        }
        self.seq += 1;
        Some(ShareMessage {
            learner: self.learner,
            seq: self.seq,
            rows: batch,
        })
    }

    /// Whether a row-by-row rule sends `row`, whose own counts changed
    /// since it was last sent.
    fn is_due(&mut self, rule: ShareRule, row: usize) -> bool {
        match rule {
            ShareRule::Kl(theta) | ShareRule::KlPosterior(theta) => {
                self.family
                    .posterior_into([self.combined.row(row), None], &mut self.combined_alpha);
                self.family.posterior_into(
                    [self.sent.row(row), self.others.row(row)],
                    &mut self.global_alpha,
                );
                let kind = if let ShareRule::Kl(_) = rule {
                    Divergence::Means
                } else {
                    Divergence::Posteriors
                };
                self.family
                    .divergence(kind, &self.combined_alpha, &self.global_alpha)
                    > theta
            }
            ShareRule::Doubling(fraction) => {
                // Unsent observations against those already sent: a schedule
                // that does not look at what was observed.
                let family = &self.family;
                let total = |e: &Evidence| e.row(row).map_or(0.0, |c| family.mass(c));
                let sent = total(&self.sent);
                total(&self.own) - sent >= (fraction * sent).max(1.0)
            }
            ShareRule::Always | ShareRule::Periodic(_) | ShareRule::Ramp(_) | ShareRule::Never => {
                true
            }
        }
    }

    fn send_unsent(&mut self, batch: &mut RowBatch) {
        for k in 0..self.unsent.len() {
            let row = self.unsent[k] as usize;
            self.send_row(row, batch);
        }
        self.unsent.clear();
    }

    fn send_row(&mut self, row: usize, batch: &mut RowBatch) {
        let own = self.own.row(row).expect("an unsent row was observed");
        batch.push(row, own);
        self.sent.set_row(row, own);
        self.is_unsent[row] = false;
    }

    /// Takes the aggregator's word on the others' counts. A row older than
    /// the one already held (a reordered message) is ignored.
    pub fn absorb(&mut self, update: &OthersUpdate) {
        for (row, counts) in update.rows.iter() {
            if row >= self.is_touched.len() || counts.len() != self.others.outcomes() {
                continue;
            }
            let slot = self.others.slot(row);
            if slot == self.others_stamp.len() {
                self.others_stamp.push(0);
            }
            if update.stamp > self.others_stamp[slot] {
                self.others_stamp[slot] = update.stamp;
                self.others.set_row(row, counts);
                let own = self.own.row(row);
                for (k, c) in self.combined.row_mut(row).iter_mut().enumerate() {
                    *c = counts[k] + own.map_or(0.0, |o| o[k]);
                }
            }
        }
    }
}

impl PosteriorRows for Ledger {
    #[inline]
    fn alpha_into(&self, row: usize, out: &mut [f64]) {
        self.combined_alpha_into(row, out);
    }

    fn prior(&self) -> f64 {
        self.family.prior()
    }

    #[inline]
    fn alpha_pair(&self, row: usize) -> [f64; 2] {
        // `prior + count`, as `Dirichlet::posterior_into` adds them.
        let prior = self.family.prior();
        match self.combined.row(row) {
            Some(&[c0, c1]) => [prior + c0, prior + c1],
            _ => [prior; 2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            states: 1,
            actions: 3,
            outcomes: 2,
        }
    }

    /// The by-value read of a two-outcome row is `alpha_into`'s, bit for
    /// bit, for rows never seen, seen once and seen often.
    #[test]
    fn alpha_pair_is_alpha_into() {
        let mut l = Ledger::new(0, shape(), 0.3);
        for (row, outcome) in [(1, 1), (1, 0), (1, 1), (2, 0)] {
            l.observe(row, outcome);
        }
        for row in 0..3 {
            let mut expected = [0.0; 2];
            l.alpha_into(row, &mut expected);
            assert_eq!(l.alpha_pair(row), expected, "row {row}");
        }
        assert_eq!(l.alpha_pair(1), [1.3, 2.3]);
        assert_eq!(l.alpha_pair(0), [0.3, 0.3]);
    }

    #[test]
    fn never_sends_and_always_sends_changed_rows() {
        let mut l = Ledger::new(0, shape(), 1.0);
        l.observe(1, 1);
        assert!(l.check(ShareRule::Never).is_none());
        let m = l.check(ShareRule::Always).unwrap();
        assert_eq!(m.rows.rows, vec![1]);
        assert_eq!(m.rows.counts, vec![0.0, 1.0]);
        assert!(
            l.check(ShareRule::Always).is_none(),
            "nothing changed since"
        );
        l.observe(1, 0);
        l.observe(2, 0);
        let m = l.check(ShareRule::Always).unwrap();
        assert_eq!((m.seq, m.rows.rows.clone()), (2, vec![1, 2]));
        assert_eq!(l.sent().row(1), Some(&[1.0, 1.0][..]));
    }

    #[test]
    fn periodic_waits_k_steps() {
        let mut l = Ledger::new(0, shape(), 1.0);
        l.observe(0, 1);
        l.observe(0, 1);
        assert!(l.check(ShareRule::Periodic(3)).is_none());
        l.observe(2, 1);
        assert_eq!(
            l.check(ShareRule::Periodic(3)).unwrap().rows.rows,
            vec![0, 2]
        );
    }

    #[test]
    fn ramp_sends_after_1_2_4_8_steps_then_every_k() {
        let mut l = Ledger::new(0, shape(), 1.0);
        let sent_at: Vec<u64> = (1..=100)
            .filter(|n| {
                l.observe(0, (n % 2) as usize);
                l.check(ShareRule::Ramp(20)).is_some()
            })
            .collect();
        assert_eq!(sent_at, vec![1, 2, 4, 8, 16, 32, 52, 72, 92]);
    }

    #[test]
    fn kl_rule_sends_only_rows_that_drifted() {
        let mut l = Ledger::new(0, shape(), 1.0);
        // The first observation moves the mean from 1/2 to 2/3: KL ≈ 0.0589.
        l.observe(0, 1);
        assert!(l.check(ShareRule::Kl(0.1)).is_none());
        l.observe(0, 1);
        // Now 3/4 vs 1/2: KL ≈ 0.1308 > 0.1.
        assert_eq!(l.check(ShareRule::Kl(0.1)).unwrap().rows.rows, vec![0]);
        l.observe(0, 0);
        // 3/5 vs 3/4: KL ≈ 0.0527.
        assert!(l.check(ShareRule::Kl(0.1)).is_none());
    }

    #[test]
    fn doubling_sends_a_row_at_1_2_4_8_observations() {
        let mut l = Ledger::new(0, shape(), 1.0);
        let mut sent_at = Vec::new();
        for n in 1..=16 {
            l.observe(2, n % 2);
            if l.check(ShareRule::Doubling(1.0)).is_some() {
                sent_at.push(n);
            }
        }
        assert_eq!(sent_at, vec![1, 2, 4, 8, 16]);
        // Half as much unsent evidence triggers it: 1, 2, 3, 5, 8, 12 …
        let mut l = Ledger::new(0, shape(), 1.0);
        let sent: Vec<usize> = (1..=12)
            .filter(|_| {
                l.observe(0, 1);
                l.check(ShareRule::Doubling(0.5)).is_some()
            })
            .collect();
        assert_eq!(sent, vec![1, 2, 3, 5, 8, 12]);
    }

    #[test]
    fn stale_updates_are_ignored() {
        let mut l = Ledger::new(0, shape(), 1.0);
        let mut new = RowBatch::new(2);
        new.push(0, &[5.0, 5.0]);
        let mut old = RowBatch::new(2);
        old.push(0, &[1.0, 1.0]);
        l.absorb(&OthersUpdate {
            learner: 0,
            stamp: 9,
            rows: new,
        });
        l.absorb(&OthersUpdate {
            learner: 0,
            stamp: 4,
            rows: old,
        });
        let mut a = [0.0; 2];
        l.combined_alpha_into(0, &mut a);
        assert_eq!(a, [6.0, 6.0]);
    }
}
