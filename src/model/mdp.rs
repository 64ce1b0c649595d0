use std::sync::Arc;

use super::Shape;
use crate::error::{Error, Result};

/// One possible result of taking an action: which outcome the learner sees,
/// where it lands, what it earns, and whether the episode ends there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The outcome the learner observes.
    pub outcome: usize,
    /// The state it leads to.
    pub next: usize,
    /// Its probability.
    pub prob: f64,
    /// The reward it pays.
    pub reward: f64,
    /// A terminal transition ends the episode: nothing is bootstrapped after it.
    pub terminal: bool,
}

/// A tabular MDP with explicit transition lists, row by row (compressed
/// sparse rows): the true model of a task, or a learner's sampled or mean
/// model with one entry per outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Mdp {
    shape: Shape,
    /// Everything but the probabilities, shared by clones: a thousand
    /// learners planning on the same task hold one copy.
    frame: Arc<Frame>,
    prob: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Frame {
    /// Initial state distribution.
    start: Vec<f64>,
    /// Row `r`'s entries are `offsets[r]..offsets[r + 1]`.
    offsets: Vec<usize>,
    outcome: Vec<u32>,
    next: Vec<u32>,
    reward: Vec<f64>,
    terminal: Vec<bool>,
    /// Row `r`'s first next state where its entries lead, in order, to
    /// consecutive non-terminal states (every row of a GridWorld posterior
    /// and of the VM task does), else [`NOT_A_RUN`]: such a row's future is
    /// one contiguous dot product.
    run_start: Vec<u32>,
    /// How many rows are such runs.
    runs: Runs,
}

/// A row whose next states are not one consecutive run.
const NOT_A_RUN: u32 = u32::MAX;

/// How many of a model's rows lead to consecutive states ([`Mdp::runs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runs {
    /// Every row: a posterior model over all cells, the VM task.
    Every,
    /// No row: the true GridWorld, most tabular models.
    None,
    /// Some rows.
    Some,
}

/// How close two probability sums must be to 1.
pub const PROBABILITY_TOLERANCE: f64 = 1e-9;

impl Mdp {
    /// A model from each row's transitions, in row order. Every row must be
    /// non-empty with probabilities that are non-negative and sum to 1, and
    /// every index must be in range; the start distribution likewise.
    pub fn new(shape: Shape, start: Vec<f64>, rows: &[Vec<Transition>]) -> Result<Self> {
        let bad = |field: String, problem: String| Err(Error::invalid("model", field, problem));
        if rows.len() != shape.rows() {
            return bad(
                "rows".into(),
                format!(
                    "{} rows for {} states × {} actions",
                    rows.len(),
                    shape.states,
                    shape.actions
                ),
            );
        }
        if let Err(problem) = check_distribution(&start, shape.states) {
            return bad("start".into(), problem);
        }
        let entries = rows.iter().map(Vec::len).sum();
        let mut mdp = Builder::with_capacity(shape, start, entries);
        for (r, row) in rows.iter().enumerate() {
            let total: f64 = row.iter().map(|t| t.prob).sum();
            if row.is_empty() || (total - 1.0).abs() > PROBABILITY_TOLERANCE {
                return bad(
                    format!("row {r}"),
                    format!("probabilities sum to {total}, not 1"),
                );
            }
            for t in row {
                if !(0.0..=1.0).contains(&t.prob)
                    || t.outcome >= shape.outcomes
                    || t.next >= shape.states
                    || !t.reward.is_finite()
                {
                    return bad(format!("row {r}"), format!("invalid transition {t:?}"));
                }
                mdp.push(t);
            }
            mdp.end_row();
        }
        Ok(mdp.build())
    }

    /// A model with one entry per outcome in every row, in outcome order, all
    /// probabilities zero: the frame a learner writes sampled or mean rows
    /// into. `known(s, a, o)` gives the known `(next, reward, terminal)`.
    pub fn dense(
        shape: Shape,
        start: Vec<f64>,
        mut known: impl FnMut(usize, usize, usize) -> (usize, f64, bool),
    ) -> Self {
        let mut mdp = Builder::with_capacity(shape, start, shape.rows() * shape.outcomes);
        for s in 0..shape.states {
            for a in 0..shape.actions {
                for o in 0..shape.outcomes {
                    let (next, reward, terminal) = known(s, a, o);
                    mdp.push(&Transition {
                        outcome: o,
                        next,
                        prob: 0.0,
                        reward,
                        terminal,
                    });
                }
                mdp.end_row();
            }
        }
        mdp.build()
    }

