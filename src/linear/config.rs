//! What every contextual agent of an application shares, checked once.

use serde::{Deserialize, Serialize};

use super::family::{Gaussian, Noise};
use super::policy::LinearPolicy;
use crate::error::{Error, Result};
use crate::model::Shape;
use crate::share::{Aggregator, Downlink, ShareRule, Sharing};

/// How the arms' expected rewards relate to the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LinearModel {
    /// One θ per arm, and one feature vector per decision that every arm
    /// sees (Li et al. 2010's disjoint LinUCB): arm k pays `xᵀθ_k`. The
    /// protocol shares one key per arm.
    #[default]
    Disjoint,
    /// One θ for every arm, and a feature vector per arm in each decision:
    /// arm k pays `x_kᵀθ`. The protocol shares a single key.
    Shared,
}

/// What every contextual agent of an application shares: the arms, the
/// model and its regression, the policy and how it shares. Built by
/// [`LinearConfig::builder`], checked once.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearConfig {
    arms: usize,
    model: LinearModel,
    family: Gaussian,
    policy: LinearPolicy,
    share: ShareRule,
    downlink: Downlink,
    check_every: u64,
    propensity_draws: u32,
}

/// Builds a [`LinearConfig`].
#[derive(Debug, Clone)]
pub struct LinearConfigBuilder {
    arms: usize,
    dim: usize,
    model: LinearModel,
    ridge: f64,
    noise: Noise,
    policy: LinearPolicy,
    sharing: Sharing,
    check_every: u64,
    propensity_draws: u32,
}

impl LinearConfigBuilder {
    /// Disjoint θ per arm (the default) or one θ shared over per-arm
    /// features.
    pub fn model(mut self, model: LinearModel) -> Self {
        self.model = model;
        self
    }

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

    /// How many extra posterior draws estimate a Thompson decision's
    /// probability in [`LinearAgent::decide_with_propensity`]
    /// (default 1,000; 1 to 10⁶).
    ///
    /// [`LinearAgent::decide_with_propensity`]: super::LinearAgent::decide_with_propensity
    pub fn propensity_draws(mut self, draws: u32) -> Self {
        self.propensity_draws = draws;
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
        if !(1..=1_000_000).contains(&self.propensity_draws) {
            return bad(
                "propensity_draws",
                format!("{}; use 1 to 1000000", self.propensity_draws),
            );
        }
        let family = Gaussian::new(self.dim, self.ridge, self.noise)?;
        if self.model == LinearModel::Shared && self.arms.saturating_mul(self.dim) > 1 << 24 {
            return bad(
                "arms",
                format!(
                    "{} arms of {} features is a context of over 16 million numbers",
                    self.arms, self.dim
                ),
            );
        }
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
            model: self.model,
            family,
            policy: self.policy,
            share: self.sharing.rule,
            downlink: self.sharing.downlink,
            check_every: self.check_every,
            propensity_draws: self.propensity_draws,
        })
    }
}

impl LinearConfig {
    /// A configuration for `arms` arms of `dim` features each, one
    /// regression per arm (disjoint models, as in Li et al. 2010) unless
    /// [`model`](LinearConfigBuilder::model) says otherwise.
    pub fn builder(arms: usize, dim: usize) -> LinearConfigBuilder {
        LinearConfigBuilder {
            arms,
            dim,
            model: LinearModel::Disjoint,
            ridge: 1.0,
            noise: Noise::Known { variance: 1.0 },
            policy: LinearPolicy::default(),
            sharing: ShareRule::Doubling(1.0).into(),
            check_every: 1,
            propensity_draws: 1000,
        }
    }

    /// The same settings, to change and build again.
    pub fn to_builder(&self) -> LinearConfigBuilder {
        LinearConfigBuilder {
            arms: self.arms,
            dim: self.family.dim(),
            model: self.model,
            ridge: self.family.ridge(),
            noise: self.family.noise(),
            policy: self.policy,
            sharing: self.sharing(),
            check_every: self.check_every,
            propensity_draws: self.propensity_draws,
        }
    }

    /// The arms an agent starts with.
    pub fn arms(&self) -> usize {
        self.arms
    }

    /// Disjoint or shared θ.
    pub fn model(&self) -> LinearModel {
        self.model
    }

    /// The number of features d of one arm's vector.
    pub fn dim(&self) -> usize {
        self.family.dim()
    }

    /// Numbers in a context for `arms` arms: d for disjoint models, one
    /// d-vector per arm, row after row, for a shared θ.
    pub fn context_len(&self, arms: usize) -> usize {
        match self.model {
            LinearModel::Disjoint => self.dim(),
            LinearModel::Shared => arms * self.dim(),
        }
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

    /// Both directions of sharing.
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

    /// Extra draws behind an estimated propensity.
    pub fn propensity_draws(&self) -> u32 {
        self.propensity_draws
    }

    /// The keys the protocol shares for `arms` arms: one per arm, or one.
    pub fn keys(&self, arms: usize) -> usize {
        match self.model {
            LinearModel::Disjoint => arms,
            LinearModel::Shared => 1,
        }
    }

    /// The key layout the protocol sees at the start: [`keys`] keys of the
    /// family's width.
    ///
    /// [`keys`]: LinearConfig::keys
    pub fn shape(&self) -> Shape {
        Shape {
            states: 1,
            actions: self.keys(self.arms),
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
