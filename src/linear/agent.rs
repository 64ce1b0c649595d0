//! The contextual agent an application drives.

use nalgebra::DVector;
use rand::RngExt;
use statrs::distribution::{ContinuousCDF, Normal};

use super::family::{Gaussian, Noise};
use super::policy::LinearPolicy;
use super::posterior::{KeyPosterior, Work};
use crate::error::{Error, ProtocolError, Result};
use crate::model::Shape;
use crate::rng::{LearnerRng, learner_rng};
use crate::share::{
    Aggregator, Downlink, Family, Ledger, OthersUpdate, RowBatch, ShareMessage, ShareRule, Sharing,
};

/// What every contextual agent of an application shares: the arms, the
/// regression, the policy and how it shares. Built by
/// [`LinearConfig::builder`], checked once.
#[derive(Debug, Clone)]
pub struct LinearConfig {
    arms: usize,
    family: Gaussian,
    policy: LinearPolicy,
    share: ShareRule,
    downlink: Downlink,
    check_every: u64,
}

/// Builds a [`LinearConfig`].
#[derive(Debug, Clone)]
pub struct LinearConfigBuilder {
    arms: usize,
    dim: usize,
    ridge: f64,
    noise: Noise,
    policy: LinearPolicy,
    sharing: Sharing,
    check_every: u64,
}

impl LinearConfigBuilder {
    /// The prior precision λ of θ (default 1).
    pub fn ridge(mut self, lambda: f64) -> Self {
        self.ridge = lambda;
        self
    }

    /// What is known of the reward noise (default: variance 1, known).
    pub fn noise(mut self, noise: Noise) -> Self {
        self.noise = noise;
        self
    }

    /// The policy (default linear Thompson sampling).
    pub fn policy(mut self, policy: LinearPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The share rule, with the downlink it implies.
    pub fn share(self, rule: ShareRule) -> Self {
        self.sharing(rule.into())
    }

    /// Both directions of sharing (default `doubling:1` both ways).
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        self
    }

    /// Run the share rule every this many observations (default 1).
    pub fn check_every(mut self, observations: u64) -> Self {
        self.check_every = observations;
        self
    }

    /// The checked configuration, or an [`Error::Invalid`] naming the
    /// setting.
    pub fn build(self) -> Result<LinearConfig> {
        let bad =
            |field: &str, problem: String| Err(Error::invalid("linear config", field, problem));
        if self.arms == 0 || self.arms > u32::MAX as usize / 2 {
            return bad("arms", format!("{}; use 1 or more", self.arms));
        }
        if self.check_every == 0 {
            return bad("check_every", "0; check at least every observation".into());
        }
        let family = Gaussian::new(self.dim, self.ridge, self.noise)?;
        if let Err(p) = self.policy.check() {
            return bad("policy", p.problem().into());
        }
        if let Err(p) = self.sharing.rule.check() {
            return bad("share", p.problem().into());
        }
        if let Err(p) = self.sharing.downlink.check() {
            return bad("downlink", p.problem().into());
        }
        Ok(LinearConfig {
            arms: self.arms,
            family,
            policy: self.policy,
            share: self.sharing.rule,
            downlink: self.sharing.downlink,
            check_every: self.check_every,
        })
    }
}

impl LinearConfig {
    /// A configuration for `arms` arms of `dim` features each, one
    /// regression per arm (disjoint models, as in Li et al. 2010).
    pub fn builder(arms: usize, dim: usize) -> LinearConfigBuilder {
        LinearConfigBuilder {
            arms,
            dim,
            ridge: 1.0,
            noise: Noise::Known { variance: 1.0 },
            policy: LinearPolicy::default(),
            sharing: ShareRule::Doubling(1.0).into(),
            check_every: 1,
        }
    }

    /// The arms.
    pub fn arms(&self) -> usize {
        self.arms
    }

    /// The number of features d.
    pub fn dim(&self) -> usize {
        self.family.dim()
    }

    /// The regression family, with its prior and noise.
    pub fn family(&self) -> &Gaussian {
        &self.family
    }

    /// The policy.
    pub fn policy(&self) -> LinearPolicy {
        self.policy
    }

    /// The share rule.
    pub fn share(&self) -> ShareRule {
        self.share
    }

    /// The key layout the protocol sees: one key per arm, of the family's
    /// width.
    pub fn shape(&self) -> Shape {
        Shape {
            states: 1,
            actions: self.arms,
            outcomes: self.family.width(),
        }
    }

