//! The agent an application drives: a learner without an environment.
//!
//! The application asks it for a decision, tells it what happened whenever
//! the feedback arrives (late, out of order, in batches), and carries its
//! share messages to an [`Aggregator`] and the
//! aggregator's answers back. A simulated [`Learner`](crate::learner::Learner)
//! is an agent plus a task, so experiments and applications run one code
//! path.

use crate::error::{Error, ProtocolError, Result};
use crate::model::{Shape, Structure};
use crate::policy::{Choice, Decision, PlanState, Planner, Policy, PosteriorRows, Replan, Scratch};
use crate::rng::{LearnerRng, learner_rng};
use crate::share::{
    Aggregator, Downlink, Ledger, OthersUpdate, Recovery, ShareMessage, ShareRule, Sharing,
};

/// The smallest prior pseudo-count α₀: below it, sums of pseudo-counts
/// lose their meaning in floating point.
pub const MIN_PRIOR: f64 = 1e-6;
/// The largest prior pseudo-count α₀.
pub const MAX_PRIOR: f64 = 1e6;

/// How an agent learns, decides and shares; checked once, by
/// [`AgentConfig::builder`].
///
/// ```
/// use parbayes::agent::AgentConfig;
/// use parbayes::policy::Policy;
/// use parbayes::share::ShareRule;
///
/// let config = AgentConfig::builder()
///     .policy(Policy::EpsilonGreedy { epsilon: 0.1 })
///     .share(ShareRule::Periodic(100))
///     .build()?;
/// assert_eq!(config.share(), ShareRule::Periodic(100));
/// assert!(AgentConfig::builder().prior(-1.0).build().is_err());
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct AgentConfig {
    prior: f64,
    forgetting: f64,
    policy: Policy,
    share: ShareRule,
    downlink: Downlink,
    check_every: u64,
    replan: Replan,
    propensity_draws: u32,
}

/// The derived form, but `propensity_draws` only where it is not the
/// default: a run's fingerprint hashes this text, and the setting (which
/// no simulated learner uses) came after runs were fingerprinted.
impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("AgentConfig");
        d.field("prior", &self.prior)
            .field("forgetting", &self.forgetting)
            .field("policy", &self.policy)
            .field("share", &self.share)
            .field("downlink", &self.downlink)
            .field("check_every", &self.check_every)
            .field("replan", &self.replan);
        if self.propensity_draws != AgentConfig::default().propensity_draws {
            d.field("propensity_draws", &self.propensity_draws);
        }
        d.finish()
    }
}

/// Builds an [`AgentConfig`]; every setting has a default.
#[derive(Debug, Clone)]
pub struct AgentConfigBuilder {
    config: AgentConfig,
}

impl Default for AgentConfig {
    /// A uniform prior (α₀ = 1), no forgetting, posterior sampling, the
    /// paper's `kl:0.01` rule checked after every observation, re-planning
    /// every episode.
    fn default() -> Self {
        Self {
            prior: 1.0,
            forgetting: 1.0,
            policy: Policy::PosteriorSampling,
            share: ShareRule::Kl(0.01),
            downlink: Downlink::Every,
            check_every: 1,
            replan: Replan::EveryTrial,
            propensity_draws: 1000,
        }
    }
}

impl AgentConfigBuilder {
    /// The Dirichlet prior pseudo-count α₀ of every outcome, in
    /// `[MIN_PRIOR, MAX_PRIOR]` (default 1).
    pub fn prior(mut self, alpha0: f64) -> Self {
        self.config.prior = alpha0;
        self
    }

    /// Evidence is multiplied by this before each observation, in `(0, 1]`
    /// (default 1: never forget).
    pub fn forgetting(mut self, factor: f64) -> Self {
        self.config.forgetting = factor;
        self
    }

