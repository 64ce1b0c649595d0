use std::fmt;
use std::str::FromStr;

use crate::error::ParamError;

/// When a learner sends a row to the aggregator.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ShareRule {
    /// The paper's rule: `KL(mean(combined) ‖ mean(global)) > θ`.
    Kl(f64),
    /// Closed-form `KL(Dir(combined) ‖ Dir(global)) > θ`.
    KlPosterior(f64),
    /// Every `k` steps, every row changed since it was last sent.
    Periodic(u64),
    /// Like `periodic:k`, but the period starts at one step and doubles up
    /// to `k`: sends after 1, 2, 4, 8, … steps, then every `k`. Learners
    /// share their first, most useful observations at once, and then no
    /// more often than `periodic:k`.
    Ramp(u64),
    /// A row is sent once its unsent observations reach `f` times those
    /// already sent (and at least one): with `f = 1` at 1, 2, 4, 8, …
    /// observations, so O(log T) messages per row, at moments that do not
    /// depend on what was observed. The aggregator answers the same way
    /// ([`Downlink::Doubling`]).
    Doubling(f64),
    /// Every check, every changed row: the pooled limit.
    Always,
    /// Independent learners.
    Never,
}

/// How the aggregator answers a learner: which rows that others changed it
/// sends down.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Downlink {
    /// Every row some other learner changed since the learner last heard.
    #[default]
    Every,
    /// A row once the others' counts of it have grown by `f` times what the
    /// learner was last told of them (and by at least one observation):
    /// O(log n) answers per row and learner, whatever the number of learners,
    /// and the learner always holds at least `1 / (1 + f)` of the others'
    /// evidence.
    Doubling(f64),
    /// A row once telling it would move the learner's posterior mean by
    /// more than θ: `KL(mean(prior + sent + others now) ‖
    /// mean(prior + sent + others told)) > θ`, with the learner's counts as
    /// the aggregator holds them. Rows the learner already knows well are
    /// told rarely.
    Kl(f64),
}

impl fmt::Display for Downlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Downlink::Every => write!(f, "every"),
            Downlink::Doubling(x) => write!(f, "doubling:{x}"),
            Downlink::Kl(t) => write!(f, "kl:{t}"),
        }
    }
}

impl Downlink {
    /// Checks the parameter: the fraction finite and > 0, θ finite and ≥ 0.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |p: String| Err(ParamError::new("downlink", p));
        match *self {
            Downlink::Doubling(f) if !(f.is_finite() && f > 0.0) => bad(format!(
                "downlink doubling:{f}; the fraction must be finite and > 0"
            )),
            Downlink::Kl(t) if !(t.is_finite() && t >= 0.0) => {
                bad(format!("downlink kl:{t}; θ must be finite and ≥ 0"))
            }
            _ => Ok(()),
        }
    }
}

impl FromStr for Downlink {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "every" {
            return Ok(Downlink::Every);
        }
        let bad = |p: String| ParamError::new("downlink", p);
        let number = |a: &str| -> Result<f64, ParamError> {
            a.trim()
                .parse()
                .map_err(|_| bad(format!("`{a}` is not a number")))
        };
        let down = match s.split_once(':') {
            Some(("doubling", f)) => Downlink::Doubling(number(f)?),
            Some(("kl", t)) => Downlink::Kl(number(t)?),
            _ => {
                return Err(bad(format!(
                    "unknown downlink `{s}`; use every, doubling:F with F > 0 or kl:θ with θ ≥ 0"
                )));
            }
        };
        down.check().map(|()| down)
    }
}

/// Both directions of sharing: when a learner sends ([`ShareRule`]) and how
/// the aggregator answers ([`Downlink`]). Written `RULE` or `RULE/DOWNLINK`,
/// e.g. `periodic:100/doubling:0.1`; without a downlink, the rule's own
/// ([`ShareRule::downlink`]).
///
/// ```
/// use parbayes::share::{Downlink, ShareRule, Sharing};
///
/// let s: Sharing = "periodic:100/doubling:0.5".parse()?;
/// assert_eq!((s.rule, s.downlink), (ShareRule::Periodic(100), Downlink::Doubling(0.5)));
/// assert_eq!("doubling:1".parse::<Sharing>()?.downlink, Downlink::Doubling(1.0));
/// assert_eq!("kl:0.01".parse::<Sharing>()?.to_string(), "kl:0.01");
/// # Ok::<(), parbayes::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sharing {
    /// When a learner sends a row.
    pub rule: ShareRule,
    /// Which changed rows the aggregator sends back.
    pub downlink: Downlink,
}

impl From<ShareRule> for Sharing {
    fn from(rule: ShareRule) -> Self {
        Self {
            rule,
            downlink: rule.downlink(),
        }
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.downlink == self.rule.downlink() {
            write!(f, "{}", self.rule)
        } else {
            write!(f, "{}/{}", self.rule, self.downlink)
        }
    }
}

impl FromStr for Sharing {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            None => s.parse::<ShareRule>().map(Sharing::from),
            Some((rule, down)) => Ok(Sharing {
                rule: rule.parse()?,
                downlink: down.parse()?,
            }),
        }
    }
}

