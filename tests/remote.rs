//! Learners in other processes, over 127.0.0.1 (the `remote` feature): a
//! run across child processes learns like the in-process async mode; a
//! child killed with SIGKILL is restarted and the run completes; the
//! aggregator refuses foreign and malformed peers and keeps serving. Every
//! process started here is bounded in time and killed if it overruns.
#![cfg(feature = "remote")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use parbayes::model::Shape;
use parbayes::remote::{AggregatorClient, PROTOCOL, RunId, run_id};
use parbayes::share::{RowBatch, ShareMessage};
use parbayes::{Overrides, Scenario};
use serde_json::Value;

/// The most any one process here may run.
const LIMIT: Duration = Duration::from_secs(240);

fn spawn(args: &[&str], cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_parbayes"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` at most `LIMIT`, killing it (and failing) if it
/// overruns.
fn finish(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "a process overran {LIMIT:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn summary(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        common::stderr(out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (regret per agent, its standard error) of the first result row.
fn regret(s: &Value) -> (f64, f64) {
    let r = &s["results"][0];
    (
        r["final"]["regret_per_agent"].as_f64().unwrap(),
        r["stderr"]["regret_per_agent"].as_f64().unwrap(),
    )
}

fn wire(s: &Value) -> &Value {
    &s["timing"][0]["wire"]
}

/// The direct children of process `pid` (Linux /proc).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces; split after ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

#[test]
fn a_run_across_four_processes_learns_like_the_async_mode_and_counts_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "run",
        "bandit-news",
        "--agents",
        "40",
        "--trials",
        "4000",
        "--reps",
        "4",
        "--format",
        "json",
    ];
    let remote = summary(&finish(spawn(
        &[&common[..], &["--processes", "4", "--out", "remote"]].concat(),
        dir.path(),
    )));
    let local = summary(&finish(spawn(
        &[&common[..], &["--mode", "async", "--out", "local"]].concat(),
        dir.path(),
    )));
    let ((r, r_se), (l, l_se)) = (regret(&remote), regret(&local));
    // Both are four repetitions of the same experiment; async results
    // depend on timing, so they agree within noise: 4 standard errors.
    let tolerance = 4.0 * (r_se * r_se + l_se * l_se).sqrt();
    assert!(
        (r - l).abs() <= tolerance,
        "regret per agent across processes {r:.2} ± {r_se:.2}, in one process {l:.2} ± {l_se:.2}"
    );
    // Learning happened: one learner alone has regret ≈ 40 here.
    assert!(r < 20.0, "{r}");
    // One join per process and repetition, and (by default, `--ahead 0`)
    // one sync per trial.
    let w = wire(&remote);
    assert_eq!(w["joins"], 4 * 4);
    assert_eq!(w["messages_in"], 4 * (4 + 4 * 4000));
    assert_eq!(w["refused"], 0);
    assert!(w["bytes_in"].as_u64().unwrap() > 4 * 4 * 4000);
    assert!(w["bytes_out"].as_u64().unwrap() > 0);
    assert!(wire(&local).is_null());
    let csv = std::fs::read_to_string(dir.path().join("remote/trials.csv")).unwrap();
    // agents, share, policy, rep, trial: the last repetition's last trial.
    assert!(
        csv.lines()
            .any(|l| l.starts_with("40,") && l.contains(",posterior-sampling,3,4000,")),
        "{csv:.300}"
    );
}

#[test]
fn a_contextual_run_across_two_processes_learns_like_the_async_mode() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "run", "linear", "--agents", "10", "--trials", "100", "--reps", "4", "--format", "json",
    ];
    let remote = summary(&finish(spawn(
        &[&common[..], &["--processes", "2", "--out", "remote"]].concat(),
        dir.path(),
    )));
    let local = summary(&finish(spawn(
        &[&common[..], &["--mode", "async", "--out", "local"]].concat(),
        dir.path(),
    )));
    let ((r, r_se), (l, l_se)) = (regret(&remote), regret(&local));
    // Async results depend on timing: the same experiment within 4
    // standard errors, and far below one learner alone (427 ± 12 here).
    let tolerance = 4.0 * (r_se * r_se + l_se * l_se).sqrt();
    assert!(
        (r - l).abs() <= tolerance,
        "{r:.2} ± {r_se:.2} vs {l:.2} ± {l_se:.2}"
    );
    assert!(r < 200.0, "{r}");
    assert_eq!(remote["task"], "linear");
    let w = wire(&remote);
    assert_eq!(w["joins"], 2 * 4);
    assert_eq!(w["refused"], 0);
}