    /// How to choose actions (default posterior sampling).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.config.policy = policy;
        self
    }

    /// When to send rows to the aggregator (default `kl:0.01`), with the
    /// downlink that goes with it ([`ShareRule::downlink`]).
    pub fn share(self, rule: ShareRule) -> Self {
        self.sharing(rule.into())
    }

    /// When to send rows, and how the aggregator should answer.
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.config.share = sharing.rule;
        self.config.downlink = sharing.downlink;
        self
    }

    /// Observations between share checks (≥ 1; default 1).
    pub fn check_every(mut self, observations: u64) -> Self {
        self.config.check_every = observations;
        self
    }

    /// When a planning agent (γ > 0) draws or averages a new model and
    /// solves it (default: every episode).
    pub fn replan(mut self, replan: Replan) -> Self {
        self.config.replan = replan;
        self
    }

    /// How many extra posterior draws estimate a posterior-sampling
    /// decision's probability in [`Agent::decide_with_propensity`]
    /// (default 1,000; 1 to 10⁶).
    pub fn propensity_draws(mut self, draws: u32) -> Self {
        self.config.propensity_draws = draws;
        self
    }

    /// The checked configuration, or an [`Error::Invalid`] naming the
    /// setting.
    pub fn build(self) -> Result<AgentConfig> {
        let c = self.config;
        let bad =
            |field: &str, problem: String| Err(Error::invalid("agent config", field, problem));
        if !(MIN_PRIOR..=MAX_PRIOR).contains(&c.prior) {
            return bad(
                "prior",
                format!(
                    "{} is outside [{MIN_PRIOR:e}, {MAX_PRIOR:e}] (1 is the uniform prior)",
                    c.prior
                ),
            );
        }
        if !(c.forgetting > 0.0 && c.forgetting <= 1.0) {
            return bad(
                "forgetting",
                format!("{} is outside (0, 1]; 1 never forgets", c.forgetting),
            );
        }
        if let Err(p) = c.policy.check() {
            return bad("policy", p.problem().into());
        }
        if let Err(p) = c.share.check() {
            return bad("share", p.problem().into());
        }
        if let Err(p) = c.downlink.check() {
            return bad("downlink", p.problem().into());
        }
        if c.check_every == 0 {
            return bad("check_every", "0; check at least every observation".into());
        }
        if !(1..=1_000_000).contains(&c.propensity_draws) {
            return bad(
                "propensity_draws",
                format!("{}; use 1 to 1000000", c.propensity_draws),
            );
        }
        if c.replan == Replan::EverySteps(0) {
            return bad("replan", "every 0 steps; use 1 or more".into());
        }
        Ok(c)
    }
}

impl AgentConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> AgentConfigBuilder {
        AgentConfigBuilder {
            config: Self::default(),
        }
    }

    /// A builder starting from this configuration.
    pub fn to_builder(&self) -> AgentConfigBuilder {
        AgentConfigBuilder {
            config: self.clone(),
        }
    }

    /// The aggregator that agents of this configuration share through, for
    /// tasks of `structure` with learners `0..learners` already joined. It
    /// answers by the configuration's downlink and knows its prior, so the
    /// two sides cannot disagree.
    ///
    /// ```
    /// use parbayes::share::ShareRule;
    /// use parbayes::{AgentConfig, Structure};
    ///
    /// let rule = ShareRule::Doubling(1.0);
    /// let config = AgentConfig::builder().share(rule).build()?;
    /// let aggregator = config.aggregator(&Structure::bandit(3)?, 4);
    /// assert_eq!(aggregator.downlink(), rule.downlink());
    /// assert_eq!(aggregator.members().count(), 4);
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn aggregator(&self, structure: &Structure, learners: usize) -> Aggregator {
        Aggregator::new(structure.shape(), learners)
            .with_downlink(self.downlink)
            .with_prior(self.prior)
    }

    /// The prior pseudo-count α₀ of every outcome.
    pub fn prior(&self) -> f64 {
        self.prior
    }

    /// The forgetting factor per observation.
    pub fn forgetting(&self) -> f64 {
        self.forgetting
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The share rule.
    pub fn share(&self) -> ShareRule {
        self.share
    }

    /// How the aggregator should answer: a run builds its
    /// [`Aggregator`] with it ([`AgentConfig::aggregator`]).
    pub fn downlink(&self) -> Downlink {
        self.downlink
    }

    /// The share rule and the downlink.
    pub fn sharing(&self) -> Sharing {
        Sharing {
            rule: self.share,
            downlink: self.downlink,
        }
    }

    /// Observations between share checks.
    pub fn check_every(&self) -> u64 {
        self.check_every
    }

    /// The re-planning schedule.
    pub fn replan(&self) -> Replan {
        self.replan
    }

    /// Extra draws behind an estimated propensity.
    pub fn propensity_draws(&self) -> u32 {
        self.propensity_draws
    }

    /// Whether this configuration can drive an agent of `structure`:
    /// Bayes-UCB needs a Bernoulli bandit.
    pub fn fits(&self, structure: &Structure) -> Result<()> {
        if self.policy.supports(structure) {
            Ok(())
        } else {
            Err(Error::invalid(
                "agent config",
                "policy",
                format!(
                    "{} needs two outcomes paying 0 and 1 and gamma = 0",
                    self.policy
                ),
            ))
        }
    }
}