    /// An aggregator for agents of this configuration, with learners
    /// `0..learners` joined, answering by the configured downlink.
    pub fn aggregator(&self, learners: usize) -> Aggregator<Gaussian> {
        Aggregator::with_family(self.shape(), learners, self.family.clone())
            .with_downlink(self.downlink)
    }
}

/// A contextual bandit agent: one Bayesian linear regression per arm, kept
/// apart from the others' evidence as the protocol requires, and factored
/// so a decision costs O(K d²) and an observation O(d²).
///
/// ```
/// use parbayes::linear::{LinearAgent, LinearConfig};
///
/// let config = LinearConfig::builder(3, 2).build()?;
/// let mut aggregator = config.aggregator(0);
/// let mut agent = LinearAgent::new(&config, aggregator.join(), 7)?;
/// for t in 0..200 {
///     let context = [1.0, (t % 5) as f64 / 5.0];
///     let arm = agent.decide(&context)?;
///     // The application's own feedback: arm 2 pays most.
///     let reward = if arm == 2 { 1.0 } else { 0.0 };
///     agent.observe(&context, arm, reward)?;
///     if let Some(message) = agent.share() {
///         aggregator.receive(&message)?;
///     }
/// }
/// assert_eq!(agent.decide(&[1.0, 0.5])?, 2);
/// // Before it leaves, the agent sends what the doubling rule held back.
/// aggregator.receive(&agent.flush().expect("unsent evidence"))?;
/// // Arm 2's statistics: Λ (3 numbers for d = 2), b (2), then n.
/// assert_eq!(aggregator.global().row(2).unwrap()[5], agent.observations(2));
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LinearAgent {
    config: LinearConfig,
    ledger: Ledger<Gaussian>,
    keys: Vec<KeyPosterior>,
    rng: LearnerRng,
    /// The context being decided on or learned from.
    x: DVector<f64>,
    work: Work,
    since_check: u64,
    observations: u64,
}

impl LinearAgent {
    /// Agent `id` of an application, its random stream derived from `seed`
    /// and `id`.
    pub fn new(config: &LinearConfig, id: u32, seed: u64) -> Result<Self> {
        Ok(Self::with_rng(config, id, learner_rng(seed, 0, id)))
    }

    /// Agent `id` drawing from the stream `rng`.
    pub fn with_rng(config: &LinearConfig, id: u32, rng: LearnerRng) -> Self {
        let family = config.family.clone();
        Self {
            ledger: Ledger::with_family(id, config.arms, family.width(), family.clone()),
            keys: vec![KeyPosterior::prior(&family); config.arms],
            work: Work::new(&family),
            x: DVector::zeros(family.dim()),
            config: config.clone(),
            rng,
            since_check: 0,
            observations: 0,
        }
    }

    /// Its id.
    pub fn id(&self) -> u32 {
        self.ledger.learner()
    }

    /// Its configuration.
    pub fn config(&self) -> &LinearConfig {
        &self.config
    }

    /// The ledger: own, sent and others' statistics.
    pub fn ledger(&self) -> &Ledger<Gaussian> {
        &self.ledger
    }

    /// Observations of `arm` in its posterior, its own and the others'.
    pub fn observations(&self, arm: usize) -> f64 {
        let family = self.ledger.family();
        self.ledger
            .combined()
            .row(arm)
            .map_or(0.0, |s| family.mass(s))
    }

    /// The posterior mean of `arm`'s θ.
    pub fn mean(&self, arm: usize) -> Result<&[f64]> {
        check_arm(arm, self.config.arms)?;
        Ok(self.keys[arm].mean().as_slice())
    }

    /// The arm to play in `context` (one feature per dimension).
    pub fn decide(&mut self, context: &[f64]) -> Result<usize> {
        self.load(context)?;
        Ok(self.choose())
    }

    /// Learns that `arm`, played in `context`, earned `reward`. Feedback
    /// may arrive late, in any order, and in batches.
    pub fn observe(&mut self, context: &[f64], arm: usize, reward: f64) -> Result<()> {
        check_arm(arm, self.config.arms)?;
        if !reward.is_finite() {
            return Err(Error::invalid(
                "observation",
                "reward",
                format!("{reward}; rewards are finite"),
            ));
        }
        self.load(context)?;
        self.ledger.observe(arm, (context, reward));
        self.keys[arm].update(&self.x, reward);
        self.since_check += 1;
        self.observations += 1;
        Ok(())
    }