    /// Sets every row's probabilities with `fill(row, probs)`.
    pub fn with_probs(mut self, fill: impl Fn(usize, &mut [f64])) -> Self {
        for row in 0..self.shape.rows() {
            fill(row, self.probs_mut(row));
        }
        self
    }

    /// States, actions, outcomes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The initial state distribution.
    pub fn start(&self) -> &[f64] {
        &self.frame.start
    }

    /// Draws a state from the initial distribution.
    pub fn sample_start<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> usize {
        use rand::RngExt;
        let start = &self.frame.start;
        let mut u = rng.random::<f64>();
        for (s, p) in start.iter().enumerate() {
            u -= p;
            if u < 0.0 {
                return s;
            }
        }
        // Rounding left u ≥ 0: the last state with any mass.
        start.iter().rposition(|p| *p > 0.0).unwrap_or(0)
    }

    /// How many transitions the model lists.
    pub fn entries(&self) -> usize {
        self.prob.len()
    }

    /// Row `row`'s transitions.
    pub fn transitions(&self, row: usize) -> impl Iterator<Item = Transition> + '_ {
        (self.frame.offsets[row]..self.frame.offsets[row + 1]).map(|k| Transition {
            outcome: self.frame.outcome[k] as usize,
            next: self.frame.next[k] as usize,
            prob: self.prob[k],
            reward: self.frame.reward[k],
            terminal: self.frame.terminal[k],
        })
    }

    /// Row `row`'s probabilities, to overwrite; for a [`Mdp::dense`] model,
    /// indexed by outcome.
    #[inline]
    pub fn probs_mut(&mut self, row: usize) -> &mut [f64] {
        &mut self.prob[self.frame.offsets[row]..self.frame.offsets[row + 1]]
    }

    /// The reward of outcome `o` of `row` in a [`Mdp::dense`] model.
    #[inline]
    pub(crate) fn dense_reward(&self, row: usize, o: usize) -> f64 {
        self.frame.reward[self.frame.offsets[row] + o]
    }

    /// Draws a transition of `row` with one uniform number.
    #[inline]
    pub fn sample(&self, row: usize, u: f64) -> Transition {
        let (lo, hi) = (self.frame.offsets[row], self.frame.offsets[row + 1]);
        let mut left = u;
        let mut k = lo;
        // Falls through to the last entry when rounding leaves `left` ≥ 0.
        while k + 1 < hi {
            left -= self.prob[k];
            if left < 0.0 {
                break;
            }
            k += 1;
        }
        Transition {
            outcome: self.frame.outcome[k] as usize,
            next: self.frame.next[k] as usize,
            prob: self.prob[k],
            reward: self.frame.reward[k],
            terminal: self.frame.terminal[k],
        }
    }

    /// Writes row `row`'s outcome distribution (entries with the same
    /// outcome summed) into `out`.
    pub fn outcome_probs_into(&self, row: usize, out: &mut [f64]) {
        out.fill(0.0);
        for k in self.frame.offsets[row]..self.frame.offsets[row + 1] {
            out[self.frame.outcome[k] as usize] += self.prob[k];
        }
    }

    /// The expected immediate reward `Σ p · reward` of every row.
    pub fn expected_rewards_into(&self, out: &mut [f64]) {
        for (r, x) in out.iter_mut().enumerate() {
            let span = self.frame.offsets[r]..self.frame.offsets[r + 1];
            *x = self.prob[span.clone()]
                .iter()
                .zip(&self.frame.reward[span])
                .map(|(p, r)| p * r)
                .sum();
        }
    }

    /// `Σ p · v[next]` of `row` over its non-terminal transitions: what the
    /// row bootstraps from.
    #[inline]
    pub fn future(&self, row: usize, v: &[f64]) -> f64 {
        if self.frame.run_start[row] != NOT_A_RUN {
            self.future_of_run(row, v)
        } else {
            self.future_of_scattered(row, v)
        }
    }

    /// Which rows' futures are contiguous dot products: value iteration
    /// picks its inner loop by it, since one loop that can take either
    /// path compiles to slower code for both (the true GridWorld, whose
    /// rows are scattered, solved 1.7× slower in it).
    pub(crate) fn runs(&self) -> Runs {
        self.frame.runs
    }

    /// [`Mdp::future`] of a row whose entries lead to consecutive states.
    #[inline]
    pub(crate) fn future_of_run(&self, row: usize, v: &[f64]) -> f64 {
        let (from, to) = (self.frame.offsets[row], self.frame.offsets[row + 1]);
        let first = self.frame.run_start[row] as usize;
        dot(&self.prob[from..to], &v[first..first + (to - from)])
    }

    /// [`Mdp::future`] of any row, entry by entry.
    #[inline]
    pub(crate) fn future_of_scattered(&self, row: usize, v: &[f64]) -> f64 {
        let mut total = 0.0;
        for k in self.frame.offsets[row]..self.frame.offsets[row + 1] {
            if !self.frame.terminal[k] {
                total += self.prob[k] * v[self.frame.next[k] as usize];
            }
        }
        total
    }

    /// `Σ_s start[s] · v[s]`.
    pub fn start_value(&self, v: &[f64]) -> f64 {
        self.frame.start.iter().zip(v).map(|(p, x)| p * x).sum()
    }
}