#[test]
fn a_killed_learner_process_is_restarted_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "bandit-news",
        "--agents",
        "40",
        "--trials",
        "40000",
        "--reps",
        "1",
        "--format",
        "json",
    ];
    let metrics = format!("127.0.0.1:{}", free_port());
    let run = spawn(
        &[
            &args[..],
            &["--processes", "4", "--out", "killed", "--metrics", &metrics],
            &["--ahead", "64"],
        ]
        .concat(),
        dir.path(),
    );
    // Once the learner processes have synced a while, kill one.
    wait_for_syncs(&metrics, 40.0, 4);
    let victim = children(run.id())[0];
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = finish(run);
    let killed_run = summary(&out);
    assert!(
        common::stderr(&out).contains("(signal: 9 (SIGKILL)) after trial"),
        "{}",
        common::stderr(&out)
    );
    let unharmed = summary(&finish(spawn(
        &[&args[..], &["--mode", "async", "--out", "unharmed"]].concat(),
        dir.path(),
    )));
    // It learns nearly as well: what the killed process's ten learners had
    // not shared is lost, nothing else. One repetition each, and async
    // results depend on timing (more so with four test processes sharing
    // two cores), so the margin is 2 % of what a uniformly random policy
    // loses over the run: 40,000 × (0.050 − 0.02695) ≈ 922 per agent.
    let ((k, _), (u, _)) = (regret(&killed_run), regret(&unharmed));
    let random = 40_000.0 * (0.050 - 0.02695);
    assert!(
        k < u + 0.02 * random,
        "regret per agent {k:.2} after a kill, {u:.2} without"
    );
    // Four joins and one rejoin.
    assert_eq!(wire(&killed_run)["joins"], 5);
}