/// A snapshot of an [`Agent`]: its evidence, its place in the sharing
/// protocol and its random stream ([`Agent::save`], [`Agent::restore`]).
/// Its serde form is stable within a version of parbayes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AgentState {
    pub(crate) ledger: Ledger,
    pub(crate) since_check: u64,
    pub(crate) rng: LearnerRng,
    pub(crate) plan: Option<PlanState>,
    /// Actions the agent no longer chooses (empty: none).
    #[serde(default)]
    pub(crate) retired: Vec<bool>,
}

impl AgentState {
    /// The agent's id.
    pub fn id(&self) -> u32 {
        self.ledger.learner()
    }
}

/// A learner without an environment: it decides, learns from the feedback
/// it is given, and shares through an aggregator.
///
/// Every call is synchronous and allocates nothing, except
/// [`share`](Agent::share), which builds the message it returns, and the
/// calls that change the arms ([`add_arm`](Agent::add_arm), the first
/// [`retire`](Agent::retire)).
///
/// ```
/// use parbayes::agent::{Agent, AgentConfig};
/// use parbayes::model::Structure;
/// use parbayes::share::{Aggregator, ShareRule};
///
/// let news = Structure::bandit(3)?;
/// let config = AgentConfig::builder().share(ShareRule::Always).build()?;
/// let mut aggregator = Aggregator::new(news.shape(), 0);
/// let mut a = Agent::new(&news, &config, aggregator.join(), 7)?;
/// let mut b = Agent::new(&news, &config, aggregator.join(), 8)?;
///
/// let arm = a.decide(0)?;
/// a.observe_click(arm, true)?; // feedback, whenever it arrives
/// aggregator.receive(&a.share().expect("`always` shares every change"))?;
/// b.absorb(&aggregator.answer(b.id())?.expect("a's click is news to b"))?;
///
/// // b now counts a's click: its posterior mean of that arm is (1 + 1) / (2 + 1).
/// let mut mean = [0.0; 2];
/// b.posterior_mean_into(0, arm, &mut mean)?;
/// assert!((mean[1] - 2.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), parbayes::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Agent {
    structure: Structure,
    pub(crate) ledger: Ledger,
    policy: Policy,
    share: ShareRule,
    check_every: u64,
    forgetting: f64,
    pub(crate) since_check: u64,
    pub(crate) rng: LearnerRng,
    scratch: Scratch,
    /// Present when the structure is planned with γ > 0.
    pub(crate) planner: Option<Planner>,
    /// `retired[a]`: never chosen; empty while no action is retired, so
    /// the usual decision takes no detour.
    retired: Vec<bool>,
    propensity_draws: u32,
}

