//! Contextual linear bandits: a Bayesian linear regression per arm, shared
//! through the same protocol as counts.
//!
//! A key's evidence is `Λ = Σ x xᵀ` (its upper triangle), `b = Σ r x`, the
//! number of observations and `Σ r²`: statistics that add, so the
//! [`Ledger`](crate::share::Ledger) and the
//! [`Aggregator`](crate::share::Aggregator) keep and sum them exactly as
//! they do counts. The [`Gaussian`] family says how an observation adds,
//! how the prior enters and how two posteriors diverge; a
//! [`LinearAgent`] keeps each arm's posterior factored and chooses by a
//! [`LinearPolicy`].

mod agent;
mod config;
mod family;
mod policy;
mod posterior;

pub use crate::model::{MAX_FEATURES, linear_width as width};
pub use agent::{LinearAgent, LinearAgentState};
pub use config::{LinearConfig, LinearConfigBuilder, LinearModel};
pub use family::{Gaussian, Noise, kl_gamma};
pub use policy::{LINEAR_POLICY_FORMS, LinearPolicy};
