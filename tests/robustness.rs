//! The second red-team round, through the binary: resume continues only the
//! run that was started or changes nothing; one writer per results folder;
//! what cannot run is refused before anything is written; no input panics.

mod common;

use common::{StopAt, parbayes, stderr};

use std::path::Path;
use std::process::{Command, Output, Stdio};

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use parbayes::report::{FolderLock, Manifest, ResultsDir, run_in_folder};
use parbayes::runtime::Mode;
use parbayes::{Error, Overrides, RunOptions, Scenario};

/// Exit 2 with one line saying `words`, and no panic.
fn refused(o: &Output, words: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(words), "wanted `{words}` in: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

const NEWS: &str = r#"
name = "news"
[task]
kind = "bandit"
arms = [0.1, 0.2, 0.5]
[run]
agents = [1, 3]
reps = 2
trials = 400
"#;

/// Every file under `dir` with its bytes, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A finished run of `NEWS` in `dir/out`, and in `dir/cut` one stopped at
/// trial 200 as Ctrl-C stops one: records so far, checkpoints, a manifest,
/// no summary.
fn interrupted(dir: &Path) {
    let file = dir.join("news.toml");
    std::fs::write(&file, NEWS).unwrap();
    let o = parbayes(&["run", "news.toml", "--out", "out"], dir);
    assert!(o.status.success(), "{}", stderr(&o));

    let scenario = Scenario::load(&file, &Overrides::default()).unwrap();
    let results = ResultsDir::create(&dir.join("cut")).unwrap();
    Manifest::new(
        &file,
        &scenario,
        &Overrides::default(),
        Some(1),
        Some(100),
        Mode::Lockstep,
    )
    .write(&results)
    .unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let mut options = RunOptions {
        threads: 1,
        ..RunOptions::default()
    };
    options.continuity.stop = Some(flag.clone());
    let mut stop = StopAt { at: 200, flag };
    let stopped = run_in_folder(&scenario, &options, results, Some(100), &mut stop);
    assert!(matches!(stopped, Err(Error::Interrupted)), "{stopped:?}");
    assert!(dir.join("cut").join("checkpoints").is_dir());
}

#[test]
fn resume_refuses_a_changed_scenario_or_manifest_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    interrupted(dir.path());
    let cut = dir.path().join("cut");
    let before = snapshot(&cut);
    // Other rates; more arms (this panicked after cutting trials.csv);
    // another rule.
    for edit in [
        NEWS.replace("0.5]", "0.6]"),
        NEWS.replace("0.5]", "0.5, 0.7]"),
        format!("{NEWS}[share]\nrule = \"always\"\n"),
    ] {
        std::fs::write(dir.path().join("news.toml"), &edit).unwrap();
        refused(
            &parbayes(&["resume", "cut"], dir.path()),
            "changed since the run started",
        );
        assert_eq!(snapshot(&cut), before);
    }
    std::fs::write(dir.path().join("news.toml"), NEWS).unwrap();
    // An edited manifest is another run too.
    let manifest = std::fs::read_to_string(cut.join("run.json")).unwrap();
    std::fs::write(
        cut.join("run.json"),
        manifest.replace("\"trials\": null", "\"trials\": 300"),
    )
    .unwrap();
    refused(
        &parbayes(&["resume", "cut"], dir.path()),
        "changed since the run started",
    );
    std::fs::write(cut.join("run.json"), &manifest).unwrap();
    // Unchanged, it resumes.
    let o = parbayes(&["resume", "cut", "--format", "json"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["scenario"], "news");
}

#[test]
fn resume_refuses_a_finished_run_a_damaged_checkpoint_and_an_async_run() {
    let dir = tempfile::tempdir().unwrap();
    interrupted(dir.path());
    // Finished: nothing to do, nothing touched.
    let out = dir.path().join("out");
    let before = snapshot(&out);
    refused(&parbayes(&["resume", "out"], dir.path()), "has finished");
    assert_eq!(snapshot(&out), before);
    // A damaged checkpoint is found before trials.csv is cut.
    let cut = dir.path().join("cut");
    let checkpoint = std::fs::read_dir(cut.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "msgpack"))
        .expect("a checkpoint");
    std::fs::write(&checkpoint, b"not a checkpoint").unwrap();
    let before = snapshot(&cut);
    refused(&parbayes(&["resume", "cut"], dir.path()), "damaged");
    assert_eq!(snapshot(&cut), before);
    // An async run keeps no checkpoints: it is not re-run in lockstep.
    let o = parbayes(
        &["run", "news.toml", "--mode", "async", "--out", "free"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(dir.path().join("free").join("summary.json")).unwrap();
    refused(&parbayes(&["resume", "free"], dir.path()), "async");
}

#[test]
fn one_writer_per_results_folder() {
    let dir = tempfile::tempdir().unwrap();
    interrupted(dir.path());
    let cut = dir.path().join("cut");
    let before = snapshot(&cut);
    // Another process holds the folder: a resume and a run into it are refused.
    let held = FolderLock::acquire(&cut).unwrap();
    refused(&parbayes(&["resume", "cut"], dir.path()), "in use");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let lock = FolderLock::acquire(&empty).unwrap();
    refused(
        &parbayes(&["run", "news.toml", "--out", "empty"], dir.path()),
        "in use",
    );
    drop((held, lock));
    assert_eq!(snapshot(&cut), before);
    assert!(parbayes(&["resume", "cut"], dir.path()).status.success());
}

#[test]
fn what_cannot_run_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "bandit-news", "--agents", "2,2"], "listed twice"),
        (&["run", "bandit-news", "--threads", "100000"], "threads"),
        (&["run", "vm-allocation", "--agents", "100000"], "GB"),
        (
            &[
                "run",
                "bandit-news",
                "--mode",
                "async",
                "--fault-kill",
                "0.1",
            ],
            "fault_kill",
        ),
        (
            &["run", "bandit-news-drift", "--mode", "async"],
            "forgetting",
        ),
        (&["sweep", "bandit-news", "--threads", "0"], "--threads"),
    ];
    for (args, words) in cases {
        refused(&parbayes(args, dir.path()), words);
        assert!(
            !dir.path().join("results").exists(),
            "{args:?} wrote results"
        );
    }
}