impl Agent {
    /// Agent `id` of `structure`, configured by `config`, with a random
    /// stream seeded from (`seed`, `id`): agents of one seed and distinct
    /// ids draw independently.
    pub fn new(structure: &Structure, config: &AgentConfig, id: u32, seed: u64) -> Result<Self> {
        Self::with_rng(structure, config, id, learner_rng(seed, 0, id))
    }

    /// Agent `id` drawing from the stream `rng`, for an application that
    /// derives its agents' streams itself.
    pub fn with_rng(
        structure: &Structure,
        config: &AgentConfig,
        id: u32,
        rng: LearnerRng,
    ) -> Result<Self> {
        config.fits(structure)?;
        Ok(Self::fitted(structure, config, id, rng))
    }

    /// [`Agent::with_rng`] of a configuration known to fit the structure.
    pub(crate) fn fitted(
        structure: &Structure,
        config: &AgentConfig,
        id: u32,
        rng: LearnerRng,
    ) -> Self {
        let shape = structure.shape();
        Self {
            structure: structure.clone(),
            ledger: Ledger::new(id, shape, config.prior),
            policy: config.policy,
            share: config.share,
            check_every: config.check_every,
            forgetting: config.forgetting,
            since_check: 0,
            rng,
            scratch: Scratch::new(shape),
            planner: (structure.gamma() > 0.0).then(|| Planner::new(structure, config.replan)),
            retired: Vec::new(),
            propensity_draws: config.propensity_draws,
        }
    }

    /// A fresh agent holding `ledger` (a crashed learner's, rebuilt from the
    /// aggregator's record) and drawing from `rng`.
    pub(crate) fn recovered(
        structure: &Structure,
        config: &AgentConfig,
        ledger: Ledger,
        rng: LearnerRng,
    ) -> Self {
        let mut agent = Self::fitted(structure, config, ledger.learner(), rng);
        agent.ledger = ledger;
        agent
    }

    /// What the agent has learned and where its stream stands: with the
    /// structure and configuration it was made with,
    /// [`restore`](Agent::restore) continues it exactly.
    ///
    /// ```
    /// use parbayes::{Agent, AgentConfig, AgentState, Structure};
    ///
    /// let news = Structure::bandit(3)?;
    /// let config = AgentConfig::default();
    /// let mut agent = Agent::new(&news, &config, 0, 7)?;
    /// let arm = agent.decide(0)?;
    /// agent.observe_click(arm, true)?;
    ///
    /// let bytes = rmp_serde::to_vec(&agent.save()).unwrap(); // or JSON, or any serde format
    /// let state: AgentState = rmp_serde::from_slice(&bytes).unwrap();
    /// let mut copy = Agent::restore(&news, &config, state)?;
    /// assert_eq!(copy.decide(0)?, agent.decide(0)?); // the same draws from here on
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn save(&self) -> AgentState {
        AgentState {
            ledger: self.ledger.clone(),
            since_check: self.since_check,
            rng: self.rng.clone(),
            plan: self.planner.as_ref().map(Planner::save),
            retired: self.retired.clone(),
        }
    }

