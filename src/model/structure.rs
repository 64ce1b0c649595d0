use std::sync::Arc;

use super::{Mdp, Shape};
use crate::error::{Error, Result};

/// The largest reward magnitude a task may have: values up to
/// `MAX_REWARD / (1 − γ)` stay far from overflow.
pub const MAX_REWARD: f64 = 1e12;

/// A learner's structure is stored densely, one entry per outcome of every
/// row; larger ones are refused before anything of that size is allocated.
pub const MAX_STRUCTURE_ENTRIES: u64 = 4_000_000;

/// What a learner knows about one outcome of a (state, action) pair: where
/// it leads, what it pays, and whether it ends the episode. Only the
/// outcome's probability is unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Known {
    /// The state the outcome leads to.
    pub next: usize,
    /// The reward it pays.
    pub reward: f64,
    /// Whether it ends the episode (nothing is bootstrapped after it).
    pub terminal: bool,
}

/// What a learner knows of its task before it has seen anything: the
/// shape, the discount, and the [`Known`] meaning of every outcome of every
/// (state, action) row. The outcome probabilities are what it learns.
///
/// Checked once when built; cheap to clone (agents of one task share one
/// copy).
///
/// ```
/// use parbayes::model::{Known, Structure};
///
/// let news = Structure::bandit(20)?;
/// assert_eq!((news.shape().actions, news.shape().outcomes), (20, 2));
/// assert_eq!(news.reward(0, 7, 1), 1.0, "a click pays 1");
///
/// // A two-state chain: action 0 stays, action 1 moves on; arriving in
/// // state 1 pays 1 and ends the episode.
/// let chain = Structure::new(2, 2, 2, 0.9, |s, a, o| Known {
///     next: o,
///     reward: if o == 1 && s == 0 { 1.0 } else { 0.0 },
///     terminal: o == 1,
/// })?;
/// assert!(chain.known(0, 1, 1).terminal);
/// assert!(Structure::new(2, 2, 2, 1.0, |_, _, o| Known { next: o, reward: 0.0, terminal: false }).is_err());
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Structure {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shape: Shape,
    /// One entry per outcome of every row, probabilities zero.
    frame: Mdp,
    /// Every row's rewards by outcome, row after row: what a one-step
    /// decision reads, one slice per action.
    rewards: Vec<f64>,
    gamma: f64,
    /// Two outcomes paying 0 and 1 in every row, and γ = 0.
    bernoulli: bool,
}

impl Structure {
    /// `states × actions` rows of `outcomes` outcomes each, planned with
    /// discount `gamma` in `[0, 1)` (0: one-step decisions); `known(s, a, o)`
    /// says what outcome `o` of (`s`, `a`) means. Every `next` must be a
    /// state and every reward finite.
    pub fn new(
        states: usize,
        actions: usize,
        outcomes: usize,
        gamma: f64,
        known: impl Fn(usize, usize, usize) -> Known,
    ) -> Result<Self> {
        let shape = Shape {
            states,
            actions,
            outcomes,
        };
        Self::with_start(shape, gamma, None, known)
    }

    /// A Bernoulli bandit: one state, `arms` actions, outcome 1 a success
    /// (a click) that pays 1, outcome 0 a failure that pays 0.
    pub fn bandit(arms: usize) -> Result<Self> {
        Self::new(1, arms, 2, 0.0, |_, _, o| Known {
            next: 0,
            reward: o as f64,
            terminal: false,
        })
    }

    /// A structure of `shape` whose start distribution, where given, is
    /// checked here; [`Structure::of`] builds one from a task.
    pub(crate) fn with_start(
        shape: Shape,
        gamma: f64,
        start: Option<Vec<f64>>,
        known: impl Fn(usize, usize, usize) -> Known,
    ) -> Result<Self> {
        let bad = |field: &str, problem: String| Err(Error::invalid("structure", field, problem));
        let Shape {
            states,
            actions,
            outcomes,
        } = shape;
        for (field, n) in [
            ("states", states),
            ("actions", actions),
            ("outcomes", outcomes),
        ] {
            if n == 0 {
                return bad(field, "0; a task needs at least one".into());
            }
        }
        let entries = (states as u64)
            .saturating_mul(actions as u64)
            .saturating_mul(outcomes as u64);
        if entries > MAX_STRUCTURE_ENTRIES {
            return bad(
                "states",
                format!(
                    "{states} states × {actions} actions × {outcomes} outcomes is {entries} \
                     entries; at most {MAX_STRUCTURE_ENTRIES}"
                ),
            );
        }
        if let Err(p) = super::check_gamma(gamma) {
            return bad("gamma", p);
        }
        let mut problem = None;
        let start = start.unwrap_or_else(|| vec![1.0 / states as f64; states]);
        let frame = Mdp::dense(shape, start, |s, a, o| {
            let k = known(s, a, o);
            if problem.is_none()
                && (k.next >= states || !(-MAX_REWARD..=MAX_REWARD).contains(&k.reward))
            {
                problem = Some(format!(
                    "state {s}, action {a}, outcome {o}: {k:?}; next must be below {states} \
                     and the reward within ±{MAX_REWARD:e}"
                ));
            }
            (k.next, k.reward, k.terminal)
        });
        if let Some(p) = problem {
            return bad("known", p);
        }
        let bernoulli = gamma == 0.0
            && outcomes == 2
            && (0..shape.rows()).all(|r| frame.dense_reward(r, 0) == 0.0)
            && (0..shape.rows()).all(|r| frame.dense_reward(r, 1) == 1.0);
        let rewards = (0..shape.rows())
            .flat_map(|r| (0..outcomes).map(move |o| (r, o)))
            .map(|(r, o)| frame.dense_reward(r, o))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                shape,
                frame,
                rewards,
                gamma,
                bernoulli,
            }),
        })
    }

    /// States, actions and outcomes.
    #[inline]
    pub fn shape(&self) -> Shape {
        self.inner.shape
    }

    /// The discount; 0 means one-step decisions.
    pub fn gamma(&self) -> f64 {
        self.inner.gamma
    }

    /// What outcome `o` of (`state`, `action`) means.
    ///
    /// # Panics
    ///
    /// If an index is out of range, like slice indexing; an
    /// [`Agent`](crate::agent::Agent) checks what an application gives it.
    pub fn known(&self, state: usize, action: usize, o: usize) -> Known {
        let t = self
            .inner
            .frame
            .transitions(self.shape().row(state, action))
            .nth(o)
            .expect("a dense frame lists every outcome");
        Known {
            next: t.next,
            reward: t.reward,
            terminal: t.terminal,
        }
    }

    /// The reward of outcome `o` of (`state`, `action`); panics if an index
    /// is out of range.
    #[inline]
    pub fn reward(&self, state: usize, action: usize, o: usize) -> f64 {
        self.rewards(self.shape().row(state, action))[o]
    }

    /// The rewards of `row`'s outcomes, in outcome order.
    #[inline]
    pub fn rewards(&self, row: usize) -> &[f64] {
        let o = self.inner.shape.outcomes;
        &self.inner.rewards[row * o..(row + 1) * o]
    }

    /// The planning frame: one entry per outcome of every row, in outcome
    /// order, probabilities zero.
    pub fn frame(&self) -> &Mdp {
        &self.inner.frame
    }

    /// Whether every row has two outcomes paying 0 and 1 and γ = 0: a
    /// Bernoulli bandit, the domain of Bayes-UCB.
    pub fn is_bernoulli(&self) -> bool {
        self.inner.bernoulli
    }
}
