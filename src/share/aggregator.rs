use std::collections::BTreeMap;

use super::family::{Dirichlet, Divergence, Family};
use super::message::{OthersUpdate, Recovery, RowBatch, ShareMessage};
use super::rule::Downlink;
use super::traffic::Traffic;
use crate::error::ProtocolError;
use crate::model::{Evidence, Shape};

/// The global side of the protocol: `contrib[i][r]`, the latest counts from
/// learner `i`, and `global[r] = Σᵢ contrib[i][r]`.
///
/// Learners join and leave while it runs. A learner that leaves stops being
/// answered, but the evidence it shared stays in the global estimate (it was
/// real experience), and it may rejoin under its id. Every message is
/// checked before anything changes: a malformed, foreign or stale one is
/// refused with a [`ProtocolError`] and leaves the aggregator as it was.
///
/// It counts every message it accepts and sends, so its [`Traffic`] is the
/// run's communication volume.
///
/// ```
/// use parbayes::model::Shape;
/// use parbayes::share::{Aggregator, RowBatch, ShareMessage};
///
/// let shape = Shape { states: 1, actions: 2, outcomes: 2 };
/// let mut agg = Aggregator::new(shape, 0);
/// let (a, b) = (agg.join(), agg.join());
/// let mut rows = RowBatch::new(2);
/// rows.push(1, &[3.0, 1.0]);
/// agg.receive(&ShareMessage { learner: a, seq: 1, rows: rows.clone() })?;
/// // The same message again is stale: refused, nothing changes.
/// assert!(agg.receive(&ShareMessage { learner: a, seq: 1, rows }).is_err());
/// assert_eq!(agg.global().row(1), Some(&[3.0, 1.0][..]));
/// // b hears a's counts as the others' counts of row 1.
/// let update = agg.answer(b)?.unwrap();
/// assert_eq!((update.rows.rows.clone(), update.rows.counts.clone()), (vec![1], vec![3.0, 1.0]));
/// agg.leave(a)?;
/// assert!(!agg.is_member(a));
/// # Ok::<(), parbayes::Error>(())
/// ```
///
/// Generic over the posterior [`Family`] whose evidence it sums (Dirichlet
/// counts unless told otherwise). For a family other than counts, `shape`
/// reads as `actions` keys of `outcomes` statistics each.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Aggregator<F: Family = Dirichlet> {
    shape: Shape,
    members: BTreeMap<u32, Member>,
    global: Evidence,
    changes: Vec<RowChange>,
    /// Advances once per message that changed the global estimate.
    clock: u64,
    #[serde(default)]
    downlink: Downlink,
    /// The learners' family and prior, for a KL-gated downlink; saved
    /// under the name the Dirichlet prior had, so older files read.
    #[serde(default, rename = "prior")]
    family: F,
    traffic: Traffic,
    scratch: Vec<f64>,
    /// Room for two rows of concentrations (sized on first use).
    #[serde(skip)]
    alphas: [Vec<f64>; 2],
    #[serde(skip)]
    staged: Staged,
}

/// The rows of an answer as it is built, kept between answers so that
/// each allocates only its own message, at its final size.
#[derive(Debug, Clone, Default)]
struct Staged {
    rows: Vec<u32>,
    counts: Vec<f64>,
}

/// One learner's record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Member {
    /// Its latest counts.
    contrib: Evidence,
    /// The sequence number each contribution row came with, by slot.
    seq: Vec<u64>,
    /// The clock value when it was last answered.
    heard: u64,
    /// False once it has left.
    active: bool,
    /// Under a doubling downlink: the others' total count of each row when
    /// it was last sent to the learner, by slot of the global estimate.
    #[serde(default)]
    told: Vec<f64>,
    /// Under a KL-gated downlink: the others' counts last sent, by row.
    #[serde(default)]
    told_rows: Option<Evidence>,
}

impl Member {
    fn new(shape: Shape) -> Self {
        Self {
            contrib: Evidence::new(shape.rows(), shape.outcomes),
            seq: Vec::new(),
            heard: 0,
            active: true,
            told: Vec::new(),
            told_rows: None,
        }
    }

