//! The contextual agent an application drives.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::config::{LinearConfig, LinearModel};
use super::family::Gaussian;
use super::policy::LinearPolicy;
use super::posterior::{KeyPosterior, KeyState, Work};
use crate::error::{Error, ProtocolError, Result};
use crate::model::Shape;
use crate::policy::{Choice, greedy_share};
use crate::rng::{LearnerRng, learner_rng};
use crate::share::{Family, Ledger, OthersUpdate, Recovery, RowBatch, ShareMessage, ShareRule};

/// A contextual bandit agent: Bayesian linear regression (one per arm, or
/// one shared by every arm), kept apart from the others' evidence as the
/// protocol requires, and factored so a decision costs O(K d²) and an
/// observation O(d²), allocating nothing.
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
    /// `retired[arm]`: never chosen until reinstated.
    retired: Vec<bool>,
    rng: LearnerRng,
    /// The context being decided on or learned from.
    context: Vec<f64>,
    /// The policy's value of each arm for the loaded context.
    values: Vec<f64>,
    work: Work,
    since_check: u64,
    observations: u64,
}

/// Everything about a [`LinearAgent`] that its configuration does not fix:
/// what [`LinearAgent::restore`] continues from, draw for draw. Serde, so
/// an application can keep it as JSON, MessagePack or anything else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinearAgentState {
    ledger: Ledger<Gaussian>,
    keys: Vec<KeyState>,
    retired: Vec<bool>,
    rng: LearnerRng,
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
        let family = config.family().clone();
        let (arms, keys) = (config.arms(), config.keys(config.arms()));
        Self {
            ledger: Ledger::with_family(id, keys, family.width(), family.clone()),
            keys: vec![KeyPosterior::prior(&family); keys],
            retired: vec![false; arms],
            work: Work::new(&family),
            context: vec![0.0; config.context_len(arms)],
            values: vec![0.0; arms],
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

    /// The arms it knows, retired ones included.
    pub fn arms(&self) -> usize {
        self.retired.len()
    }

    /// Numbers in the context [`decide`](Self::decide) and
    /// [`observe`](Self::observe) take now: d, or d per arm for a shared θ.
    pub fn context_len(&self) -> usize {
        self.context.len()
    }

    /// The ledger: own, sent and others' statistics.
    pub fn ledger(&self) -> &Ledger<Gaussian> {
        &self.ledger
    }

    /// The key layout its ledger has now (it grows with
    /// [`add_arm`](Self::add_arm) on disjoint models).
    pub fn shape(&self) -> Shape {
        Shape {
            states: 1,
            actions: self.keys.len(),
            outcomes: self.config.family().width(),
        }
    }

    /// Observations in `arm`'s posterior, its own and the others' (for a
    /// shared θ, every arm's).
    pub fn observations(&self, arm: usize) -> f64 {
        let family = self.ledger.family();
        self.ledger
            .combined()
            .row(self.key_of(arm))
            .map_or(0.0, |s| family.mass(s))
    }

    /// The posterior mean of `arm`'s θ (for a shared θ, the one θ).
    pub fn mean(&self, arm: usize) -> Result<&[f64]> {
        self.check_arm(arm)?;
        Ok(self.keys[self.key_of(arm)].mean().as_slice())
    }

    /// The arm to play in `context`: d features for a disjoint model, one
    /// d-vector per arm (row after row) for a shared θ.
    pub fn decide(&mut self, context: &[f64]) -> Result<usize> {
        self.load(context)?;
        Ok(self.choose())
    }

    /// [`decide`](Self::decide), and the probability with which the policy
    /// chose that arm: exact for ε-greedy, greedy, LinUCB and Bayes-UCB
    /// (random ties included), estimated for Thompson sampling by counting
    /// how often the arm wins in [`propensity_draws`] further draws, the
    /// decision's own included, so it is never 0. Those draws advance the
    /// agent's random stream.
    ///
    /// [`propensity_draws`]: super::LinearConfigBuilder::propensity_draws
    ///
    /// ```
    /// use parbayes::linear::{LinearAgent, LinearConfig, LinearPolicy};
    ///
    /// let config = LinearConfig::builder(4, 2)
    ///     .policy(LinearPolicy::EpsilonGreedy { epsilon: 0.2 })
    ///     .build()?;
    /// let mut agent = LinearAgent::new(&config, 0, 1)?;
    /// agent.observe(&[1.0, 0.0], 3, 1.0)?;
    /// let d = agent.decide_with_propensity(&[1.0, 0.0])?;
    /// // Arm 3 is the greedy arm: 0.8 + 0.2 / 4; any other, 0.2 / 4.
    /// let expected = if d.arm == 3 { 0.85 } else { 0.05 };
    /// assert!((d.propensity - expected).abs() < 1e-12 && !d.estimated);
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn decide_with_propensity(&mut self, context: &[f64]) -> Result<Choice> {
        self.load(context)?;
        let arm = self.choose();
        let active = self.in_play() as f64;
        let (propensity, estimated) = match self.config.policy() {
            LinearPolicy::Thompson { .. } => {
                let draws = self.config.propensity_draws();
                let mut wins = 1u32;
                for _ in 0..draws {
                    self.fill_values(0.0);
                    wins += u32::from(self.best_arms().1 == arm);
                }
                (f64::from(wins) / (f64::from(draws) + 1.0), true)
            }
            LinearPolicy::EpsilonGreedy { epsilon } => {
                self.fill_values(0.0);
                let greedy = greedy_share(&self.values, arm);
                (epsilon / active + (1.0 - epsilon) * greedy, false)
            }
            LinearPolicy::LinUcb { .. } | LinearPolicy::BayesUcb => {
                // `choose` left every arm's (deterministic) value behind.
                (greedy_share(&self.values, arm), false)
            }
        };
        Ok(Choice::new(arm, propensity, estimated))
    }

    /// Learns that `arm`, played in `context` (as given to
    /// [`decide`](Self::decide)), earned `reward`. Feedback may arrive
    /// late, in any order, and in batches; a retired arm still learns.
    pub fn observe(&mut self, context: &[f64], arm: usize, reward: f64) -> Result<()> {
        self.check_arm(arm)?;
        if !reward.is_finite() {
            return Err(Error::invalid(
                "observation",
                "reward",
                format!("{reward}; rewards are finite"),
            ));
        }
        self.load(context)?;
        let key = self.key_of(arm);
        let x = &self.context[self.features(arm)];
        self.ledger.observe(key, (x, reward));
        self.work.x.as_mut_slice().copy_from_slice(x);
        self.keys[key].update(&self.work.x, reward, &mut self.work.z);
        self.since_check += 1;
        self.observations += 1;
        Ok(())
    }

    /// Runs the share rule if `check_every` observations have arrived since
    /// the last check; returns the message for the aggregator, if any.
    pub fn share(&mut self) -> Option<ShareMessage> {
        if self.since_check >= self.config.check_every() {
            self.since_check = 0;
            self.ledger.check(self.config.share())
        } else {
            None
        }
    }

    /// Sends every key whose evidence changed since it was last sent.
    pub fn flush(&mut self) -> Option<ShareMessage> {
        self.since_check = 0;
        self.ledger.check(ShareRule::Always)
    }

    /// Every key sent so far, at the statistics last sent, under a new
    /// sequence number: for an aggregator that restarted from an older
    /// snapshot.
    pub fn resend(&mut self) -> Option<ShareMessage> {
        self.ledger.resend()
    }

    /// Takes the aggregator's word on the others' evidence. A malformed or
    /// misrouted update is refused and changes nothing.
    pub fn absorb(&mut self, update: &OthersUpdate) -> Result<()> {
        self.check_rows(update.learner, &update.rows)?;
        self.ledger.absorb(update);
        for (key, _) in update.rows.iter() {
            self.ledger.combined_alpha_into(key, &mut self.work.post);
            self.keys[key].rebuild(self.ledger.family(), &self.work.post);
        }
        Ok(())
    }

    /// Rebuilds the agent's evidence from the aggregator's record of it,
    /// as after a restart: what it last shared becomes its own and sent
    /// statistics, and the others' are current. Evidence it never shared
    /// is gone; its random stream and arms carry on. A record that does not
    /// fit is refused and changes nothing.
    pub fn recover(&mut self, record: &Recovery) -> Result<()> {
        self.check_rows(record.learner, &record.own)?;
        self.check_rows(record.learner, &record.others)?;
        let family = self.config.family();
        self.ledger =
            Ledger::recovered_with(self.keys.len(), family.width(), family.clone(), record);
        for key in 0..self.keys.len() {
            self.ledger.combined_alpha_into(key, &mut self.work.post);
            self.keys[key].rebuild(self.ledger.family(), &self.work.post);
        }
        self.since_check = 0;
        Ok(())
    }

    /// Stops choosing `arm` (its evidence is kept, and feedback for it
    /// still arrives and is learned from) until it is
    /// [reinstated](Self::reinstate). The last active arm cannot retire.
    pub fn retire(&mut self, arm: usize) -> Result<()> {
        self.check_arm(arm)?;
        if !self.retired[arm] && self.in_play() == 1 {
            return Err(Error::invalid(
                "arms",
                format!("arm {arm}"),
                "it is the last active arm; add or reinstate another first",
            ));
        }
        self.retired[arm] = true;
        Ok(())
    }

    /// Chooses `arm` again.
    pub fn reinstate(&mut self, arm: usize) -> Result<()> {
        self.check_arm(arm)?;
        self.retired[arm] = false;
        Ok(())
    }

    /// Whether `arm` is retired.
    pub fn is_retired(&self, arm: usize) -> bool {
        self.retired.get(arm).copied().unwrap_or(false)
    }

    /// Adds an arm, with the prior's posterior for a disjoint model and
    /// the shared θ's otherwise, and returns its index. On a disjoint
    /// model the ledger gains a key: the aggregator must gain it too
    /// ([`Aggregator::add_keys`](crate::share::Aggregator::add_keys)) before
    /// this agent's messages about it are accepted. A shared θ's context
    /// grows by d.
    pub fn add_arm(&mut self) -> usize {
        let family = self.config.family();
        if self.config.model() == LinearModel::Disjoint {
            self.ledger.add_keys(1);
            self.keys.push(KeyPosterior::prior(family));
        }
        self.retired.push(false);
        self.values.push(0.0);
        self.context
            .resize(self.config.context_len(self.retired.len()), 0.0);
        self.retired.len() - 1
    }

    /// The agent's state, for [`restore`](Self::restore).
    pub fn save(&self) -> LinearAgentState {
        LinearAgentState {
            ledger: self.ledger.clone(),
            keys: self.keys.iter().map(KeyPosterior::save).collect(),
            retired: self.retired.clone(),
            rng: self.rng.clone(),
            since_check: self.since_check,
            observations: self.observations,
        }
    }

    /// The agent `state` describes, continuing draw for draw where it was
    /// saved; a state that does not fit `config` (another dimension,
    /// prior, noise or model, a malformed key, an inconsistent ledger) is
    /// refused.
    ///
    /// ```
    /// use parbayes::linear::{LinearAgent, LinearConfig};
    ///
    /// let config = LinearConfig::builder(3, 2).build()?;
    /// let mut agent = LinearAgent::new(&config, 0, 9)?;
    /// agent.observe(&[0.5, 1.0], 1, 0.8)?;
    /// let json = serde_json::to_string(&agent.save()).unwrap();
    /// let mut again = LinearAgent::restore(&config, serde_json::from_str(&json).unwrap())?;
    /// for t in 0..50 {
    ///     let x = [1.0, t as f64 / 50.0];
    ///     assert_eq!(agent.decide(&x)?, again.decide(&x)?);
    /// }
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn restore(config: &LinearConfig, state: LinearAgentState) -> Result<Self> {
        let bad = |problem: String| Err(Error::invalid("linear agent state", "state", problem));
        let family = config.family();
        let arms = state.retired.len();
        if arms == 0 || arms > u32::MAX as usize / 2 {
            return bad(format!("{arms} arms"));
        }
        let keys = config.keys(arms);
        if state.ledger.family() != family {
            return bad(format!(
                "its regression is {:?}; the configuration's is {family:?}",
                state.ledger.family()
            ));
        }
        if state.keys.len() != keys {
            return bad(format!(
                "{} keys for {arms} arms; the model has {keys}",
                state.keys.len()
            ));
        }
        if let Err(p) = state.ledger.check_layout(keys, family.width()) {
            return bad(format!("its ledger: {p}"));
        }
        let restored: std::result::Result<Vec<_>, String> = state
            .keys
            .iter()
            .map(|k| KeyPosterior::restore(family, k))
            .collect();
        let restored = match restored {
            Ok(k) => k,
            Err(p) => return bad(p),
        };
        let mut agent = Self::with_rng(config, state.ledger.learner(), state.rng);
        agent.keys = restored;
        agent.ledger = state.ledger;
        agent.retired = state.retired;
        agent.values = vec![0.0; arms];
        agent.context = vec![0.0; config.context_len(arms)];
        agent.since_check = state.since_check;
        agent.observations = state.observations;
        Ok(agent)
    }

    /// An agent rebuilt from the aggregator's record of it (the run's own,
    /// so not re-checked), drawing from `rng`: what a simulated learner
    /// that crashed restarts as.
    pub(crate) fn recovered(config: &LinearConfig, record: &Recovery, rng: LearnerRng) -> Self {
        let mut agent = Self::with_rng(config, record.learner, rng);
        let family = config.family();
        agent.ledger =
            Ledger::recovered_with(agent.keys.len(), family.width(), family.clone(), record);
        for key in 0..agent.keys.len() {
            agent.ledger.combined_alpha_into(key, &mut agent.work.post);
            agent.keys[key].rebuild(agent.ledger.family(), &agent.work.post);
        }
        agent
    }

    /// How many more observations the agent can make with its share checks
    /// surely sending nothing (see [`Ledger::quiet_observations`]).
    pub fn quiet_observations(&self) -> u64 {
        self.ledger.quiet_observations(self.config.share())
    }

    /// Its random stream, which a simulated task draws from too.
    pub(crate) fn rng_mut(&mut self) -> &mut LearnerRng {
        &mut self.rng
    }

    /// Arms not retired.
    fn in_play(&self) -> usize {
        self.retired.iter().filter(|r| !**r).count()
    }

    fn key_of(&self, arm: usize) -> usize {
        match self.config.model() {
            LinearModel::Disjoint => arm,
            LinearModel::Shared => 0,
        }
    }

    /// Where `arm`'s features are in the loaded context.
    fn features(&self, arm: usize) -> std::ops::Range<usize> {
        let d = self.config.dim();
        match self.config.model() {
            LinearModel::Disjoint => 0..d,
            LinearModel::Shared => arm * d..(arm + 1) * d,
        }
    }

    fn check_arm(&self, arm: usize) -> Result<()> {
        if arm < self.arms() {
            Ok(())
        } else {
            Err(Error::OutOfRange {
                what: "arm",
                index: arm,
                count: self.arms(),
            })
        }
    }

    fn check_rows(&self, learner: u32, rows: &RowBatch) -> Result<()> {
        if learner != self.id() {
            return Err(ProtocolError::Misrouted {
                meant_for: learner,
                delivered_to: self.id(),
            }
            .into());
        }
        rows.check_with(self.shape(), self.ledger.family())
            .map_err(|problem| {
                ProtocolError::Malformed {
                    learner: self.id(),
                    problem,
                }
                .into()
            })
    }

    /// Copies a checked context into the agent's buffer.
    fn load(&mut self, context: &[f64]) -> Result<()> {
        let want = self.context.len();
        if context.len() != want {
            let problem = match self.config.model() {
                LinearModel::Disjoint => {
                    format!("{} features; the agents have {want}", context.len())
                }
                LinearModel::Shared => format!(
                    "{} numbers; {} arms × {} features make {want}",
                    context.len(),
                    self.arms(),
                    self.config.dim()
                ),
            };
            return Err(Error::invalid("context", "features", problem));
        }
        if let Some(k) = context.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "context",
                format!("feature {k}"),
                format!("{}; features are finite", context[k]),
            ));
        }
        self.context.copy_from_slice(context);
        Ok(())
    }

    /// The arm to play for the loaded context.
    fn choose(&mut self) -> usize {
        if let LinearPolicy::EpsilonGreedy { epsilon } = self.config.policy()
            && epsilon > 0.0
            && self.rng.random::<f64>() < epsilon
        {
            let active = self.in_play();
            let k = self.rng.random_range(0..active);
            return (0..self.arms())
                .filter(|a| !self.retired[*a])
                .nth(k)
                .expect("k < the active arms");
        }
        // Bayes-UCB's quantile depends on t alone: once per decision.
        let t = 1.0 + self.observations as f64;
        let z = match self.config.policy() {
            LinearPolicy::BayesUcb => Normal::standard().inverse_cdf(1.0 - 1.0 / (t + 1.0)),
            _ => 0.0,
        };
        self.fill_values(z);
        self.best_arms().1
    }

    /// The highest value's ties, and one of them at random.
    fn best_arms(&mut self) -> (u32, usize) {
        let mut best = f64::NEG_INFINITY;
        let (mut choice, mut ties) = (0, 0u32);
        for (arm, &v) in self.values.iter().enumerate() {
            if self.retired[arm] {
                continue;
            }
            if v > best {
                (best, choice, ties) = (v, arm, 1);
            } else if v == best {
                ties += 1;
                if self.rng.random_range(0..ties) == 0 {
                    choice = arm;
                }
            }
        }
        (ties, choice)
    }

    /// The policy's value of every arm for the loaded context, −∞ if
    /// retired (ε-greedy's is the mean; its exploration is drawn before);
    /// `z` is Bayes-UCB's standard normal quantile.
    fn fill_values(&mut self, z: f64) {
        let family = self.ledger.family();
        let policy = self.config.policy();
        if let (LinearModel::Shared, LinearPolicy::Thompson { scale }) =
            (self.config.model(), policy)
        {
            // One θ̃ for every arm: a decision is one draw.
            self.keys[0].sample_theta(family, scale, &mut self.work, &mut self.rng);
        }
        for arm in 0..self.retired.len() {
            if self.retired[arm] {
                self.values[arm] = f64::NEG_INFINITY;
                continue;
            }
            let (key, range) = (self.key_of(arm), self.features(arm));
            let key = &self.keys[key];
            let w = &mut self.work;
            w.x.as_mut_slice().copy_from_slice(&self.context[range]);
            self.values[arm] = match (self.config.model(), policy) {
                (LinearModel::Shared, LinearPolicy::Thompson { .. }) => w.solved.dot(&w.x),
                (_, LinearPolicy::Thompson { scale }) => {
                    let (kx, solved, zs) = (&w.x, &mut w.solved, &mut w.z);
                    key.sample_value(family, kx, scale, solved, zs, &mut self.rng)
                }
                (_, LinearPolicy::LinUcb { alpha }) => {
                    key.whiten(&w.x, &mut w.solved);
                    key.mean_value(&w.x) + alpha * w.solved.norm()
                }
                (_, LinearPolicy::BayesUcb) => {
                    key.whiten(&w.x, &mut w.solved);
                    let sd = key.mean_variance(family).sqrt() * w.solved.norm();
                    key.mean_value(&w.x) + z * sd
                }
                (_, LinearPolicy::EpsilonGreedy { .. }) => key.mean_value(&w.x),
            };
        }
    }
}
