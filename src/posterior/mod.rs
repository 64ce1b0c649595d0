//! Conjugate posteriors over outcome probabilities and the divergences
//! between them.
//!
//! A row's posterior is `Dir(α₀·1 + counts)`; two outcomes make it a Beta.

mod beta;
mod dirichlet;
pub mod divergence;
mod gamma;

pub use beta::BetaPosterior;
pub use dirichlet::DirichletPosterior;
pub(crate) use dirichlet::normalised_gammas;
pub(crate) use gamma::{GammaCache, KeptGamma};