    /// Whether the others' counts of `row` (now `others`) are worth sending
    /// under `gate`; if so, notes them as told.
    fn is_news<F: Family>(
        &mut self,
        gate: &mut Gate<F>,
        row: usize,
        slot: usize,
        others: &[f64],
    ) -> bool {
        match gate.downlink {
            Downlink::Every => true,
            Downlink::Doubling(fraction) => {
                if slot >= self.told.len() {
                    self.told.resize(slot + 1, 0.0);
                }
                let told = &mut self.told[slot];
                let total = gate.family.mass(others);
                if total - *told >= (fraction * *told).max(1.0) {
                    *told = total;
                    true
                } else {
                    false
                }
            }
            Downlink::Kl(theta) => {
                let outcomes = others.len();
                let told_rows = self
                    .told_rows
                    .get_or_insert_with(|| Evidence::new(gate.rows, outcomes));
                let [now, then] = &mut gate.alphas;
                now.resize(outcomes, 0.0);
                then.resize(outcomes, 0.0);
                let mine = self.contrib.row(row);
                gate.family.posterior_into([mine, Some(others)], now);
                gate.family.posterior_into([mine, told_rows.row(row)], then);
                if gate.family.divergence(Divergence::Means, now, then) > theta {
                    told_rows.set_row(row, others);
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// What a gated downlink needs besides the member: the rule, the family,
/// the number of rows and room for two rows of concentrations.
struct Gate<'a, F> {
    downlink: Downlink,
    family: &'a mut F,
    rows: usize,
    alphas: &'a mut [Vec<f64>; 2],
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
    /// An aggregator for a task of `shape`, with learners `0..learners`
    /// already joined.
    pub fn new(shape: Shape, learners: usize) -> Self {
        Aggregator::with_family(shape, learners, Dirichlet::default())
    }

    /// The learners' prior pseudo-count per outcome (default 1), which a
    /// KL-gated downlink needs to compute their posterior means.
    pub fn with_prior(mut self, alpha0: f64) -> Self {
        self.family = Dirichlet::new(alpha0);
        self
    }
}

impl<F: Family> Aggregator<F> {
    /// An aggregator of `family` evidence for `shape.actions` keys of
    /// `shape.outcomes` statistics (`shape.states` of them for a tabular
    /// task), with learners `0..learners` already joined.
    pub fn with_family(shape: Shape, learners: usize, family: F) -> Self {
        Self {
            shape,
            members: (0..learners as u32)
                .map(|i| (i, Member::new(shape)))
                .collect(),
            global: Evidence::new(shape.rows(), shape.outcomes),
            changes: vec![RowChange::NEVER; shape.rows()],
            clock: 0,
            downlink: Downlink::Every,
            family,
            traffic: Traffic::default(),
            scratch: vec![0.0; shape.outcomes],
            alphas: Default::default(),
            staged: Staged::default(),
        }
    }

    /// The same aggregator answering by `downlink` (by default every changed
    /// row, [`Downlink::Every`]).
    pub fn with_downlink(mut self, downlink: Downlink) -> Self {
        self.downlink = downlink;
        self
    }

    /// How it answers.
    pub fn downlink(&self) -> Downlink {
        self.downlink
    }

    /// The same state, for an aggregator that restarts from it while its
    /// learners carry on: the clock jumps ahead by 2³², so its answers are
    /// newer than any an earlier incarnation sent after this state was
    /// saved (a learner skips answers older than the rows it holds).
    pub fn restarted(mut self) -> Self {
        self.clock += 1 << 32;
        self
    }

    /// The posterior family its evidence belongs to.
    pub fn family(&self) -> &F {
        &self.family
    }

    /// The shape of the task it aggregates.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Appends `keys` keys (a bandit's new arms) that no learner has
    /// evidence of yet, so learners that added them may send them. Only a
    /// one-state shape grows: an MDP's rows are states × actions.
    ///
    /// ```
    /// use parbayes::model::Shape;
    /// use parbayes::share::{Aggregator, RowBatch, ShareMessage};
    ///
    /// let mut agg = Aggregator::new(Shape { states: 1, actions: 2, outcomes: 2 }, 1);
    /// let mut rows = RowBatch::new(2);
    /// rows.push(2, &[1.0, 1.0]);
    /// let message = ShareMessage { learner: 0, seq: 1, rows };
    /// assert!(agg.receive(&message).is_err(), "arm 2 does not exist yet");
    /// agg.add_keys(1)?;
    /// agg.receive(&message)?;
    /// assert_eq!(agg.global().row(2), Some(&[1.0, 1.0][..]));
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn add_keys(&mut self, keys: usize) -> Result<(), crate::Error> {
        if self.shape.states != 1 {
            return Err(crate::Error::invalid(
                "aggregator",
                "keys",
                format!(
                    "a task of {} states; only a one-state task (a bandit) adds arms",
                    self.shape.states
                ),
            ));
        }
        self.shape.actions += keys;
        self.global.add_rows(keys);
        self.changes.resize(self.shape.rows(), RowChange::NEVER);
        for m in self.members.values_mut() {
            m.contrib.add_rows(keys);
            if let Some(told) = &mut m.told_rows {
                told.add_rows(keys);
            }
        }
        Ok(())
    }

    /// A new learner joins; returns its id, one above every id ever used.
    pub fn join(&mut self) -> u32 {
        let id = self
            .members
            .last_key_value()
            .map_or(0, |(k, _)| k.saturating_add(1));
        self.members.insert(id, Member::new(self.shape));
        id
    }

    /// Learner `id` joins under its own id: a new learner, or one that left
    /// and returns (it is answered from where it last heard; to rebuild a
    /// learner that lost its state, follow with [`recovery`](Self::recovery)).
    pub fn join_as(&mut self, id: u32) -> Result<(), ProtocolError> {
        match self.members.get_mut(&id) {
            Some(m) if m.active => Err(ProtocolError::AlreadyMember(id)),
            Some(m) => {
                m.active = true;
                Ok(())
            }
            None => {
                self.members.insert(id, Member::new(self.shape));
                Ok(())
            }
        }
    }

    /// Learner `id` leaves: it is no longer answered and its messages are
    /// refused, but what it shared stays in the global estimate.
    pub fn leave(&mut self, id: u32) -> Result<(), ProtocolError> {
        active(&mut self.members, id)?.active = false;
        Ok(())
    }

    /// Whether learner `id` has joined and not left.
    pub fn is_member(&self, id: u32) -> bool {
        self.members.get(&id).is_some_and(|m| m.active)
    }

    /// The ids of the current members, in order.
    pub fn members(&self) -> impl Iterator<Item = u32> + '_ {
        self.members
            .iter()
            .filter(|(_, m)| m.active)
            .map(|(id, _)| *id)
    }

    /// `Σᵢ contrib[i]`, without the prior.
    pub fn global(&self) -> &Evidence {
        &self.global
    }

    /// Learner `id`'s latest counts as the aggregator holds them (also
    /// after it has left).
    pub fn contribution(&self, id: u32) -> Option<&Evidence> {
        self.members.get(&id).map(|m| &m.contrib)
    }

    /// Messages, rows and bytes so far, both ways.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Forgets: multiplies every contribution, and so the global estimate,
    /// by `factor`: the decay learners apply to the counts they hold, over the
    /// steps since the last call.
    pub fn decay(&mut self, factor: f64) {
        if factor != 1.0 {
            for m in self.members.values_mut() {
                m.contrib.scale(factor);
                m.told.iter_mut().for_each(|t| *t *= factor);
                if let Some(t) = &mut m.told_rows {
                    t.scale(factor);
                }
            }
            self.global.scale(factor);
        }
    }

    /// Folds a share message. Rows older than what is held for that learner
    /// (by sequence number) are skipped, so duplicates and reorderings leave
    /// the global estimate as the latest messages define it; a message none
    /// of whose rows is newer is refused as [`ProtocolError::Stale`].
    pub fn receive(&mut self, msg: &ShareMessage) -> Result<(), ProtocolError> {
        let shape = self.shape;
        let learner = msg.learner;
        let member = active(&mut self.members, learner)?;
        msg.rows
            .check_with(shape, &self.family)
            .map_err(|problem| ProtocolError::Malformed { learner, problem })?;
        let newer = |row: u32| {
            member
                .contrib
                .existing_slot(row as usize)
                .is_none_or(|slot| msg.seq > member.seq[slot])
        };
        if !msg.rows.is_empty() && !msg.rows.rows.iter().any(|&r| newer(r)) {
            return Err(ProtocolError::Stale {
                learner,
                seq: msg.seq,
            });
        }
        self.traffic.count_up(msg);
        let mut changed = false;
        for (row, counts) in msg.rows.iter() {
            let slot = member.contrib.slot(row);
            if slot == member.seq.len() {
                member.seq.push(0);
            }
            if msg.seq <= member.seq[slot] {
                continue;
            }
            member.seq[slot] = msg.seq;
            let held = member.contrib.row_mut(row);
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
            self.changes[row].record(learner, self.clock);
        }
        Ok(())
    }

    /// The rows whose others' counts changed since learner `id` last
    /// heard, or `None` if there are none (nothing is sent then).
    pub fn answer(&mut self, id: u32) -> Result<Option<OthersUpdate>, ProtocolError> {
        let member = active(&mut self.members, id)?;
        let mut gate = Gate {
            downlink: self.downlink,
            family: &mut self.family,
            rows: self.shape.rows(),
            alphas: &mut self.alphas,
        };
        Ok(answer(
            id,
            member,
            &self.global,
            &self.changes,
            self.clock,
            &mut gate,
            &mut self.scratch,
            &mut self.staged,
            &mut self.traffic,
        ))
    }

    /// Answers every member, in id order.
    pub fn answer_all(&mut self) -> Vec<OthersUpdate> {
        let mut out = Vec::with_capacity(self.members.len());
        let mut gate = Gate {
            downlink: self.downlink,
            family: &mut self.family,
            rows: self.shape.rows(),
            alphas: &mut self.alphas,
        };
        for (&id, member) in self.members.iter_mut().filter(|(_, m)| m.active) {
            out.extend(answer(
                id,
                member,
                &self.global,
                &self.changes,
                self.clock,
                &mut gate,
                &mut self.scratch,
                &mut self.staged,
                &mut self.traffic,
            ));
        }
        out
    }

    /// Everything needed to rebuild learner `id` after a crash or restart:
    /// the evidence it last shared, as acknowledged here, and all the
    /// others'. Counted as one message down; the learner has then heard
    /// everything.
    pub fn recovery(&mut self, id: u32) -> Result<Recovery, ProtocolError> {
        let member = active(&mut self.members, id)?;
        let outcomes = self.shape.outcomes;
        let mut own = RowBatch::new(outcomes);
        let mut others = RowBatch::new(outcomes);
        for (row, counts) in member.contrib.iter() {
            own.push(row, counts);
        }
        for (row, global) in self.global.iter() {
            self.family
                .others_into(global, member.contrib.row(row), &mut self.scratch);
            match self.downlink {
                Downlink::Every => {}
                Downlink::Doubling(_) => {
                    let slot = self.global.existing_slot(row).expect("a stored row");
                    member.told.resize(member.told.len().max(slot + 1), 0.0);
                    member.told[slot] = self.family.mass(&self.scratch);
                }
                Downlink::Kl(_) => member
                    .told_rows
                    .get_or_insert_with(|| Evidence::new(self.shape.rows(), self.shape.outcomes))
                    .set_row(row, &self.scratch),
            }
            others.push(row, &self.scratch);
        }
        member.heard = self.clock;
        let recovery = Recovery {
            learner: id,
            stamp: self.clock,
            seq: member.seq.iter().copied().max().unwrap_or(0),
            own,
            others,
        };
        self.traffic.count_recovery(&recovery);
        Ok(recovery)
    }
}

/// Member `id`, if it has joined and not left.
fn active(members: &mut BTreeMap<u32, Member>, id: u32) -> Result<&mut Member, ProtocolError> {
    match members.get_mut(&id) {
        Some(m) if m.active => Ok(m),
        _ => Err(ProtocolError::NotMember(id)),
    }
}

/// Member `id`'s answer: the others' counts of the rows some other learner
/// changed since it last heard, as far as `downlink` finds them news. A row
/// held back is looked at again when someone changes it next.
#[allow(clippy::too_many_arguments)]
fn answer<F: Family>(
    id: u32,
    member: &mut Member,
    global: &Evidence,
    changes: &[RowChange],
    clock: u64,
    gate: &mut Gate<F>,
    scratch: &mut [f64],
    staged: &mut Staged,
    traffic: &mut Traffic,
) -> Option<OthersUpdate> {
    let since = member.heard;
    if clock == since {
        return None;
    }
    member.heard = clock;
    let Staged {
        rows,
        counts: row_counts,
    } = staged;
    rows.clear();
    row_counts.clear();
    for (row, counts) in global.iter() {
        if !changes[row].changed_for(id, since) {
            continue;
        }
        gate.family
            .others_into(counts, member.contrib.row(row), scratch);
        if gate.downlink != Downlink::Every {
            let slot = global.existing_slot(row).expect("a stored row");
            if !member.is_news(gate, row, slot, scratch) {
                continue;
            }
        }
        rows.push(row as u32);
        row_counts.extend_from_slice(scratch);
    }
    if rows.is_empty() {
        return None;
    }
    let update = OthersUpdate {
        learner: id,
        stamp: clock,
        rows: RowBatch {
            outcomes: scratch.len() as u32,
            rows: rows.clone(),
            counts: row_counts.clone(),
        },
    };
    traffic.count_down(&update);
    Some(update)
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
        let up0 = agg.answer(0).unwrap().unwrap();
        assert_eq!(up0.rows.rows, vec![0, 1]);
        assert_eq!(up0.rows.counts, vec![3.0, 0.0, 1.0, 1.0]);
        let up1 = agg.answer(1).unwrap().unwrap();
        assert_eq!(up1.rows.rows, vec![0], "row 1 changed only by learner 1");
        assert_eq!(up1.rows.counts, vec![2.0, 2.0]);
        assert!(agg.answer(0).unwrap().is_none());
        assert_eq!(agg.traffic().messages_up, 3);
        assert_eq!(agg.traffic().messages_down, 2);
        assert_eq!(agg.traffic().rows_down, 3);
    }

    #[test]
    fn the_doubling_downlink_answers_a_row_at_1_2_4_8_others_observations() {
        let mut agg = Aggregator::new(shape(), 2).with_downlink(Downlink::Doubling(1.0));
        let mut told_at = Vec::new();
        for n in 1..=16u64 {
            agg.receive(&msg(0, n, &[(1, [n as f64, 0.0])])).unwrap();
            if let Some(u) = agg.answer(1).unwrap() {
                assert_eq!(u.rows.counts, vec![n as f64, 0.0]);
                told_at.push(n);
            }
        }
        assert_eq!(told_at, vec![1, 2, 4, 8, 16]);
        // A recovery tells everything, and the doubling goes on from there.
        agg.receive(&msg(0, 17, &[(1, [20.0, 0.0])])).unwrap();
        assert_eq!(agg.recovery(1).unwrap().others.counts, vec![20.0, 0.0]);
        agg.receive(&msg(0, 18, &[(1, [39.0, 0.0])])).unwrap();
        assert!(agg.answer(1).unwrap().is_none());
        agg.receive(&msg(0, 19, &[(1, [40.0, 0.0])])).unwrap();
        assert!(agg.answer(1).unwrap().is_some());
        // Forgetting shrinks what it was told along with the counts.
        agg.decay(0.5);
        agg.receive(&msg(0, 20, &[(1, [39.0, 0.0])])).unwrap();
        assert!(agg.answer(1).unwrap().is_none(), "39 < 2 × 20");
        agg.receive(&msg(0, 21, &[(1, [40.0, 0.0])])).unwrap();
        assert!(agg.answer(1).unwrap().is_some());
    }

    #[test]
    fn the_kl_downlink_tells_a_row_when_it_would_move_the_mean() {
        let theta = 0.01;
        let mut agg = Aggregator::new(shape(), 2)
            .with_downlink(Downlink::Kl(theta))
            .with_prior(0.5);
        // Learner 1 holds [3, 1] of row 1 itself; learner 0's counts grow.
        agg.receive(&msg(1, 1, &[(1, [3.0, 1.0])])).unwrap();
        let kl = |p: [f64; 2], q: [f64; 2]| {
            let (sp, sq) = (p[0] + p[1], q[0] + q[1]);
            (0..2)
                .map(|k| p[k] / sp * ((p[k] / sp) / (q[k] / sq)).ln())
                .sum::<f64>()
        };
        let mut told = [0.0, 0.0];
        let (mut expected, mut got) = (Vec::new(), Vec::new());
        for n in 1..=40u64 {
            let others = [n as f64, 0.0];
            agg.receive(&msg(0, n, &[(1, others)])).unwrap();
            let alpha = |o: [f64; 2]| [0.5 + 3.0 + o[0], 0.5 + 1.0 + o[1]];
            if kl(alpha(others), alpha(told)) > theta {
                expected.push(n);
                told = others;
            }
            if let Some(u) = agg.answer(1).unwrap() {
                assert_eq!(u.rows.counts, others.to_vec());
                got.push(n);
            }
        }
        assert_eq!(got, expected);
        // Told often while the row is young, rarely once it is well known:
        // here at 2, 5, 10 and 20 observations of the others.
        assert_eq!(got, vec![2, 5, 10, 20]);
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
        assert!(agg.answer(0).unwrap().is_none());
    }

    fn shape() -> Shape {
        Shape {
            states: 1,
            actions: 2,
            outcomes: 2,
        }
    }

    /// Everything observable about an aggregator, to show a refusal changed
    /// nothing.
    fn state(agg: &Aggregator) -> String {
        format!("{agg:?}")
    }

    #[test]
    fn refuses_foreign_malformed_and_stale_messages_and_changes_nothing() {
        let mut agg = Aggregator::new(shape(), 1);
        agg.receive(&msg(0, 2, &[(0, [1.0, 2.0])])).unwrap();
        let before = state(&agg);
        let mut short = msg(0, 3, &[(0, [1.0, 2.0])]);
        short.rows.counts.pop();
        let mut three = msg(0, 3, &[]);
        three.rows = RowBatch::new(3);
        three.rows.push(0, &[1.0, 1.0, 1.0]);
        let cases = [
            (msg(3, 3, &[(0, [1.0, 2.0])]), "not a member"),
            (msg(0, 3, &[(9, [1.0, 2.0])]), "row 9"),
            (short, "counts for"),
            (three, "3 outcomes"),
            (msg(0, 3, &[(1, [f64::NAN, 2.0])]), "finite"),
            (msg(0, 3, &[(1, [-1.0, 2.0])]), "≥ 0"),
            (msg(0, 3, &[(1, [1.0, f64::INFINITY])]), "finite"),
            (msg(0, 2, &[(0, [5.0, 5.0])]), "stale"),
            (msg(0, 1, &[(0, [5.0, 5.0])]), "stale"),
        ];
        for (m, words) in cases {
            let e = agg.receive(&m).unwrap_err();
            assert!(e.to_string().contains(words), "{e}");
            assert_eq!(state(&agg), before, "{e} changed the aggregator");
        }
        // A message with one stale and one new row folds the new one only.
        agg.receive(&msg(0, 2, &[(0, [9.0, 9.0])])).unwrap_err();
        let mut mixed = msg(0, 1, &[(0, [9.0, 9.0])]);
        mixed.rows.push(1, &[4.0, 0.0]);
        agg.receive(&mixed).unwrap();
        assert_eq!(agg.global().row(0), Some(&[1.0, 2.0][..]));
        assert_eq!(agg.global().row(1), Some(&[4.0, 0.0][..]));
    }

    #[test]
    fn learners_join_and_leave_while_it_runs() {
        let mut agg = Aggregator::new(shape(), 0);
        let a = agg.join();
        agg.receive(&msg(a, 1, &[(0, [1.0, 2.0])])).unwrap();
        // A latecomer hears everything shared before it joined.
        let b = agg.join();
        assert_eq!((a, b), (0, 1));
        let first = agg.answer(b).unwrap().unwrap();
        assert_eq!(first.rows.counts, vec![1.0, 2.0]);
        assert_eq!(agg.join_as(b), Err(ProtocolError::AlreadyMember(b)));
        agg.join_as(7).unwrap();
        assert_eq!(agg.join(), 8, "fresh ids never reuse one");
        assert_eq!(agg.members().collect::<Vec<_>>(), vec![0, 1, 7, 8]);
        // Leaving keeps the evidence, stops answers and refuses messages.
        agg.leave(a).unwrap();
        assert_eq!(agg.global().row(0), Some(&[1.0, 2.0][..]));
        assert_eq!(agg.answer(a), Err(ProtocolError::NotMember(a)));
        assert_eq!(
            agg.receive(&msg(a, 2, &[(0, [2.0, 2.0])])),
            Err(ProtocolError::NotMember(a))
        );
        assert!(agg.answer_all().iter().all(|u| u.learner != a));
        // It may come back, and is rebuilt from its record.
        agg.join_as(a).unwrap();
        let rec = agg.recovery(a).unwrap();
        assert_eq!((rec.own.counts.clone(), rec.seq), (vec![1.0, 2.0], 1));
        agg.receive(&msg(a, 2, &[(0, [2.0, 2.0])])).unwrap();
        assert_eq!(agg.global().row(0), Some(&[2.0, 2.0][..]));
    }
}