    /// The agent `state` describes, of `structure` configured by `config`.
    /// A state that does not fit them (another shape or prior, counts that
    /// are negative or not finite, a plan for an agent that does not plan)
    /// is refused with [`Error::Invalid`]; a state without a plan starts
    /// a planning agent's plan afresh.
    pub fn restore(structure: &Structure, config: &AgentConfig, state: AgentState) -> Result<Self> {
        let bad = |problem: String| Error::invalid("agent state", "ledger", problem);
        state
            .ledger
            .check_fits(structure.shape(), config.prior)
            .map_err(bad)?;
        let mut agent = Self::with_rng(structure, config, state.ledger.learner(), state.rng)?;
        match (&mut agent.planner, state.plan) {
            (Some(planner), Some(plan)) => planner.restore(plan)?,
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "agent state",
                    "plan",
                    "a plan, but the structure has gamma = 0 and is not planned",
                ));
            }
            (_, None) => {}
        }
        if !state.retired.is_empty() {
            if state.retired.len() != structure.shape().actions
                || agent.planner.is_some()
                || state.retired.iter().all(|r| *r)
            {
                return Err(Error::invalid(
                    "agent state",
                    "retired",
                    format!(
                        "{} retirement marks for {} actions{}",
                        state.retired.len(),
                        structure.shape().actions,
                        if agent.planner.is_some() {
                            " of a planning agent"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            agent.retired = state.retired;
        }
        agent.ledger = state.ledger;
        agent.since_check = state.since_check;
        Ok(agent)
    }

    /// The agent's id, as the aggregator knows it.
    pub fn id(&self) -> u32 {
        self.ledger.learner()
    }

    /// What the agent knows of its task.
    pub fn structure(&self) -> &Structure {
        &self.structure
    }

    /// Its side of the sharing protocol: own, sent and others' counts.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The agent's random stream. An application has no need of it; a
    /// simulation that draws its task's outcomes from it reproduces a
    /// [`Learner`](crate::learner::Learner) exactly.
    pub fn rng_mut(&mut self) -> &mut LearnerRng {
        &mut self.rng
    }

    /// Chooses an action in `state` by the policy, from everything the agent
    /// holds: its own evidence and what the aggregator told it.
    pub fn decide(&mut self, state: usize) -> Result<usize> {
        check("state", state, self.structure.shape().states)?;
        Ok(self.act(state))
    }

    /// [`decide`](Agent::decide) on a state known to be in range.
    #[inline]
    pub(crate) fn act(&mut self, state: usize) -> usize {
        match &mut self.planner {
            None => {
                let d = Decision {
                    state,
                    structure: &self.structure,
                };
                if self.retired.is_empty() {
                    self.policy
                        .select(&d, &self.ledger, &mut self.scratch, &mut self.rng)
                } else {
                    self.policy.select_among(
                        &d,
                        &self.ledger,
                        &mut self.scratch,
                        &mut self.rng,
                        &self.retired,
                    )
                }
            }
            Some(planner) => {
                let q = planner.q_of(self.policy, &self.ledger, state, &mut self.rng);
                self.scratch.q.copy_from_slice(q);
                self.policy.choose(&mut self.scratch.q, &mut self.rng)
            }
        }
    }

    /// [`decide`](Agent::decide), and the probability with which the
    /// policy chose that action: exact for ε-greedy, softmax and Bayes-UCB
    /// (random ties included), estimated for posterior sampling by
    /// counting how often the action wins in
    /// [`propensity_draws`](AgentConfigBuilder::propensity_draws) further
    /// draws, the decision's own included, so it is never 0. Those draws
    /// advance the agent's random stream. For agents that do not plan
    /// (γ = 0): a planning agent's choice depends on the model it drew for
    /// the episode, not on this state alone.
    ///
    /// ```
    /// use parbayes::{Agent, AgentConfig, Structure};
    /// use parbayes::policy::Policy;
    ///
    /// let news = Structure::bandit(4)?;
    /// let config = AgentConfig::builder().policy(Policy::Softmax { temperature: 0.5 }).build()?;
    /// let mut agent = Agent::new(&news, &config, 0, 3)?;
    /// // No evidence: every arm's mean is ½, so each is chosen with ¼.
    /// let choice = agent.decide_with_propensity(0)?;
    /// assert!((choice.propensity - 0.25).abs() < 1e-12 && !choice.estimated);
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn decide_with_propensity(&mut self, state: usize) -> Result<Choice> {
        self.refuse_planning("propensities")?;
        check("state", state, self.structure.shape().states)?;
        let action = self.act(state);
        let d = Decision {
            state,
            structure: &self.structure,
        };
        Ok(self.policy.propensity(
            action,
            &d,
            &self.ledger,
            &mut self.scratch,
            &mut self.rng,
            &self.retired,
            self.propensity_draws,
        ))
    }

    /// Stops choosing `action` (its evidence is kept, and feedback for it
    /// still arrives and is learned from) until it is
    /// [reinstated](Agent::reinstate). For agents that do not plan; the
    /// last action in play cannot retire.
    pub fn retire(&mut self, action: usize) -> Result<()> {
        self.refuse_planning("retiring actions")?;
        let actions = self.structure.shape().actions;
        check("action", action, actions)?;
        if self.retired.is_empty() {
            self.retired = vec![false; actions];
        }
        if !self.retired[action] && self.retired.iter().filter(|r| !**r).count() == 1 {
            return Err(Error::invalid(
                "actions",
                format!("action {action}"),
                "it is the last action in play; add or reinstate another first",
            ));
        }
        self.retired[action] = true;
        Ok(())
    }

    /// Chooses `action` again.
    pub fn reinstate(&mut self, action: usize) -> Result<()> {
        check("action", action, self.structure.shape().actions)?;
        if let Some(r) = self.retired.get_mut(action) {
            *r = false;
        }
        if self.retired.iter().all(|r| !*r) {
            self.retired.clear();
        }
        Ok(())
    }

    /// Whether `action` is retired.
    pub fn is_retired(&self, action: usize) -> bool {
        self.retired.get(action).copied().unwrap_or(false)
    }

    /// Adds an arm to a Bernoulli bandit and returns its index; it starts
    /// from the prior. The aggregator must gain the arm too
    /// ([`Aggregator::add_keys`]) before this agent's messages about it are
    /// accepted; [`structure`](Agent::structure) is the grown bandit, the
    /// one to [`restore`](Agent::restore) a saved state with.
    ///
    /// ```
    /// use parbayes::{Agent, AgentConfig, Structure};
    ///
    /// let config = AgentConfig::default();
    /// let mut aggregator = config.aggregator(&Structure::bandit(2)?, 0);
    /// let mut agent = Agent::new(&Structure::bandit(2)?, &config, aggregator.join(), 1)?;
    /// assert_eq!(agent.add_arm()?, 2);
    /// aggregator.add_keys(1)?;
    /// agent.observe_click(2, true)?;
    /// aggregator.receive(&agent.flush().expect("a click to share"))?;
    /// assert_eq!(aggregator.global().row(2), Some(&[0.0, 1.0][..]));
    /// # Ok::<(), parbayes::Error>(())
    /// ```
    pub fn add_arm(&mut self) -> Result<usize> {
        let shape = self.structure.shape();
        if !(self.structure.is_bernoulli() && shape.states == 1) {
            return Err(Error::invalid(
                "actions",
                "arms",
                "only a Bernoulli bandit (one state, outcomes paying 0 and 1) adds arms",
            ));
        }
        self.structure = Structure::bandit(shape.actions + 1)?;
        self.ledger.add_keys(1);
        self.scratch = Scratch::new(self.structure.shape());
        if !self.retired.is_empty() {
            self.retired.push(false);
        }
        Ok(shape.actions)
    }

    fn refuse_planning(&self, what: &str) -> Result<()> {
        match self.planner {
            Some(_) => Err(Error::invalid(
                "agent",
                "policy",
                format!(
                    "{what} are for agents that do not plan (gamma = 0); this one plans with gamma = {}",
                    self.structure.gamma()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Learns that taking `action` in `state` produced `outcome`. Feedback
    /// may arrive in any order and long after the decision; with forgetting,
    /// evidence decays once per observation.
    pub fn observe(&mut self, state: usize, action: usize, outcome: usize) -> Result<()> {
        let shape = self.structure.shape();
        check("state", state, shape.states)?;
        check("action", action, shape.actions)?;
        check("outcome", outcome, shape.outcomes)?;
        self.record(shape.row(state, action), outcome);
        Ok(())
    }

    /// A bandit's feedback: arm `arm` was clicked (outcome 1) or not
    /// (outcome 0), in state 0.
    pub fn observe_click(&mut self, arm: usize, clicked: bool) -> Result<()> {
        self.observe(0, arm, usize::from(clicked))
    }

    /// [`observe`](Agent::observe) on indices known to be in range.
    #[inline]
    pub(crate) fn record(&mut self, row: usize, outcome: usize) {
        if self.forgetting < 1.0 {
            self.ledger.discount(self.forgetting);
        }
        self.ledger.observe(row, outcome);
        self.since_check += 1;
    }

    /// Runs the share rule if `check_every` observations have arrived since
    /// the last check; returns the message for the aggregator, if the rule
    /// chose any rows.
    pub fn share(&mut self) -> Option<ShareMessage> {
        if self.since_check >= self.check_every {
            self.since_check = 0;
            self.ledger.check(self.share)
        } else {
            None
        }
    }

    /// How many more observations the agent can make with its share checks
    /// surely sending nothing (see [`Ledger::quiet_observations`]).
    pub fn quiet_observations(&self) -> u64 {
        self.ledger.quiet_observations(self.share)
    }

    /// Sends every row whose counts changed since it was last sent, whatever
    /// the rule: before an agent leaves, so that nothing it learned is lost.
    pub fn flush(&mut self) -> Option<ShareMessage> {
        self.since_check = 0;
        self.ledger.check(ShareRule::Always)
    }

    /// Everything the agent has shared, again, at the counts last sent:
    /// for an aggregator restarted from an older snapshot, which must hear
    /// every agent's full counts again. Full counts with a new sequence
    /// number, so a copy the aggregator already holds changes nothing.
    pub fn resend(&mut self) -> Option<ShareMessage> {
        self.ledger.resend()
    }

    /// Takes the aggregator's word on the others' counts. A malformed or
    /// misrouted update is refused and changes nothing; a row older than
    /// the one held (a reordered update) is skipped.
    pub fn absorb(&mut self, update: &OthersUpdate) -> Result<()> {
        self.check_rows(update.learner, &update.rows)?;
        self.ledger.absorb(update);
        Ok(())
    }

    /// Rebuilds the agent's evidence from the aggregator's record of it, as
    /// after a restart: what it last shared becomes its own and sent counts,
    /// and the others' counts are current. Evidence it never shared is gone.
    pub fn recover(&mut self, record: &Recovery) -> Result<()> {
        self.check_rows(record.learner, &record.own)?;
        self.check_rows(record.learner, &record.others)?;
        self.ledger = Ledger::recovered(self.structure.shape(), self.ledger.prior(), record);
        self.since_check = 0;
        Ok(())
    }

    fn check_rows(&self, learner: u32, rows: &crate::share::RowBatch) -> Result<()> {
        if learner != self.id() {
            return Err(ProtocolError::Misrouted {
                meant_for: learner,
                delivered_to: self.id(),
            }
            .into());
        }
        rows.check(self.structure.shape()).map_err(|problem| {
            ProtocolError::Malformed {
                learner: self.id(),
                problem,
            }
            .into()
        })
    }

    /// A new episode begins: a planning agent that re-plans every episode
    /// plans afresh at its next decision.
    pub fn start_episode(&mut self) {
        if let Some(p) = &mut self.planner {
            p.start_trial();
        }
    }

    /// The posterior mean of the outcome distribution of (`state`,
    /// `action`) into `out` (one entry per outcome).
    pub fn posterior_mean_into(&self, state: usize, action: usize, out: &mut [f64]) -> Result<()> {
        let shape = self.structure.shape();
        check("state", state, shape.states)?;
        check("action", action, shape.actions)?;
        if out.len() != shape.outcomes {
            return Err(Error::OutOfRange {
                what: "outcome buffer length",
                index: out.len(),
                count: shape.outcomes,
            });
        }
        self.ledger
            .combined_alpha_into(shape.row(state, action), out);
        let total: f64 = out.iter().sum();
        out.iter_mut().for_each(|x| *x /= total);
        Ok(())
    }

    /// The shape of the agent's structure.
    pub fn shape(&self) -> Shape {
        self.structure.shape()
    }
}

fn check(what: &'static str, index: usize, count: usize) -> Result<()> {
    if index < count {
        Ok(())
    } else {
        Err(Error::OutOfRange { what, index, count })
    }
}