#[test]
fn hostile_values_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let vm = std::fs::read_to_string("scenarios/vm-allocation.toml").unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let costly: String = vm
        .lines()
        .map(|l| {
            if l.starts_with("vm_cost") {
                "vm_cost = 1e308"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(costly.contains("vm_cost = 1e308"));
    let cost = write("cost.toml", &costly);
    for cmd in ["check", "solve"] {
        refused(&parbayes(&[cmd, &cost], dir.path()), "vm_cost");
    }
    let cases = [
        (
            NEWS.replace("name = \"news\"", "name = \"../escape\""),
            "name",
        ),
        (
            NEWS.replace(
                "name = \"news\"",
                &format!("name = \"{}\"", "x".repeat(1 << 20)),
            ),
            "name",
        ),
        (format!("{NEWS}[learner]\nprior = 1e308\n"), "learner.prior"),
        (
            format!("{NEWS}[learner]\nprior = 5e-324\n"),
            "learner.prior",
        ),
    ];
    for (k, (text, words)) in cases.iter().enumerate() {
        let path = write(&format!("bad-{k}.toml"), text);
        let o = parbayes(&["run", &path], dir.path());
        refused(&o, words);
        assert!(stderr(&o).len() < 1000, "the error echoes too much");
    }
    assert!(!dir.path().join("results").exists());
    // A device is not read until memory runs out.
    refused(
        &parbayes(&["check", "/dev/zero"], dir.path()),
        "larger than",
    );
}

#[test]
fn shipped_names_load_the_shipped_copy_from_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    // A local file of a shipped name does not replace the shipped scenario.
    std::fs::write(dir.path().join("bandit-news"), NEWS).unwrap();
    let o = parbayes(&["check", "bandit-news", "riverswim"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("ok (bandit-news,") && out.contains("ok (riverswim,"),
        "{out}"
    );
    let o = parbayes(&["check", "./bandit-news"], dir.path());
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok (news,"));
    // An unknown name says which names there are.
    refused(&parbayes(&["check", "bandit-nws"], dir.path()), "riverswim");
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parbayes"))
        .args([
            "solve",
            "scenarios/models/cliffwalking-slippery.json",
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn metrics_a_task_does_not_have_are_empty_and_gamma_0_solves_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let o = parbayes(
        &[
            "run",
            "gridworld",
            "--agents",
            "1",
            "--trials",
            "5",
            "--out",
            "gw",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(dir.path().join("gw").join("trials.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = csv.lines().last().unwrap().split(',').collect();
    for column in ["regret_per_agent", "optimal_action_rate"] {
        let k = header.iter().position(|h| *h == column).unwrap();
        assert_eq!(last[k], "", "{column} of a GridWorld");
    }
    let o = parbayes(&["solve", "bandit-news"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("exact: with γ = 0"), "{out}");
}
