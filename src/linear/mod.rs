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
mod family;
mod policy;
mod posterior;

pub use agent::{LinearAgent, LinearConfig, LinearConfigBuilder};
pub use family::{Gaussian, MAX_FEATURES, Noise, kl_gamma, width};
pub use policy::{LINEAR_POLICY_FORMS, LinearPolicy};
