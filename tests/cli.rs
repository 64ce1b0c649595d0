//! The binary as a user meets it: bad input exits 2 with one line naming the
//! file and field; good input writes a results folder.

mod common;

use common::{parbayes, stderr};

use std::process::Command;

const GOOD: &str = r#"
[task]
kind = "bandit"
arms = [0.1, 0.5]
[run]
agents = [1, 2]
trials = 50
"#;

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
    (
        "grid-with-arms",
        "[task]\nkind = \"gridworld\"\narms = [0.1]\n",
        "task.arms",
    ),
    (
        "grid-cell-off",
        "[task]\nkind = \"gridworld\"\na_to = [5, 1]\n",
        "task.a_to",
    ),
    (
        "grid-huge",
        "[task]\nkind = \"gridworld\"\nsize = 1000000000\n",
        "task.size",
    ),
    (
        "grid-gamma-one",
        "[task]\nkind = \"gridworld\"\ngamma = 1.0\n",
        "task.gamma",
    ),
    (
        "grid-bad-start",
        "[task]\nkind = \"gridworld\"\nstart = \"middle\"\n",
        "task.start",
    ),
    (
        "grid-drift-step",
        "[task]\nkind = \"gridworld\"\n[[task.drift]]\nstep = 5\nintended = 0.5\n",
        "task.drift[0]",
    ),
    (
        "grid-drift-nan",
        "[task]\nkind = \"gridworld\"\n[[task.drift]]\ntrial = 5\nintended = nan\n",
        "task.drift[0].intended",
    ),
    (
        "grid-ucb",
        "[task]\nkind = \"gridworld\"\n[learner]\npolicy = \"ucb\"\n",
        "learner.policy",
    ),
    (
        "grid-resample-zero",
        "[task]\nkind = \"gridworld\"\n[learner]\nresample_every = 0\n",
        "learner.resample_every",
    ),
    (
        "grid-eval-misaligned",
        "[task]\nkind = \"gridworld\"\n[metrics]\nrecord_every = 4\neval_every = 10\n",
        "metrics.eval_every",
    ),
    (
        "bandit-eval",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[metrics]\neval_every = 10\n",
        "metrics.eval_every",
    ),
    (
        "tabular-no-model",
        "[task]\nkind = \"tabular\"\n",
        "task.model",
    ),
    (
        "vm-zero-mu",
        "[task]\nkind = \"vm\"\nper_vm = 0\n",
        "task.per_vm",
    ),
    (
        "vm-negative-mu",
        "[task]\nkind = \"vm\"\nper_vm = -5.0\n",
        "task.per_vm",
    ),
    (
        "vm-zero-bins",
        "[task]\nkind = \"vm\"\nbins = 0\n",
        "task.bins",
    ),
    (
        "vm-zero-vms",
        "[task]\nkind = \"vm\"\nmax_vms = 0\n",
        "task.max_vms",
    ),
    (
        "vm-negative-rate",
        "[task]\nkind = \"vm\"\ndemand = [100, -3]\n",
        "task.demand[1]",
    ),
    (
        "vm-nan-rate",
        "[task]\nkind = \"vm\"\ndemand = nan\n",
        "task.demand[0]",
    ),
    (
        "vm-nan-sigma",
        "[task]\nkind = \"vm\"\nnoise_sigma = nan\n",
        "task.noise_sigma",
    ),
    (
        "vm-sla-off-edge",
        "[task]\nkind = \"vm\"\nsla_ms = 410\n",
        "task.sla_ms",
    ),
    (
        "vm-huge",
        "[task]\nkind = \"vm\"\nbins = 200\nmax_vms = 100\n",
        "task.bins",
    ),
    (
        "vm-bad-demand",
        "[task]\nkind = \"vm\"\ndemand = \"lots\"\n",
        "task.demand",
    ),
    (
        "vm-missing-trace",
        "[task]\nkind = \"vm\"\nresponse_times = \"nowhere.csv\"\n",
        "nowhere.csv",
    ),
    (
        "drift-after-the-run",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[[task.drift]]\nstep = 5000\nscale = 0.5\n[run]\ntrials = 100\n",
        "task.drift[0].step",
    ),
    (
        "grid-drift-after-the-run",
        "[task]\nkind = \"gridworld\"\n[[task.drift]]\ntrial = 100\nintended = 0.7\n[run]\ntrials = 100\n",
        "task.drift[0].trial",
    ),
    (
        "negative-fault-rate",
        "[task]\nkind = \"bandit\"\narms = [0.1]\n[run]\nfault_kill = -0.1\n",
        "run.fault_kill",
    ),
    ("unknown-kind", "[task]\nkind = \"maze\"\n", "task.kind"),
];

