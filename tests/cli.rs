//! The binary as a user meets it: bad input exits 2 with one line naming the
//! file and field; good input writes a results folder.

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = r#"
[task]
kind = "bandit"
arms = [0.1, 0.5]
[run]
agents = [1, 2]
trials = 50
"#;

fn parbayes(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parbayes"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// (name, file contents, text the error must contain)
const MALFORMED: &[(&str, &str, &str)] = &[
    ("empty", "", "task"),
    ("not-toml", "this is not = = toml", "not-toml.toml:1"),
    (
        "unknown-field",
        "[task]\nkind = \"bandit\"\narms = [0.1]\narmz = 3\n",
        "armz",
    ),
    (
        "unknown-section",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[runn]\n",
        "runn",
    ),
    (
        "wrong-type",
        "[task]\nkind = \"bandit\"\narms = [\"a\"]\n",
        "task.arms[0]",
    ),
    (
        "nan-probability",
        "[task]\nkind = \"bandit\"\narms = [0.1, nan]\n",
        "task.arms[1]",
    ),
    (
        "out-of-range",
        "[task]\nkind = \"bandit\"\narms = [0.1, 1.5]\n",
        "task.arms[1]",
    ),
    (
        "negative",
        "[task]\nkind = \"bandit\"\narms = [-0.1]\n",
        "task.arms[0]",
    ),
    (
        "zero-arms",
        "[task]\nkind = \"bandit\"\narms = []\n",
        "task.arms",
    ),
    ("missing-arms", "[task]\nkind = \"bandit\"\n", "task.arms"),
    ("unknown-task", "[task]\nkind = \"chess\"\n", "task.kind"),
    (
        "zero-agents",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\nagents = [0]\n",
        "run.agents",
    ),
    (
        "no-agents",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\nagents = []\n",
        "run.agents",
    ),
    (
        "too-many-agents",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\nagents = [1000000000]\n",
        "run.agents",
    ),
    (
        "negative-agents",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\nagents = [-3]\n",
        "run.agents",
    ),
    (
        "zero-trials",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\ntrials = 0\n",
        "run.trials",
    ),
    (
        "bad-rule",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[share]\nrule = \"sometimes\"\n",
        "share.rule",
    ),
    (
        "bad-policy",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[learner]\npolicy = \"greedy\"\n",
        "learner.policy",
    ),
    (
        "zero-prior",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[learner]\nprior = 0.0\n",
        "learner.prior",
    ),
    (
        "inf-forgetting",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[learner]\nforgetting = inf\n",
        "learner.forgetting",
    ),
    (
        "drift-bad-arm",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[[task.drift]]\nstep = 5\nset = [{ arm = 4, p = 0.2 }]\n",
        "task.drift[0].set[0].arm",
    ),
    (
        "drift-overflows",
        "[task]\nkind = \"bandit\"\narms = [0.5]\n[[task.drift]]\nstep = 5\nscale = 3.0\n",
        "task.drift[0]",
    ),
];

#[test]
fn every_malformed_scenario_exits_2_with_one_line_and_no_results() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in MALFORMED {
        let file = format!("{name}.toml");
        std::fs::write(dir.path().join(&file), text).unwrap();
        let out = parbayes(&["run", &file, "--out", "res"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: not one line:\n{err}"
        );
        assert!(err.contains(&file), "{name}: does not name the file: {err}");
        assert!(
            err.contains(needle),
            "{name}: does not name `{needle}`: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert!(
            !dir.path().join("res").exists(),
            "{name}: a results folder was created"
        );
        let check = parbayes(&["check", &file], dir.path());
        assert_eq!(check.status.code(), Some(2), "check {name}");
    }
}

#[test]
fn bad_command_line_values_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    for args in [
        &["run", "good.toml", "--agents", "0"][..],
        &["run", "good.toml", "--share", "kl:-1"],
        &["run", "good.toml", "--policy", "greedy"],
        &["run", "good.toml", "--reps", "0"],
        &["run", "missing.toml"],
    ] {
        let out = parbayes(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
}

#[test]
fn a_run_writes_csv_json_and_svg_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    let out = parbayes(
        &["run", "good.toml", "--out", "res", "--format", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["results"].as_array().unwrap().len(), 2);
    assert_eq!(summary["results"][1]["agents"], 2);
    assert!(summary["results"][1]["final"]["bytes_up"].as_f64().unwrap() > 0.0);
    let res = dir.path().join("res");
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(res.join("summary.json")).unwrap()).unwrap();
    assert_eq!(on_disk, summary);
    let csv = std::fs::read_to_string(res.join("trials.csv")).unwrap();
    assert!(csv.starts_with("agents,share,policy,rep,trial,step,model_kl,global_model_kl"));
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 50,
        "one row per N × trial (record_every = 1 for 50 trials)"
    );
    assert!(
        std::fs::read_to_string(res.join("curves.svg"))
            .unwrap()
            .contains("<svg")
    );

    let again = parbayes(&["run", "good.toml", "--out", "res"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"));
}

#[test]
fn same_seed_gives_identical_summary_finals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    let finals = |out: &str, threads: &str| {
        let o = parbayes(
            &[
                "run",
                "good.toml",
                "--out",
                out,
                "--format",
                "json",
                "--threads",
                threads,
            ],
            dir.path(),
        );
        assert!(o.status.success());
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["final"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(finals("a", "1"), finals("b", "2"));
}

#[test]
fn every_help_has_an_example_and_shipped_scenarios_check() {
    let dir = std::env::current_dir().unwrap();
    for sub in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["scenarios", "--help"],
    ] {
        let out = parbayes(sub, &dir);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{sub:?}"
        );
    }
    let listed = parbayes(&["scenarios"], &dir);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("bandit-news-drift"));
    let check = parbayes(
        &[
            "check",
            "scenarios/bandit-news.toml",
            "scenarios/bandit-news-drift.toml",
        ],
        &dir,
    );
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn a_convergence_target_reports_trials_and_speedup() {
    let dir = tempfile::tempdir().unwrap();
    // ε-greedy keeps sampling both arms, so the error really converges
    // rather than crossing the target by luck on a few noisy draws.
    let text = format!("{GOOD}reps = 6\n[metrics]\ntarget_model_kl = 0.01\nrecord_every = 10\n")
        .replace("trials = 50", "trials = 2000");
    std::fs::write(dir.path().join("target.toml"), text).unwrap();
    let out = parbayes(
        &[
            "run",
            "target.toml",
            "--out",
            "res",
            "--format",
            "json",
            "--share",
            "always",
            "--policy",
            "epsilon-greedy:0.5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t1 = v["results"][0]["converged_trial"].as_f64().unwrap();
    let t2 = v["results"][1]["converged_trial"].as_f64().unwrap();
    assert!(t2 < t1, "two pooled learners converge sooner: {t1} vs {t2}");
    assert_eq!(v["results"][1]["speedup"].as_f64().unwrap(), t1 / t2);
    assert_eq!(v["results"][0]["speedup"].as_f64().unwrap(), 1.0);
}

#[test]
fn fewer_trials_than_the_files_record_interval_still_records_the_last_trial() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let news = format!("{root}/scenarios/bandit-news.toml");
    let out = parbayes(
        &[
            "run", &news, "--agents", "2", "--reps", "1", "--trials", "20", "--out", "res",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(dir.path().join("res/trials.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("2,kl:0.00001,posterior-sampling,0,20,20,")
    );
}