impl ShareRule {
    /// The downlink that goes with the rule: `doubling:F` both ways, every
    /// changed row for the others (as the paper does for `kl:θ`).
    pub fn downlink(&self) -> Downlink {
        match *self {
            ShareRule::Doubling(f) => Downlink::Doubling(f),
            _ => Downlink::Every,
        }
    }

    /// Checks the rule's parameter: θ finite and ≥ 0, K ≥ 1, F finite and
    /// > 0. The one gate every rule passes, parsed or built in code.
    pub fn check(&self) -> Result<(), ParamError> {
        let bad = |p: String| Err(ParamError::new("share rule", p));
        match *self {
            ShareRule::Kl(t) | ShareRule::KlPosterior(t) if !(t.is_finite() && t >= 0.0) => {
                bad(format!("θ = {t} must be finite and ≥ 0"))
            }
            ShareRule::Periodic(0) => bad("periodic:0; the period must be ≥ 1 step".into()),
            ShareRule::Ramp(0) => bad("ramp:0; the period must be ≥ 1 step".into()),
            ShareRule::Doubling(f) if !(f.is_finite() && f > 0.0) => {
                bad(format!("doubling:{f}; the fraction must be finite and > 0"))
            }
            _ => Ok(()),
        }
    }
}

/// The forms a rule string may take, for error messages.
pub const SHARE_FORMS: &str = "never, always, periodic:K or ramp:K with K ≥ 1 steps, kl:θ or kl-posterior:θ \
     with θ ≥ 0, doubling:F with F > 0; optionally followed by /every, /doubling:F or /kl:θ for \
     the downlink";

impl fmt::Display for ShareRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShareRule::Kl(t) => write!(f, "kl:{t}"),
            ShareRule::KlPosterior(t) => write!(f, "kl-posterior:{t}"),
            ShareRule::Periodic(k) => write!(f, "periodic:{k}"),
            ShareRule::Ramp(k) => write!(f, "ramp:{k}"),
            ShareRule::Doubling(x) => write!(f, "doubling:{x}"),
            ShareRule::Always => write!(f, "always"),
            ShareRule::Never => write!(f, "never"),
        }
    }
}

impl FromStr for ShareRule {
    type Err = ParamError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |p: String| ParamError::new("share rule", p);
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        let need = |example: &str| {
            arg.ok_or_else(|| {
                bad(format!(
                    "`{name}` needs a parameter, e.g. `{name}:{example}`"
                ))
            })
        };
        let number = |a: &str| -> Result<f64, ParamError> {
            a.parse().map_err(|_| bad(format!("`{a}` is not a number")))
        };
        let steps = |a: &str| -> Result<u64, ParamError> {
            a.parse()
                .map_err(|_| bad(format!("`{a}` is not a whole number of steps ≥ 1")))
        };
        let rule = match (name, arg) {
            ("never", None) => ShareRule::Never,
            ("always", None) => ShareRule::Always,
            ("kl", _) => ShareRule::Kl(number(need("0.01")?)?),
            ("kl-posterior", _) => ShareRule::KlPosterior(number(need("1")?)?),
            ("doubling", _) => ShareRule::Doubling(number(need("1")?)?),
            ("periodic", _) => ShareRule::Periodic(steps(need("100")?)?),
            ("ramp", _) => ShareRule::Ramp(steps(need("100")?)?),
            _ => return Err(bad(format!("unknown share rule `{s}`; use {SHARE_FORMS}"))),
        };
        rule.check().map(|()| rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "never",
            "always",
            "periodic:100",
            "ramp:50",
            "kl:0.01",
            "kl-posterior:1",
            "doubling:1",
            "doubling:0.5",
        ] {
            assert_eq!(s.parse::<ShareRule>().unwrap().to_string(), s);
        }
        for bad in [
            "kl",
            "kl:-1",
            "kl:nan",
            "periodic:0",
            "periodic:1.5",
            "ramp:0",
            "ramp",
            "sometimes",
            "never:3",
            "doubling",
            "doubling:0",
            "doubling:-1",
            "doubling:inf",
        ] {
            assert!(bad.parse::<ShareRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sharing_parses_and_prints_both_directions() {
        for s in [
            "kl:0.01",
            "doubling:1",
            "doubling:1/every",
            "periodic:100/doubling:0.1",
            "always/doubling:2",
            "doubling:1/kl:0.001",
        ] {
            assert_eq!(s.parse::<Sharing>().unwrap().to_string(), s);
        }
        assert_eq!(
            "always/every".parse::<Sharing>().unwrap().to_string(),
            "always"
        );
        for bad in [
            "kl:0.01/",
            "kl:0.01/sometimes",
            "kl:0.01/doubling:0",
            "kl:0.01/doubling:x",
            "kl:0.01/kl:-1",
            "kl:0.01/kl:nan",
            "nope/every",
        ] {
            assert!(bad.parse::<Sharing>().is_err(), "{bad}");
        }
    }
}