    /// Runs the share rule if `check_every` observations have arrived since
    /// the last check; returns the message for the aggregator, if any.
    pub fn share(&mut self) -> Option<ShareMessage> {
        if self.since_check >= self.config.check_every {
            self.since_check = 0;
            self.ledger.check(self.config.share)
        } else {
            None
        }
    }

    /// Sends every arm whose evidence changed since it was last sent.
    pub fn flush(&mut self) -> Option<ShareMessage> {
        self.since_check = 0;
        self.ledger.check(ShareRule::Always)
    }

    /// Takes the aggregator's word on the others' evidence. A malformed or
    /// misrouted update is refused and changes nothing.
    pub fn absorb(&mut self, update: &OthersUpdate) -> Result<()> {
        self.check_rows(update.learner, &update.rows)?;
        self.ledger.absorb(update);
        for (arm, _) in update.rows.iter() {
            self.refactor(arm);
        }
        Ok(())
    }

    fn refactor(&mut self, arm: usize) {
        self.ledger.combined_alpha_into(arm, &mut self.work.post);
        self.keys[arm].rebuild(self.ledger.family(), &self.work.post);
    }

    fn check_rows(&self, learner: u32, rows: &RowBatch) -> Result<()> {
        if learner != self.id() {
            return Err(ProtocolError::Misrouted {
                meant_for: learner,
                delivered_to: self.id(),
            }
            .into());
        }
        rows.check_with(self.config.shape(), self.ledger.family())
            .map_err(|problem| {
                ProtocolError::Malformed {
                    learner: self.id(),
                    problem,
                }
                .into()
            })
    }

    /// Copies a checked context into the work vector.
    fn load(&mut self, context: &[f64]) -> Result<()> {
        let d = self.config.dim();
        if context.len() != d {
            return Err(Error::invalid(
                "context",
                "features",
                format!("{} features; the agents have {d}", context.len()),
            ));
        }
        if let Some(k) = context.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "context",
                format!("feature {k}"),
                format!("{}; features are finite", context[k]),
            ));
        }
        self.x.as_mut_slice().copy_from_slice(context);
        Ok(())
    }

    /// The arm of highest value for the loaded context, ties at random.
    fn choose(&mut self) -> usize {
        let arms = self.config.arms;
        if let LinearPolicy::EpsilonGreedy { epsilon } = self.config.policy
            && epsilon > 0.0
            && self.rng.random::<f64>() < epsilon
        {
            return self.rng.random_range(0..arms);
        }
        // Bayes-UCB's quantile depends on t alone: once per decision.
        let t = 1.0 + self.observations as f64;
        let z = match self.config.policy {
            LinearPolicy::BayesUcb => Normal::standard().inverse_cdf(1.0 - 1.0 / (t + 1.0)),
            _ => 0.0,
        };
        let mut best = f64::NEG_INFINITY;
        let (mut choice, mut ties) = (0, 0u32);
        for arm in 0..arms {
            let v = self.value(arm, z);
            if v > best {
                (best, choice, ties) = (v, arm, 1);
            } else if v == best {
                ties += 1;
                if self.rng.random_range(0..ties) == 0 {
                    choice = arm;
                }
            }
        }
        choice
    }

    /// The policy's value of `arm` for the loaded context; `z` is
    /// Bayes-UCB's standard normal quantile.
    fn value(&mut self, arm: usize, z: f64) -> f64 {
        let key = &self.keys[arm];
        let family = self.ledger.family();
        let x = &self.x;
        match self.config.policy {
            LinearPolicy::Thompson { scale } => {
                key.sample_value(family, x, scale, &mut self.work, &mut self.rng)
            }
            LinearPolicy::LinUcb { alpha } => {
                key.whiten(x, &mut self.work.solved);
                key.mean_value(x) + alpha * self.work.solved.norm()
            }
            LinearPolicy::BayesUcb => {
                key.whiten(x, &mut self.work.solved);
                let sd = (key.mean_variance(family)).sqrt() * self.work.solved.norm();
                key.mean_value(x) + z * sd
            }
            LinearPolicy::EpsilonGreedy { .. } => key.mean_value(x),
        }
    }
}

fn check_arm(arm: usize, arms: usize) -> Result<()> {
    if arm < arms {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            what: "arm",
            index: arm,
            count: arms,
        })
    }
}