/// (name, model file contents, text the error must contain)
const MALFORMED_MODELS: &[(&str, &str, &str)] = &[
    (
        "short-sum",
        r#"{"n_states": 2, "n_actions": 1, "transitions": [[[[0, 0.5, 0, false], [1, 0.4, 0, false]]], [[[1, 1.0, 0, false]]]]}"#,
        "transitions[0][0]: state 0, action 0: probabilities sum to 0.9",
    ),
    (
        "negative",
        r#"{"n_states": 2, "n_actions": 1, "transitions": [[[[0, 1.5, 0, false], [1, -0.5, 0, false]]], [[[1, 1.0, 0, false]]]]}"#,
        "state 0, action 0, entry 0: probability 1.5",
    ),
    (
        "nan",
        r#"{"n_states": 2, "n_actions": 1, "transitions": [[[[0, NaN, 0, false]]], [[[1, 1.0, 0, false]]]]}"#,
        "line 1",
    ),
    (
        "index-out-of-range",
        r#"{"n_states": 2, "n_actions": 1, "transitions": [[[[0, 1.0, 0, false]]], [[[7, 1.0, 0, false]]]]}"#,
        "state 1, action 0, entry 0: next state 7 is out of range",
    ),
    (
        "ragged",
        r#"{"n_states": 2, "n_actions": 2, "transitions": [[[[0, 1.0, 0, false]], [[1, 1.0, 0, false]]], [[[1, 1.0, 0, false]]]]}"#,
        "state 1 lists 1 actions; n_actions is 2",
    ),
    (
        "billion-states",
        r#"{"n_states": 1000000000, "n_actions": 4, "transitions": []}"#,
        "n_states",
    ),
    (
        "bad-start",
        r#"{"n_states": 1, "n_actions": 1, "initial_state_distribution": [0.5], "transitions": [[[[0, 1.0, 0, false]]]]}"#,
        "initial_state_distribution",
    ),
    ("not-json", "{ n_states: 2 }", "line 1"),
];

#[test]
fn every_malformed_model_file_exits_2_naming_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in MALFORMED_MODELS {
        let model = format!("{name}.json");
        std::fs::write(dir.path().join(&model), text).unwrap();
        let scenario = format!("{name}.toml");
        std::fs::write(
            dir.path().join(&scenario),
            format!("[task]\nkind = \"tabular\"\nmodel = \"{model}\"\n"),
        )
        .unwrap();
        for args in [&["run", &scenario, "--out", "res"][..], &["solve", &model]] {
            let out = parbayes(args, dir.path());
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
            assert!(
                err.contains(&model),
                "{name}: does not name the file: {err}"
            );
            assert!(
                err.contains(needle),
                "{name}: does not say `{needle}`: {err}"
            );
            assert!(!dir.path().join("res").exists(), "{name}");
        }
    }
}

