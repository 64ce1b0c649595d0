use std::path::Path;

use serde::Deserialize;

use super::truth::Truth;
use crate::error::{Error, Result};
use crate::model::{MAX_REWARD, Mdp, PROBABILITY_TOLERANCE, Shape, Transition, check_distribution};

/// A learner plans on a dense model of `states × actions × states` entries;
/// larger models are refused before anything of that size is allocated.
pub const MAX_PLANNING_ENTRIES: u64 = 4_000_000;

/// A tabular MDP from a JSON file (the layout of Gymnasium's `P` tables):
///
/// ```json
/// {"n_states": 2, "n_actions": 1,
///  "initial_state_distribution": [1.0, 0.0],
///  "transitions": [[[[1, 1.0, 0.0, false]]], [[[1, 1.0, 1.0, true]]]]}
/// ```
///
/// `transitions[s][a]` lists `[next_state, probability, reward, terminal]`.
/// The outcome a learner sees is what happened: entries alike in next
/// state, reward and terminal flag are one outcome, their probabilities
/// summed. Outcome `n < n_states` is the first-listed way of landing in
/// state `n`; a second way of landing there (falling off a cliff and a
/// plain move can both end in the start cell, with different rewards) is
/// an outcome of its own, numbered from `n_states` on, row by row. An
/// outcome a row never lists has probability 0: the learner learns that.
#[derive(Debug, Clone, PartialEq)]
pub struct TabularMdp {
    truth: Truth,
    /// Each row's outcomes beyond the first per next state, in order.
    extras: Vec<Vec<Transition>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    n_states: u64,
    n_actions: u64,
    initial_state_distribution: Option<Vec<f64>>,
    /// Entries are read as plain JSON so a malformed one gets an error that
    /// names its state, action and position.
    transitions: Vec<Vec<Vec<Vec<serde_json::Value>>>>,
}

impl TabularMdp {
    /// Reads and validates a model file.
    pub fn load(path: &Path, gamma: f64) -> Result<Self> {
        let text = crate::error::read_text(path, 256 << 20, "a model file is JSON text")?;
        Self::parse(&text, &path.display().to_string(), gamma)
    }

    /// Parses model JSON; `source` names it in errors.
    pub fn parse(text: &str, source: &str, gamma: f64) -> Result<Self> {
        let bad = |field: String, problem: String| Error::invalid(source, field, problem);
        let raw = deserialize(text, source)?;
        crate::model::check_gamma(gamma).map_err(|p| bad("gamma".into(), p))?;
        let (states, actions) = (raw.n_states, raw.n_actions);
        if states == 0 || actions == 0 {
            return Err(bad(
                if states == 0 { "n_states" } else { "n_actions" }.into(),
                "0; a model needs at least one state and one action".into(),
            ));
        }
        let entries = states.saturating_mul(actions).saturating_mul(states);
        if entries > MAX_PLANNING_ENTRIES {
            return Err(bad(
                "n_states".into(),
                format!(
                    "{states} states × {actions} actions × {states} next states is {entries} \
                     entries in a learner's model; at most {MAX_PLANNING_ENTRIES}"
                ),
            ));
        }
        let (states, actions) = (states as usize, actions as usize);
        if raw.transitions.len() != states {
            return Err(bad(
                "transitions".into(),
                format!(
                    "{} states listed; n_states is {states}",
                    raw.transitions.len()
                ),
            ));
        }
        let rows = rows(&raw.transitions, actions, source)?;
        let start = match raw.initial_state_distribution {
            Some(p) => {
                check_distribution(&p, states)
                    .map_err(|p| bad("initial_state_distribution".into(), p))?;
                p
            }
            None => {
                let mut p = vec![0.0; states];
                p[0] = 1.0;
                p
            }
        };
        let extras: Vec<Vec<Transition>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .filter(|t| t.outcome >= states)
                    .copied()
                    .collect()
            })
            .collect();
        let most = extras.iter().map(Vec::len).max().unwrap_or(0);
        let shape = Shape {
            states,
            actions,
            outcomes: states + most,
        };
        let entries = (states * actions) as u64 * shape.outcomes as u64;
        if entries > MAX_PLANNING_ENTRIES {
            return Err(bad(
                "transitions".into(),
                format!(
                    "{states} states × {actions} actions × {} outcomes (next states, and {most} \
                     more ways of reaching one) is {entries} entries in a learner's model; at \
                     most {MAX_PLANNING_ENTRIES}",
                    shape.outcomes
                ),
            ));
        }
        let model = Mdp::new(shape, start, &rows)?;
        Ok(Self {
            truth: Truth::new(vec![(0, model)], gamma),
            extras,
        })
    }

    /// The model from the file, solved.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// States, actions, and outcomes (the states and any extra ways of reaching one).
    pub fn shape(&self) -> Shape {
        self.truth.model().shape()
    }

    /// The known `(next, reward, terminal)` of outcome `o` in `row`. An
    /// outcome the row does not list has probability 0 in truth, but the
    /// learner's prior gives it some: a next state `o` the row never reaches
    /// pays 0 and goes on; an extra outcome the row does not use is a copy of
    /// the row's first listed one, so its prior mass lands on something the
    /// row can produce.
    pub fn known(&self, row: usize, o: usize) -> (usize, f64, bool) {
        let states = self.truth.model().shape().states;
        let listed = self.truth.model().transitions(row).find(|t| t.outcome == o);
        let t = match listed {
            Some(t) => t,
            None if o < states => return (o, 0.0, false),
            None => match self.extras[row].get(o - states) {
                Some(t) => *t,
                None => self
                    .truth
                    .model()
                    .transitions(row)
                    .next()
                    .expect("every row lists a transition"),
            },
        };
        (t.next, t.reward, t.terminal)
    }
}