/// Collects rows in order into an [`Mdp`].
/// `Σ pᵢ · vᵢ` in four interleaved partial sums, which the compiler keeps
/// in vector registers: value iteration's inner loop.
#[inline]
fn dot(p: &[f64], v: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (p4, p_rest) = p.split_at(p.len() / 4 * 4);
    let (v4, v_rest) = v.split_at(p4.len());
    for (pc, vc) in p4.chunks_exact(4).zip(v4.chunks_exact(4)) {
        for i in 0..4 {
            acc[i] += pc[i] * vc[i];
        }
    }
    let tail: f64 = p_rest.iter().zip(v_rest).map(|(p, v)| p * v).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

struct Builder {
    shape: Shape,
    frame: Frame,
    prob: Vec<f64>,
}

impl Builder {
    fn with_capacity(shape: Shape, start: Vec<f64>, entries: usize) -> Self {
        let mut offsets = Vec::with_capacity(shape.rows() + 1);
        offsets.push(0);
        Self {
            shape,
            frame: Frame {
                start,
                offsets,
                outcome: Vec::with_capacity(entries),
                next: Vec::with_capacity(entries),
                reward: Vec::with_capacity(entries),
                terminal: Vec::with_capacity(entries),
                run_start: Vec::with_capacity(shape.rows()),
                runs: Runs::Some,
            },
            prob: Vec::with_capacity(entries),
        }
    }

    fn push(&mut self, t: &Transition) {
        self.frame.outcome.push(t.outcome as u32);
        self.frame.next.push(t.next as u32);
        self.frame.reward.push(t.reward);
        self.frame.terminal.push(t.terminal);
        self.prob.push(t.prob);
    }

    fn end_row(&mut self) {
        let f = &mut self.frame;
        let from = f.offsets[f.offsets.len() - 1];
        let to = self.prob.len();
        let first = f.next.get(from).copied().unwrap_or(NOT_A_RUN);
        let run =
            (from..to).all(|k| !f.terminal[k] && f.next[k] as usize == first as usize + (k - from));
        f.run_start
            .push(if run && to > from { first } else { NOT_A_RUN });
        f.offsets.push(to);
    }

    fn build(mut self) -> Mdp {
        let f = &mut self.frame;
        f.runs = match f.run_start.iter().filter(|s| **s != NOT_A_RUN).count() {
            0 => Runs::None,
            n if n == f.run_start.len() => Runs::Every,
            _ => Runs::Some,
        };
        Mdp {
            shape: self.shape,
            frame: Arc::new(self.frame),
            prob: self.prob,
        }
    }
}

/// Checks a discount factor: γ in `[0, 1)` (0 for one-step decisions). The
/// one rule every task, structure and command line that takes γ applies.
pub fn check_gamma(gamma: f64) -> std::result::Result<f64, String> {
    if (0.0..1.0).contains(&gamma) {
        Ok(gamma)
    } else {
        Err(format!("{gamma} is outside [0, 1)"))
    }
}

/// Checks that `p` is a distribution over `n` items.
pub fn check_distribution(p: &[f64], n: usize) -> std::result::Result<(), String> {
    if p.len() != n {
        return Err(format!("{} probabilities for {n} states", p.len()));
    }
    if let Some((i, x)) = p
        .iter()
        .enumerate()
        .find(|(_, x)| !(**x >= 0.0 && x.is_finite()))
    {
        return Err(format!(
            "entry {i} is {x}; probabilities must be finite and ≥ 0"
        ));
    }
    let total: f64 = p.iter().sum();
    if (total - 1.0).abs() > PROBABILITY_TOLERANCE {
        return Err(format!(
            "probabilities sum to {total}, not 1 (±{PROBABILITY_TOLERANCE:e})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(outcome: usize, prob: f64, reward: f64) -> Transition {
        Transition {
            outcome,
            next: outcome,
            prob,
            reward,
            terminal: false,
        }
    }

    #[test]
    fn rejects_bad_rows() {
        let shape = Shape {
            states: 2,
            actions: 1,
            outcomes: 2,
        };
        let ok = vec![vec![t(0, 0.5, 0.0), t(1, 0.5, 1.0)], vec![t(1, 1.0, 0.0)]];
        assert!(Mdp::new(shape, vec![1.0, 0.0], &ok).is_ok());
        let short = vec![vec![t(0, 0.5, 0.0), t(1, 0.4, 1.0)], vec![t(1, 1.0, 0.0)]];
        assert!(Mdp::new(shape, vec![1.0, 0.0], &short).is_err());
        let out_of_range = vec![vec![t(2, 1.0, 0.0)], vec![t(1, 1.0, 0.0)]];
        assert!(Mdp::new(shape, vec![1.0, 0.0], &out_of_range).is_err());
        assert!(Mdp::new(shape, vec![0.5, 0.4], &ok).is_err());
        assert!(Mdp::new(shape, vec![1.0, 0.0], &ok[..1]).is_err());
    }

    #[test]
    fn a_consecutive_row_s_future_is_the_plain_sum() {
        // Row 0 runs over states 1, 2, 3, 4, 5 (a contiguous dot product);
        // row 1 skips a state and row 2 ends in a terminal: the general loop.
        let shape = Shape {
            states: 9,
            actions: 1,
            outcomes: 5,
        };
        let entry = |outcome, next, prob, terminal| Transition {
            outcome,
            next,
            prob,
            reward: 0.0,
            terminal,
        };
        let p = [0.1, 0.15, 0.2, 0.25, 0.3];
        let mut rows = vec![
            (0..5).map(|o| entry(o, o + 1, p[o], false)).collect(),
            (0..5).map(|o| entry(o, 2 * o, p[o], false)).collect(),
            (0..5).map(|o| entry(o, o + 1, p[o], o == 4)).collect(),
        ];
        rows.extend((3..9).map(|s| vec![entry(0, s, 1.0, false)]));
        let mut start = vec![0.0; 9];
        start[0] = 1.0;
        let m = Mdp::new(shape, start, &rows).unwrap();
        assert_eq!(m.frame.run_start[..3], [1, NOT_A_RUN, NOT_A_RUN]);
        assert_eq!(m.runs(), Runs::Some);
        let two = Shape {
            states: 2,
            actions: 1,
            outcomes: 2,
        };
        let ends = |mut t: Transition| {
            t.terminal = true;
            t
        };
        let consecutive = [vec![t(0, 0.5, 0.0), t(1, 0.5, 1.0)], vec![t(1, 1.0, 0.0)]];
        let scattered = [
            vec![ends(t(0, 0.5, 0.0)), t(1, 0.5, 1.0)],
            vec![ends(t(1, 1.0, 0.0))],
        ];
        let runs = |rows: &[Vec<Transition>]| Mdp::new(two, vec![1.0, 0.0], rows).unwrap().runs();
        assert_eq!(runs(&consecutive), Runs::Every);
        assert_eq!(runs(&scattered), Runs::None);
        let v: Vec<f64> = (0..9).map(|s| 1.0 / (s as f64 + 0.7)).collect();
        let plain = |next: &dyn Fn(usize) -> usize, last: usize| -> f64 {
            (0..last).map(|o| p[o] * v[next(o)]).sum()
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * b.abs();
        assert!(close(m.future(0, &v), plain(&|o| o + 1, 5)));
        assert!(close(m.future(1, &v), plain(&|o| 2 * o, 5)));
        assert!(close(m.future(2, &v), plain(&|o| o + 1, 4)));
        assert!(close(dot(&[2.0; 7], &[0.5; 7]), 7.0));
    }

    #[test]
    fn samples_by_cumulative_probability() {
        let shape = Shape {
            states: 3,
            actions: 1,
            outcomes: 3,
        };
        let rows = vec![
            vec![t(0, 0.2, 0.0), t(1, 0.5, 0.0), t(2, 0.3, 0.0)],
            vec![t(1, 1.0, 0.0)],
            vec![t(2, 1.0, 0.0)],
        ];
        let m = Mdp::new(shape, vec![1.0, 0.0, 0.0], &rows).unwrap();
        assert_eq!(m.sample(0, 0.0).outcome, 0);
        assert_eq!(m.sample(0, 0.19).outcome, 0);
        assert_eq!(m.sample(0, 0.21).outcome, 1);
        assert_eq!(m.sample(0, 0.71).outcome, 2);
        assert_eq!(m.sample(0, 1.0).outcome, 2);
        let mut out = [0.0; 3];
        m.outcome_probs_into(0, &mut out);
        assert_eq!(out, [0.2, 0.5, 0.3]);
    }
}