/// (name, CSV text, what the one line must say besides the file)
const MALFORMED_DATASETS: &[(&str, &str, &str)] = &[
    ("nan-cell", "x,label\n1,0\nnan,1\n", "row 3, column `x`"),
    ("empty-cell", "x,label\n1,0\n,1\n", "row 3, column `x`"),
    ("ragged", "x,y,label\n1,2,0\n1,1\n", "row 3"),
    ("text", "x,label\n1,0\nabc,1\n", "row 3, column `x`"),
    ("no-label", "x,y\n1,0\n2,1\n", "no column `label`"),
    ("one-class", "x,label\n1,0\n2,0\n", "two classes"),
    (
        "fraction-label",
        "x,label\n1,0\n2,0.5\n",
        "row 3, column `label`",
    ),
    ("no-features", "label\n0\n1\n", "features"),
];

#[test]
fn every_malformed_dataset_exits_2_naming_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    // 10⁵ feature columns: refused from the header by the memory estimate.
    let wide: String = (0..100_000).map(|k| format!("f{k},")).collect::<String>() + "label\n";
    let mut cases: Vec<(&str, String, &str)> = MALFORMED_DATASETS
        .iter()
        .map(|(n, t, w)| (*n, t.to_string(), *w))
        .collect();
    cases.push(("wide", wide, "GB per learner"));
    for (name, text, needle) in &cases {
        let data = format!("{name}.csv");
        std::fs::write(dir.path().join(&data), text).unwrap();
        let scenario = format!("{name}.toml");
        std::fs::write(
            dir.path().join(&scenario),
            format!("[task]\nkind = \"classification\"\ndata = \"{data}\"\n"),
        )
        .unwrap();
        for args in [
            &["run", &scenario, "--out", "res"][..],
            &["check", &scenario],
        ] {
            let out = parbayes(args, dir.path());
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
            assert!(err.contains(&data), "{name}: does not name the file: {err}");
            assert!(
                err.contains(needle),
                "{name}: does not say `{needle}`: {err}"
            );
            assert!(!dir.path().join("res").exists(), "{name}");
        }
    }
}

