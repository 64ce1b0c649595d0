//! A labelled dataset as a contextual bandit: every malformed input is
//! refused with the file, row and column, and a contextual agent learns the
//! shipped digits.

use std::io::Write;
use std::sync::Arc;

use parbayes::env::{Classification, ContextualTask, Dataset};
use parbayes::linear::{LinearAgent, LinearConfig, LinearPolicy, Noise};
use parbayes::rng::learner_rng;

fn csv(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn refusal(text: &str) -> String {
    let f = csv(text);
    let e = Dataset::from_csv(f.path(), "label", true).unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with(&f.path().display().to_string()),
        "names the file: {message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[test]
fn malformed_datasets_are_refused_naming_row_and_column() {
    let cases = [
        (
            "a,b,label\n1,2,0\n3,NaN,1\n",
            "row 3, column `b`: `NaN` is not a finite number",
        ),
        ("a,b,label\n1,,0\n3,4,1\n", "row 2, column `b`: empty"),
        (
            "a,b,label\n1,2,0\n3,4\n",
            "row 3: 2 fields; the header has 3",
        ),
        (
            "a,b,label\n1,2,0\n3,4,1,5\n",
            "row 3: 4 fields; the header has 3",
        ),
        (
            "a,b,label\n1,two,0\n3,4,1\n",
            "row 2, column `b`: `two` is not a finite number",
        ),
        (
            "a,b,class\n1,2,0\n3,4,1\n",
            "row 1: no column `label`; the columns are a, b, class",
        ),
        (
            "a,b,label\n1,2,3\n3,4,3\n",
            "every one of the 2 rows has class 3",
        ),
        (
            "a,b,label\n1,2,0\n3,4,2.5\n",
            "row 3, column `label`: `2.5` is not a class",
        ),
        (
            "a,b,label\n1,2,0\n3,4,x\n",
            "row 3, column `label`: `x` is not a class",
        ),
        ("label\n0\n1\n", "features: none"),
        ("a,b,label\n", "rows: none"),
        (
            "a,b,label\n1,inf,0\n3,4,1\n",
            "row 2, column `b`: `inf` is not a finite number",
        ),
    ];
    for (text, expected) in cases {
        let message = refusal(text);
        assert!(message.contains(expected), "{expected:?} in {message:?}");
    }
}

/// 10⁵ feature columns are refused from the header, by the memory their
/// statistics would need, before any row is read.
#[test]
fn a_hundred_thousand_features_are_refused_before_the_rows() {
    let mut text: String = (0..100_000).map(|k| format!("f{k},")).collect();
    text.push_str("label\n");
    // One row that would take 800 kB as numbers: never parsed.
    text.push_str(&"1,".repeat(100_000));
    text.push_str("0\n");
    let message = refusal(&text);
    assert!(message.contains("features: 100000"), "{message}");
    assert!(message.contains("GB per learner"), "{message}");
}

#[test]
fn labels_map_to_arms_and_features_standardise() {
    let f = csv("x,label,y\n1,10,5\n2,20,5\n3,10.0,5\n");
    let data = Dataset::from_csv(f.path(), "label", true).unwrap();
    assert_eq!((data.rows(), data.arms(), data.dim()), (3, 2, 3));
    assert_eq!(data.features(), ["x", "y"]);
    assert_eq!(
        (data.class(0), data.class(1), data.label(1), data.label(2)),
        (10, 20, 1, 0)
    );
    let sd = (2.0f64 / 3.0).sqrt();
    assert!((data.row(0)[0] + 1.0 / sd).abs() < 1e-12);
    assert_eq!(
        data.row(0)[1..],
        [0.0, 1.0],
        "a constant feature is 0; then the bias"
    );
    let raw = Dataset::from_csv(f.path(), "label", false).unwrap();
    assert_eq!(raw.row(2), [3.0, 5.0, 1.0]);
}

/// Each learner's stream visits every row once per pass, in an order of
/// its own; the same seed gives the same order.
#[test]
fn streams_are_per_learner_passes() {
    let rows: Vec<Vec<f64>> = (0..50).map(|i| vec![f64::from(i)]).collect();
    let labels = (0..50).map(|i| i % 3).collect();
    let data = Arc::new(Dataset::new(vec!["i".into()], rows, labels, false).unwrap());
    let order = |id: u32| {
        let mut task = Classification::new(data.clone());
        let mut rng = learner_rng(1, 0, id);
        let mut x = [0.0; 2];
        (0..100)
            .map(|_| {
                task.next_context(&mut rng, &mut x);
                x[0] as u32
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (order(0), order(1));
    for pass in [&a[..50], &a[50..], &b[..50]] {
        let mut seen = pass.to_vec();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }
    assert_ne!(a[..50], a[50..], "each pass is shuffled afresh");
    assert_ne!(a, b, "learners have orders of their own");
    assert_eq!(a, order(0));
}

/// On the shipped digits (1,797 8×8 images, 10 classes, from
/// scikit-learn), LinUCB over one pass is right far more often than
/// chance (10 %): a disjoint linear model per digit separates them well.
#[test]
fn a_linear_agent_learns_the_digits() {
    let data = Arc::new(Dataset::from_csv("data/digits.csv".as_ref(), "label", true).unwrap());
    assert_eq!((data.rows(), data.arms(), data.dim()), (1797, 10, 65));
    let config = LinearConfig::builder(data.arms(), data.dim())
        .policy(LinearPolicy::LinUcb { alpha: 0.5 })
        .noise(Noise::Known { variance: 0.1 })
        .build()
        .unwrap();
    let mut agent = LinearAgent::new(&config, 0, 1).unwrap();
    let mut task = Classification::new(data.clone());
    let mut rng = learner_rng(3, 0, 0);
    let mut x = vec![0.0; data.dim()];
    let mut right = 0;
    for _ in 0..2 * data.rows() {
        task.next_context(&mut rng, &mut x);
        let arm = agent.decide(&x).unwrap();
        let r = task.reward(arm, &mut rng);
        agent.observe(&x, arm, r).unwrap();
        right += r as u32;
    }
    let accuracy = f64::from(right) / (2.0 * data.rows() as f64);
    assert!(accuracy > 0.8, "accuracy {accuracy}");
}
