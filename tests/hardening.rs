//! Bad input never panics: scenario files and model files built from
//! hostile pieces either load or give a typed error naming a place; and the
//! evidence store's updates commute.

use parbayes::env::TabularMdp;
use parbayes::model::Evidence;
use parbayes::{Error, Overrides, Scenario};
use proptest::prelude::*;

/// Values that have broken parsers before, by the type a field expects:
/// non-finite and out-of-range numbers, empty and odd lists, bad strings.
const FLOATS: &[&str] = &[
    "nan", "inf", "-inf", "-1", "0", "0.5", "1", "2", "1e308", "1000", "0.0001",
];
const UINTS: &[&str] = &["0", "1", "2", "10", "1000000000", "9223372036854775807"];
const CELLS: &[&str] = &["[0, 1]", "[5, 5]", "[4, 0]", "[0, 1000000000]", "[1]"];
const FLOAT_LISTS: &[&str] = &[
    "[]",
    "[0.5, 2]",
    "[0.1, 0.2]",
    "[nan]",
    "[1e9]",
    "[0.1]",
    "[-3, 100]",
];
const UINT_LISTS: &[&str] = &["[]", "[0]", "[1, 2]", "[100000]", "[4000000000]"];
const WORDS: &[&str] = &[
    "\"random\"",
    "\"middle\"",
    "\"kl:0.01\"",
    "\"kl:-1\"",
    "\"periodic:0\"",
    "\"always\"",
    "\"softmax:0\"",
    "\"epsilon-greedy:0.1\"",
    "\"ucb\"",
    "\"models/none.json\"",
    "\"\"",
];
/// Anything at all, for the odd field of the wrong type.
const ANY: &[&str] = &[
    "true",
    "{}",
    "\"x\"",
    "[[1, 2]]",
    "-1",
    "[{ arm = 0, p = 0.5 }]",
];

fn pool(key: &str) -> &'static [&'static str] {
    match key {
        "arms" | "demand" => FLOAT_LISTS,
        "a" | "a_to" | "b" | "b_to" => CELLS,
        "agents" => UINT_LISTS,
        "start" | "model" | "response_times" | "policy" | "rule" => WORDS,
        "size" | "bins" | "max_vms" | "start_vms" | "resample_every" | "check_every"
        | "broadcast_every" | "trials" | "steps_per_trial" | "reps" | "seed" | "record_every"
        | "eval_every" => UINTS,
        _ => FLOATS,
    }
}

/// Mostly a value of the field's type, sometimes anything.
fn value(key: &str, v: usize) -> &'static str {
    if v % 10 == 9 {
        ANY[v / 10 % ANY.len()]
    } else {
        let p = pool(key);
        p[v % p.len()]
    }
}

/// Each kind with the fields it takes, and one it does not.
const KINDS: &[(&str, &[&str])] = &[
    ("\"bandit\"", &["arms", "arms", "arms", "size"]),
    (
        "\"gridworld\"",
        &[
            "gamma", "size", "intended", "a", "a_to", "b", "b_to", "start", "arms",
        ],
    ),
    ("\"tabular\"", &["gamma", "model", "bins"]),
    (
        "\"vm\"",
        &[
            "gamma",
            "bins",
            "max_ms",
            "max_vms",
            "demand",
            "per_vm",
            "base_ms",
            "saturation_ms",
            "noise_sigma",
            "vm_cost",
            "sla_ms",
            "sla_penalty",
            "start_vms",
            "threshold_upper_ms",
            "threshold_lower_ms",
            "response_times",
            "size",
        ],
    ),
    ("\"maze\"", &["nonsense"]),
    ("3", &["arms"]),
];
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "learner",
        &["prior", "policy", "forgetting", "resample_every", "gamma"],
    ),
    ("share", &["rule", "check_every", "broadcast_every"]),
    (
        "run",
        &["agents", "trials", "steps_per_trial", "reps", "seed"],
    ),
    (
        "metrics",
        &["record_every", "target_model_kl", "eval_every"],
    ),
];

fn assert_typed(result: Result<Scenario, Error>, text: &str) {
    match result {
        Ok(_) => {}
        Err(Error::Invalid { field, problem, .. }) => {
            assert!(!field.is_empty() && !problem.is_empty(), "{text}")
        }
        Err(Error::Syntax { problem, .. }) => assert!(!problem.is_empty(), "{text}"),
        Err(Error::Read { .. }) => {}
        Err(other) => panic!("unexpected error {other:?} for\n{text}"),
    }
}