#[test]
fn a_contextual_scenario_refuses_what_its_kind_does_not_take() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in [
        (
            "zero-features",
            "[task]\nkind = \"linear\"\narms = 3\nfeatures = 0\n",
            "task.features",
        ),
        (
            "no-arms",
            "[task]\nkind = \"linear\"\nfeatures = 3\n",
            "task.arms",
        ),
        (
            "rates",
            "[task]\nkind = \"linear\"\narms = [0.1]\nfeatures = 3\n",
            "task.arms",
        ),
        (
            "gamma",
            "[task]\nkind = \"linear\"\narms = 2\nfeatures = 2\ngamma = 0.9\n",
            "task",
        ),
        (
            "prior",
            "[task]\nkind = \"linear\"\narms = 2\nfeatures = 2\n[learner]\nprior = 2.0\n",
            "learner.prior",
        ),
        (
            "tabular-policy",
            "[task]\nkind = \"linear\"\narms = 2\nfeatures = 2\n[learner]\npolicy = \"softmax:1\"\n",
            "learner.policy",
        ),
        (
            "ridge-on-bandit",
            "[task]\nkind = \"bandit\"\narms = [0.5]\n[learner]\nridge = 1.0\n",
            "learner.ridge",
        ),
        (
            "data-on-bandit",
            "[task]\nkind = \"bandit\"\narms = [0.5]\ndata = \"x.csv\"\n",
            "task.data",
        ),
        (
            "bad-theta",
            "[task]\nkind = \"linear\"\narms = 2\nfeatures = 2\ntheta = [[1.0, 2.0], [1.0]]\n",
            "task.theta[1]",
        ),
        (
            "too-big",
            "[task]\nkind = \"linear\"\narms = 10\nfeatures = 2000\n[run]\nagents = [100000]\n",
            "GB",
        ),
        (
            "late-drift",
            "[task]\nkind = \"linear\"\narms = 1\nfeatures = 1\n[[task.drift]]\nstep = 99999\n[run]\ntrials = 10\n",
            "task.drift",
        ),
    ] {
        let file = format!("{name}.toml");
        std::fs::write(dir.path().join(&file), text).unwrap();
        let out = parbayes(&["run", &file, "--out", "res"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains(needle),
            "{name}: does not say `{needle}`: {err}"
        );
        assert!(!dir.path().join("res").exists(), "{name}");
    }
    // A policy of the other family on the command line.
    std::fs::write(
        dir.path().join("lin.toml"),
        "[task]\nkind = \"linear\"\narms = 2\nfeatures = 2\n",
    )
    .unwrap();
    let out = parbayes(&["run", "lin.toml", "--policy", "softmax:1"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--policy"));
}

#[test]
fn a_contextual_run_writes_its_records_and_a_sweep_compares_policies() {
    let dir = tempfile::tempdir().unwrap();
    let out = parbayes(
        &[
            "run", "digits", "--agents", "1,4", "--reps", "1", "--out", "run", "--format", "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["task"], "classification");
    for f in ["trials.csv", "run.json", "summary.json", "curves.svg"] {
        assert!(dir.path().join("run").join(f).exists(), "{f}");
    }
    let out = parbayes(
        &[
            "sweep",
            "linear",
            "--agents",
            "4",
            "--reps",
            "1",
            "--trials",
            "40",
            "--policy",
            "thompson,linucb:1,greedy",
            "--share",
            "never,doubling:1,always",
            "--out",
            "sw",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = sweep["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    assert!(dir.path().join("sw/policies.svg").exists());
    assert!(rows.iter().any(|r| r["policy"] == "linucb:1"));
}

#[test]
fn malformed_response_time_files_exit_2_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, csv, needle) in [
        ("header-only", "load,response_ms\n", "no rows"),
        ("text", "load,response_ms\n0.5,fast\n", "line 2"),
        ("negative", "load,response_ms\n0.5,100\n0.7,-4\n", "line 3"),
        ("missing-column", "load\n0.5\n", "line 2"),
    ] {
        let file = format!("{name}.csv");
        std::fs::write(dir.path().join(&file), csv).unwrap();
        let scenario = format!("{name}.toml");
        std::fs::write(
            dir.path().join(&scenario),
            format!("[task]\nkind = \"vm\"\nresponse_times = \"{file}\"\n"),
        )
        .unwrap();
        let out = parbayes(&["run", &scenario, "--out", "res"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(&file) && err.contains(needle), "{name}: {err}");
        assert!(!dir.path().join("res").exists());
    }
}

#[test]
fn a_vm_run_reports_every_baseline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vm.toml"),
        "[task]\nkind = \"vm\"\nmax_vms = 4\ndemand = [150, 250]\n[run]\nagents = [2]\ntrials = 3\nsteps_per_trial = 4\n",
    )
    .unwrap();
    let out = parbayes(
        &["run", "vm.toml", "--out", "res", "--format", "json"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&String> = v["baselines"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 5, "{names:?}");
    for name in ["fixed-1", "fixed-4", "threshold"] {
        assert!(v["baselines"][name].as_f64().unwrap() < 0.0, "{name}");
    }
    assert!(v["results"][0]["final"]["policy_loss"].as_f64().is_some());
    assert_eq!(v["task"], "vm");
}

#[test]
fn an_unwritable_results_folder_exits_2_before_running() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    // A folder cannot be made inside a regular file, whoever runs the test.
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let out = parbayes(&["run", "good.toml", "--out", "a-file/results"], dir.path());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("a-file/results") && err.contains("--out"),
        "{err}"
    );
}

#[test]
fn ctrl_c_writes_a_checkpoint_exits_130_and_resume_finishes_the_same_run() {
    interrupt_and_resume("-INT");
}

#[test]
fn sigterm_stops_like_ctrl_c_and_loses_nothing() {
    interrupt_and_resume("-TERM");
}

/// Sends `signal` to a run under way, then resumes it and compares the
/// result with a run never stopped.
fn interrupt_and_resume(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "bandit-news",
        "--agents",
        "1,10",
        "--reps",
        "6",
        "--trials",
        "6000",
    ];
    let whole = parbayes(
        &[&args[..], &["--out", "whole", "--format", "json"]].concat(),
        dir.path(),
    );
    assert!(whole.status.success(), "{}", stderr(&whole));

    let child = Command::new(env!("CARGO_BIN_EXE_parbayes"))
        .args([&args[..], &["--out", "cut", "--checkpoint-every", "500"]].concat())
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run is under way, then press Ctrl-C.
    let csv = dir.path().join("cut").join("trials.csv");
    let started = std::time::Instant::now();
    while std::fs::metadata(&csv).map_or(0, |m| m.len()) < 2000 {
        assert!(started.elapsed().as_secs() < 60, "the run never started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("parbayes resume"), "{err}");
    assert!(!dir.path().join("cut").join("summary.json").exists());

    let resumed = parbayes(&["resume", "cut"], dir.path());
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(name).join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let (a, b) = (read("whole"), read("cut"));
    for (x, y) in a["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["results"].as_array().unwrap())
    {
        assert_eq!(x["final"], y["final"]);
        assert_eq!(x["stderr"], y["stderr"]);
    }
    let rows =
        |name: &str| std::fs::read_to_string(dir.path().join(name).join("trials.csv")).unwrap();
    assert_eq!(rows("whole"), rows("cut"));
}

#[test]
fn a_sweep_writes_its_table_csv_json_and_pareto_plot() {
    let (dir, rows) = sweep_good(&["--share", "never,kl:0.01,always"]);
    assert_eq!(rows.len(), 6); // 3 rules × agents [1, 2]
    for field in [
        "agents",
        "share",
        "model_kl",
        "global_model_kl",
        "reward_per_step",
        "regret_per_agent",
        "messages_up",
        "messages_down",
        "rows_up",
        "rows_down",
        "bytes_up",
        "bytes_down",
        "accuracy_gain",
    ] {
        assert!(rows[0].get(field).is_some(), "{field}");
    }
    for file in ["sweep.csv", "sweep.json", "pareto.svg", "trials.csv"] {
        assert!(dir.path().join("sw").join(file).exists(), "{file}");
    }
    assert_is_png(&dir.path().join("sw").join("pareto.png"), (1200, 780));
    // One policy: no comparison figure.
    assert!(!dir.path().join("sw").join("policies.svg").exists());
    let bad = parbayes(&["sweep", "good.toml", "--share", "kl:-1"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_sweep_over_three_policies_writes_rows_for_each_and_their_figure() {
    let policies = ["posterior-sampling", "epsilon-greedy:0.15", "softmax:1"];
    let (dir, rows) = sweep_good(&["--policy", &policies.join(",")]);
    // Without --share, several policies run under the scenario's own rule.
    assert_eq!(rows.len(), 3 * 2, "3 policies × agents [1, 2]");
    for p in policies {
        let mine: Vec<_> = rows.iter().filter(|r| r["policy"] == p).collect();
        assert_eq!(mine.len(), 2, "{p}");
        assert!(mine.iter().all(|r| r["share"] == "kl:0.01"));
    }
    // Different strategies, different learning.
    let regret = |p: &str| {
        rows.iter()
            .find(|r| r["policy"] == p && r["agents"] == 2)
            .unwrap()["regret_per_agent"]
            .as_f64()
            .unwrap()
    };
    assert_ne!(regret(policies[0]), regret(policies[1]));
    let sw = dir.path().join("sw");
    let csv = std::fs::read_to_string(sw.join("sweep.csv")).unwrap();
    assert!(csv.starts_with("agents,policy,share,"));
    assert_eq!(csv.lines().count(), 1 + 6);
    assert!(
        std::fs::read_to_string(sw.join("policies.svg"))
            .unwrap()
            .contains("softmax, τ = 1")
    );
    // One share rule: no trade-off to draw.
    assert!(!sw.join("pareto.svg").exists());
    assert_is_png(&sw.join("policies.png"), (1400, 640));

    let bad = parbayes(
        &[
            "sweep",
            "good.toml",
            "--policy",
            "posterior-sampling,greedy",
        ],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("greedy"), "{}", stderr(&bad));
}

/// `parbayes sweep good.toml ARGS --out sw --format json` in a fresh folder:
/// the folder and the sweep's rows.
fn sweep_good(args: &[&str]) -> (tempfile::TempDir, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), GOOD).unwrap();
    let mut all = vec!["sweep", "good.toml"];
    all.extend(args);
    all.extend(["--out", "sw", "--format", "json"]);
    let out = parbayes(&all, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (dir, v["rows"].as_array().unwrap().clone())
}

/// A PNG of the given size, with more than one colour in it.
fn assert_is_png(path: &std::path::Path, (w, h): (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    // IHDR: width and height, big-endian, after the signature and chunk header.
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), (w, h), "{}", path.display());
    assert!(bytes.len() > 10_000, "{} looks blank", path.display());
}

#[test]
fn solve_prints_the_optimal_value_as_json_and_an_arrow_map() {
    let dir = std::env::current_dir().unwrap();
    let out = parbayes(
        &["solve", "scenarios/gridworld.toml", "--format", "json"],
        &dir,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["gamma"], 0.9);
    let values = v["values"].as_array().unwrap();
    assert_eq!(values.len(), 25);
    // Random start: V*(start) is the mean of V* over the cells.
    let mean = values.iter().map(|x| x.as_f64().unwrap()).sum::<f64>() / 25.0;
    assert!((v["v_start"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!(v["residual"].as_f64().unwrap() * 9.0 <= 1e-11);
    assert!(v["iterations"].as_u64().unwrap() > 10);
    assert_eq!(v["policy"].as_array().unwrap().len(), 25);

    let table = parbayes(&["solve", "gridworld"], &dir);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("V*(start) = 9.28"), "{text}");
    assert!(text.contains('↑') && text.contains('←'), "{text}");

    let river = parbayes(
        &[
            "solve",
            "scenarios/models/riverswim.json",
            "--gamma",
            "0.95",
        ],
        &dir,
    );
    assert!(String::from_utf8_lossy(&river.stdout).contains("V*(start) = 3.29"));
    let bad = parbayes(&["solve", "gridworld", "--gamma", "1"], &dir);
    assert_eq!(bad.status.code(), Some(2));
}

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
        &["run", "good.toml", "--fault-kill", "1.5"],
        &["run", "good.toml", "--fault-kill", "0.1", "--mode", "async"],
        &["run", "good.toml", "--checkpoint-every", "0"],
        &["resume", "no-such-folder"],
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
    assert_is_png(&res.join("curves.png"), (1400, 640));

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
        &["solve", "--help"],
        &["sweep", "--help"],
        &["resume", "--help"],
    ] {
        let out = parbayes(sub, &dir);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{sub:?}"
        );
    }
    let listed = parbayes(&["scenarios"], &dir);
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let shipped = [
        "bandit-news",
        "bandit-news-drift",
        "gridworld",
        "gridworld-drift",
        "vm-allocation",
        "riverswim",
        "paper-fig2",
        "paper-fig3",
        "paper-fig4",
        "paper-fig6",
        "linear",
        "digits",
    ];
    assert_eq!(names, shipped);
    // Each passes `check` by name and as the file in scenarios/.
    let files: Vec<String> = shipped
        .iter()
        .map(|n| format!("scenarios/{n}.toml"))
        .collect();
    let args: Vec<&str> = ["check"]
        .into_iter()
        .chain(shipped)
        .chain(files.iter().map(String::as_str))
        .collect();
    let check = parbayes(&args, &dir);
    assert!(check.status.success(), "{}", stderr(&check));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout)
            .matches(": ok")
            .count(),
        2 * shipped.len()
    );
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
            .starts_with("2,ramp:100/doubling:0.03,posterior-sampling,0,20,20,")
    );
}