/// The model file as JSON, with the path of any value that does not fit.
fn deserialize(text: &str, source: &str) -> Result<RawModel> {
    let bad = |field: String, problem: String| Error::invalid(source, field, problem);
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Error::Syntax {
                source_name: source.into(),
                line: inner.line(),
                column: inner.column(),
                problem: inner.to_string(),
            }
        } else {
            bad(
                if field == "." {
                    "(top level)".into()
                } else {
                    field
                },
                inner.to_string(),
            )
        }
    })
}

/// Each state's rows, in state-major order, checked against the action count.
fn rows(
    transitions: &[Vec<Vec<Vec<serde_json::Value>>>],
    actions: usize,
    source: &str,
) -> Result<Vec<Vec<Transition>>> {
    let bad = |field: String, problem: String| Error::invalid(source, field, problem);
    let states = transitions.len();
    let mut rows = Vec::with_capacity(states * actions);
    for (s, by_action) in transitions.iter().enumerate() {
        if by_action.len() != actions {
            return Err(bad(
                format!("transitions[{s}]"),
                format!(
                    "state {s} lists {} actions; n_actions is {actions}",
                    by_action.len()
                ),
            ));
        }
        for (a, list) in by_action.iter().enumerate() {
            let field = format!("transitions[{s}][{a}]");
            rows.push(row(list, s, a, states).map_err(|p| bad(field, p))?);
        }
    }
    Ok(rows)
}