/// Waits until the aggregator serving metrics at `addr` has taken `syncs`
/// messages in and hears from `blocks` blocks.
fn wait_for_syncs(addr: &str, syncs: f64, blocks: u32) {
    let started = Instant::now();
    let connected = format!("parbayes_blocks_connected {blocks}\n");
    loop {
        let text = try_scrape(addr).unwrap_or_default();
        let seen = text
            .lines()
            .find_map(|l| l.strip_prefix("parbayes_messages_in_total "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if seen >= syncs && text.contains(&connected) {
            return;
        }
        assert!(started.elapsed() < LIMIT, "the learners made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The response to `GET /metrics` at `addr`.
fn scrape(addr: &str) -> String {
    let text = try_scrape(addr).expect("the metrics endpoint answers");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

/// The response to `GET /metrics` at `addr`, if it answers.
fn try_scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_aggregator_refuses_foreign_and_malformed_peers_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    let run_args = ["bandit-news", "--agents", "2", "--trials", "300"];
    let aggregator = spawn(
        &[
            &["serve", "aggregator", "--listen", &addr, "--reps", "1"][..],
            &run_args[..],
            &["--out", "served", "--format", "json", "--patience", "60"],
            &["--metrics", &metrics],
        ]
        .concat(),
        dir.path(),
    );
    let overrides = Overrides {
        agents: Some(vec![2]),
        trials: Some(300),
        ..Overrides::default()
    };
    let scenario = Scenario::load("bandit-news".as_ref(), &overrides).unwrap();
    let good = run_id(&scenario, 2, 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let patience = Duration::from_secs(30);
        let refusal = |e: parbayes::Error| e.to_string();
        // Another run: another scenario fingerprint.
        let mut other = AggregatorClient::connect(
            &addr,
            RunId {
                name: "another".into(),
                ..good.clone()
            },
            patience,
        )
        .await
        .unwrap();
        let e = refusal(other.join(0..1).await.unwrap_err());
        assert!(e.contains("another run"), "{e}");
        // Another protocol version.
        let mut newer = AggregatorClient::connect(
            &addr,
            RunId {
                protocol: PROTOCOL + 1,
                ..good.clone()
            },
            patience,
        )
        .await
        .unwrap();
        let e = refusal(newer.join(0..1).await.unwrap_err());
        assert!(e.contains("protocol version"), "{e}");
        // Ids beyond the run.
        let mut client = AggregatorClient::connect(&addr, good.clone(), patience)
            .await
            .unwrap();
        let e = refusal(client.join(1..5).await.unwrap_err());
        assert!(e.contains("learner ids 1..5"), "{e}");
        // A share of a row the task does not have, and one from a learner
        // outside the block.
        client.join(0..1).await.unwrap();
        let Shape { outcomes, .. } = good.shape;
        for (learner, row) in [(0, 999), (1, 0)] {
            let mut rows = RowBatch::new(outcomes);
            rows.push(row, &vec![1.0; outcomes]);
            let share = ShareMessage {
                learner,
                seq: 1,
                rows,
            };
            let e = refusal(client.sync(vec![share], None).await.unwrap_err());
            assert!(e.contains("refused"), "{e}");
        }
    });
    // The live metrics say so (gauges refresh every 250 ms).
    std::thread::sleep(Duration::from_millis(600));
    let text = scrape(&metrics);
    for line in [
        "parbayes_refused_total 5",
        "parbayes_messages_in_total 1",
        "parbayes_blocks_connected 1",
        "parbayes_block_last_heard_seconds{block=\"0..1\"}",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // The aggregator still serves: real learners finish the run. The first
    // block rejoins over the session above, which is superseded.
    let learners: Vec<Child> = ["0..1", "1..2"]
        .iter()
        .map(|ids| {
            spawn(
                &[
                    &["serve", "learners", "--connect", &addr, "--ids", ids][..],
                    &run_args[..],
                ]
                .concat(),
                dir.path(),
            )
        })
        .collect();
    for l in learners {
        let out = finish(l);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let served = summary(&finish(aggregator));
    let w = wire(&served);
    assert_eq!(w["refused"], 5, "{w}");
    assert_eq!(served["results"][0]["trials"], 300);
}

#[test]
fn an_aggregator_restarted_from_its_snapshot_hears_every_learners_full_counts_again() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let snapshot = dir.path().join("aggregator.snapshot");
    let snapshot = snapshot.to_str().unwrap();
    // With `always` every pull is shared within its trial: a complete
    // global estimate holds exactly agents × trials observations. (Here every
    // arm is pulled again after the restart, and a full-count message
    // restores its row anyway; that the resend is needed for a row never
    // touched again is the protocol test's
    // `an_aggregator_restored_from_an_older_snapshot_…`.)
    let run_args = [
        "bandit-news",
        "--agents",
        "2",
        "--trials",
        "100000",
        "--share",
        "always",
    ];
    let metrics = format!("127.0.0.1:{}", free_port());
    let aggregator = |out: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_parbayes"));
        cmd.args(["serve", "aggregator", "--listen", &addr, "--reps", "1"])
            .args(run_args)
            .args(["--snapshot", snapshot, "--snapshot-every", "0.3"])
            .args(["--metrics", &metrics])
            .args(["--out", out, "--format", "json"])
            .env("PARBAYES_LOG", "info,libp2p=off,kameo=off")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let mut first = aggregator("first");
    let learners: Vec<Child> = ["0..1", "1..2"]
        .iter()
        .map(|ids| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_parbayes"));
            cmd.args(["serve", "learners", "--connect", &addr, "--ids", ids])
                .args(run_args)
                .args(["--patience", "120", "--ahead", "8"])
                .env("PARBAYES_LOG", "info,libp2p=off,kameo=off")
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    // Kill the aggregator once the blocks have synced a while, it has
    // saved a snapshot since, and the learners have shared more.
    wait_for_syncs(&metrics, 100.0, 2);
    std::thread::sleep(Duration::from_millis(450));
    first.kill().unwrap();
    first.wait().unwrap();
    let second = aggregator("second");
    for l in learners {
        let out = finish(l);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let log = common::stderr(&out);
        assert!(log.contains("resending everything shared"), "{log}");
    }
    let out = finish(second);
    let served = summary(&out);
    assert_eq!(served["results"][0]["trials"], 100000);
    let log = common::stderr(&out);
    assert!(log.contains("restarting from the snapshot"), "{log}");
    assert!(log.contains("observations=200000.0"), "{log}");
    assert!(
        !Path::new(snapshot).exists(),
        "a finished run keeps no snapshot"
    );
}