/// A scenario file with each key at most once (a repeated key is a TOML
/// error that would stop the parser before any check of ours).
fn scenario_text(kind: usize, task: &[(usize, usize)], rest: &[(usize, usize, usize)]) -> String {
    let (kind, keys) = KINDS[kind % KINDS.len()];
    let mut text = format!("[task]\nkind = {kind}\n");
    let mut seen = std::collections::HashSet::new();
    for &(k, v) in task {
        let key = keys[k % keys.len()];
        if seen.insert(key) {
            text += &format!("{key} = {}\n", value(key, v));
        }
    }
    for (s, (name, keys)) in SECTIONS.iter().enumerate() {
        let mut lines = String::new();
        for (_, k, v) in rest.iter().filter(|(sec, _, _)| sec % SECTIONS.len() == s) {
            let key = keys[k % keys.len()];
            if seen.insert(key) {
                lines += &format!("{key} = {}\n", value(key, *v));
            }
        }
        if !lines.is_empty() {
            text += &format!("[{name}]\n{lines}");
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_scenarios_load_or_name_the_problem(
        kind in 0usize..6,
        task in proptest::collection::vec((0usize..64, 0usize..200), 0..6),
        rest in proptest::collection::vec((0usize..4, 0usize..8, 0usize..200), 0..6),
    ) {
        let text = scenario_text(kind, &task, &rest);
        // Keep the run small if the file happens to be valid: only parsing is tested.
        let overrides = Overrides { trials: Some(10), reps: Some(1), ..Overrides::default() };
        let result = Scenario::parse(&text, "fuzz.toml", "fuzz", &overrides);
        assert_typed(result, &text);
    }

    #[test]
    fn arbitrary_text_never_panics_the_scenario_parser(text in "\\PC{0,200}") {
        assert_typed(Scenario::parse(&text, "fuzz.toml", "fuzz", &Overrides::default()), &text);
    }

    #[test]
    fn hostile_model_files_load_or_name_the_problem(
        states in prop_oneof![Just("0"), Just("1"), Just("2"), Just("1000000000"), Just("-1"), Just("\"2\""), Just("1.5")],
        actions in prop_oneof![Just("0"), Just("1"), Just("2"), Just("99999999999")],
        entries in proptest::collection::vec(
            (0i64..4, prop_oneof![Just(0.0), Just(0.5), Just(1.0), Just(-0.5), Just(1.5), Just(1e300)], any::<bool>()),
            0..6,
        ),
        shape in 0usize..3,
    ) {
        let list: Vec<String> = entries
            .iter()
            .map(|(n, p, t)| format!("[{n}, {p}, 0.0, {t}]"))
            .collect();
        let row = format!("[{}]", list.join(", "));
        let transitions = match shape {
            0 => format!("[[{row}], [{row}]]"),
            1 => format!("[[{row}, {row}], [{row}, {row}]]"),
            _ => format!("[{row}]"),
        };
        let text = format!("{{\"n_states\": {states}, \"n_actions\": {actions}, \"transitions\": {transitions}}}");
        match TabularMdp::parse(&text, "fuzz.json", 0.9) {
            Ok(m) => {
                let shape = m.shape();
                let mut p = vec![0.0; shape.outcomes];
                for row in 0..shape.rows() {
                    m.truth().model().outcome_probs_into(row, &mut p);
                    prop_assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                }
            }
            Err(Error::Invalid { field, .. }) => prop_assert!(!field.is_empty()),
            Err(Error::Syntax { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?} for {text}"),
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_model_loader(text in "\\PC{0,200}") {
        let _ = TabularMdp::parse(&text, "fuzz.json", 0.9);
    }

    #[test]
    fn evidence_updates_commute(
        updates in proptest::collection::vec((0usize..6, 0usize..3, 0.0f64..5.0), 0..40),
        seed in any::<u64>(),
    ) {
        let apply = |order: &[(usize, usize, f64)]| {
            let mut e = Evidence::new(6, 3);
            for &(row, outcome, w) in order {
                e.add(row, outcome, w);
            }
            (0..6)
                .map(|r| e.row(r).map(<[f64]>::to_vec).unwrap_or_else(|| vec![0.0; 3]))
                .collect::<Vec<_>>()
        };
        let mut shuffled = updates.clone();
        // A seeded Fisher–Yates shuffle.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (a, b) = (apply(&updates), apply(&shuffled));
        for (ra, rb) in a.iter().zip(&b) {
            for (x, y) in ra.iter().zip(rb) {
                // Sums of the same terms in another order: equal to rounding.
                prop_assert!((x - y).abs() <= 1e-12 * (1.0 + x.abs()));
            }
        }
    }
}