/// One (state, action) list, checked and with repeated next states summed.
fn row(
    list: &[Vec<serde_json::Value>],
    s: usize,
    a: usize,
    states: usize,
) -> std::result::Result<Vec<Transition>, String> {
    const FORM: &str = "[next_state, probability, reward, terminal]";
    let at = format!("state {s}, action {a}");
    if list.is_empty() {
        return Err(format!("{at}: no transitions; list at least one {FORM}"));
    }
    let mut out: Vec<Transition> = Vec::with_capacity(list.len());
    for (k, entry) in list.iter().enumerate() {
        let parts = match &entry[..] {
            [n, p, r, t] => n.as_u64().zip(p.as_f64()).zip(r.as_f64()).zip(t.as_bool()),
            _ => None,
        };
        let Some((((next, prob), reward), terminal)) = parts else {
            return Err(format!(
                "{at}, entry {k}: {} is not {FORM} (a whole number, two numbers and true/false)",
                serde_json::Value::from(entry.clone())
            ));
        };
        if next >= states as u64 {
            return Err(format!(
                "{at}, entry {k}: next state {next} is out of range; states are 0 to {}",
                states - 1
            ));
        }
        if !(prob.is_finite() && (0.0..=1.0).contains(&prob)) {
            return Err(format!(
                "{at}, entry {k}: probability {prob} is outside [0, 1]"
            ));
        }
        if !(-MAX_REWARD..=MAX_REWARD).contains(&reward) {
            return Err(format!(
                "{at}, entry {k}: reward {reward} is outside ±{MAX_REWARD:e}"
            ));
        }
        let next = next as usize;
        let same =
            |t: &&mut Transition| t.next == next && t.reward == reward && t.terminal == terminal;
        match out.iter_mut().find(same) {
            Some(t) => t.prob += prob,
            None => {
                // The first way of reaching `next` is outcome `next`; any
                // other is an extra outcome, numbered after the states.
                let extras = out.iter().filter(|t| t.outcome >= states).count();
                let outcome = if out.iter().any(|t| t.next == next) {
                    states + extras
                } else {
                    next
                };
                out.push(Transition {
                    outcome,
                    next,
                    prob,
                    reward,
                    terminal,
                });
            }
        }
    }
    let total: f64 = out.iter().map(|t| t.prob).sum();
    if (total - 1.0).abs() > PROBABILITY_TOLERANCE {
        return Err(format!(
            "{at}: probabilities sum to {total}, not 1 (±{PROBABILITY_TOLERANCE:e})"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = r#"{"n_states": 2, "n_actions": 1,
        "transitions": [[[[1, 0.25, 0.0, false], [1, 0.25, 0.0, false], [0, 0.5, 1.0, false]]],
                        [[[1, 1.0, 2.0, true]]]]}"#;

    #[test]
    fn sums_repeated_next_states() {
        let m = TabularMdp::parse(CHAIN, "chain.json", 0.5).unwrap();
        let mut p = [0.0; 2];
        m.truth().model().outcome_probs_into(0, &mut p);
        assert_eq!(p, [0.5, 0.5]);
        assert_eq!(m.truth().model().start(), &[1.0, 0.0]);
        assert_eq!(m.known(1, 1), (1, 2.0, true));
        assert_eq!(m.known(1, 0), (0, 0.0, false));
    }

    #[test]
    fn a_next_state_reached_two_ways_is_two_outcomes() {
        // State 0 reaches state 1 paying 0 (twice listed, summed) or paying
        // 1 and ending the episode: outcome 1 and extra outcome 2.
        let text = CHAIN.replace("[0, 0.5, 1.0, false]", "[1, 0.5, 1.0, true]");
        let m = TabularMdp::parse(&text, "chain.json", 0.5).unwrap();
        assert_eq!(m.shape().outcomes, 3);
        let mut p = [0.0; 3];
        m.truth().model().outcome_probs_into(0, &mut p);
        assert_eq!(p, [0.0, 0.5, 0.5]);
        assert_eq!(m.known(0, 1), (1, 0.0, false));
        assert_eq!(m.known(0, 2), (1, 1.0, true));
        // Row 1 has no extra outcome: its slot copies its first listed one.
        assert_eq!(m.known(1, 2), (1, 2.0, true));
        assert_eq!(m.known(1, 0), (0, 0.0, false));
    }

    #[test]
    fn errors_name_state_and_action() {
        let cases = [
            (
                CHAIN.replace("[0, 0.5, 1.0", "[0, 0.4, 1.0"),
                "transitions[0][0]",
                "sum to",
            ),
            (
                CHAIN.replace("[0, 0.5, 1.0", "[0, -0.5, 1.0"),
                "transitions[0][0]",
                "outside [0, 1]",
            ),
            (
                CHAIN.replace("[[[1, 1.0, 2.0, true]]]", "[[[2, 1.0, 2.0, true]]]"),
                "transitions[1][0]",
                "out of range",
            ),
            (
                CHAIN.replace("\"n_states\": 2", "\"n_states\": 1000000000"),
                "n_states",
                "at most",
            ),
            (
                CHAIN.replace("\"n_actions\": 1", "\"n_actions\": 2"),
                "transitions[0]",
                "lists 1 actions",
            ),
            (
                CHAIN.replace("\"n_states\": 2", "\"n_states\": 3"),
                "transitions",
                "3",
            ),
            (
                CHAIN.replace("false]]]", "false, 1]]]"),
                "transitions[0][0]",
                "is not [next_state",
            ),
            (
                CHAIN.replace("[1, 1.0, 2.0, true]", "[1, 1.0, \"2\", true]"),
                "transitions[1][0]",
                "entry 0",
            ),
        ];
        for (text, field, words) in cases {
            match TabularMdp::parse(&text, "m.json", 0.9) {
                Err(Error::Invalid {
                    field: f, problem, ..
                }) => {
                    assert!(
                        f.starts_with(field) && problem.contains(words),
                        "{f}: {problem}"
                    );
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            TabularMdp::parse("{\"n_states\": NaN}", "m.json", 0.9),
            Err(Error::Syntax { .. })
        ));
    }
}
