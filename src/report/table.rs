use std::fmt::Write;

use crate::summary::Summary;
use crate::sweep::Sweep;

/// The summary as an aligned text table, one line per agent count.
pub fn summary_table(summary: &Summary) -> String {
    let mut out = String::new();
    // Regret where there is no policy loss (bandits).
    let bandit = summary
        .results
        .iter()
        .all(|r| r.final_.policy_loss.is_nan());
    let (score, extra) = if bandit {
        ("regret/agent", "optimal")
    } else {
        ("policy loss", "")
    };
    let _ = writeln!(
        out,
        "{:>6}  {:<14} {:>10} {:>10} {:>11} {:>13} {:>8} {:>10} {:>10} {:>11}",
        "agents",
        "share",
        "model KL",
        "global KL",
        "reward/step",
        score,
        extra,
        "msgs up",
        "msgs down",
        "kB up+down"
    );
    for r in &summary.results {
        let f = &r.final_;
        let (score, extra) = if bandit {
            (
                format!(
                    "{:.1} ± {:.1}",
                    f.regret_per_agent, r.stderr.regret_per_agent
                ),
                format!("{:.1}%", 100.0 * f.optimal_action_rate),
            )
        } else {
            (
                format!("{:.3} ± {:.3}", f.policy_loss, r.stderr.policy_loss),
                String::new(),
            )
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<14} {:>10} {:>10} {:>11.5} {:>13} {:>8} {:>10.0} {:>10.0} {:>11.1}",
            r.agents,
            r.share,
            known(f.model_kl),
            known(f.global_model_kl),
            f.reward_per_step,
            score,
            extra,
            f.messages_up,
            f.messages_down,
            (f.bytes_up + f.bytes_down) / 1000.0,
        );
    }
    for t in &summary.timing {
        if let Some(w) = &t.wire {
            let _ = writeln!(
                out,
                "N = {}: over the wire {} messages in, {:.1} kB in, {:.1} kB out, {} refused; \
                 {:.0} steps/s",
                t.agents,
                w.messages_in,
                w.bytes_in as f64 / 1000.0,
                w.bytes_out as f64 / 1000.0,
                w.refused,
                t.steps_per_second
            );
        }
    }
    if let Some(b) = &summary.baselines {
        let _ = writeln!(out, "baselines, reward per period on the same demand:");
        let line: Vec<String> = b.0.iter().map(|(n, r)| format!("{n} {r:.3}")).collect();
        for chunk in line.chunks(6) {
            let _ = writeln!(out, "  {}", chunk.join("  "));
        }
    }
    if let Some(lr) = &summary.lai_robbins {
        let _ = writeln!(
            out,
            "Lai–Robbins: regret ≳ {:.2} · ln T = {:.1} for one learner at T = {}",
            lr.constant,
            lr.bound_at_last_step,
            summary.trials * summary.steps_per_trial
        );
    }
    if summary.results.iter().any(|r| r.converged_trial.is_some()) {
        for r in &summary.results {
            if let Some(t) = r.converged_trial {
                let speedup = r
                    .speedup
                    .map_or(String::new(), |s| format!(", speed-up {s:.2}×"));
                let _ = writeln!(out, "N = {}: converged at trial {t:.0}{speedup}", r.agents);
            }
        }
    }
    out
}

/// The sweep as an aligned text table, one line per (agent count, policy,
/// rule); the policy column only when several were swept, policy loss only
/// for MDPs.
pub fn sweep_table(sweep: &Sweep) -> String {
    let mut out = String::new();
    let error = if sweep.error == "regret_per_agent" {
        "regret/agent"
    } else {
        "model KL"
    };
    let policies = sweep.rows.iter().any(|r| r.policy != sweep.rows[0].policy);
    let mdp = sweep.rows.iter().any(|r| r.policy_loss.is_some());
    let pw = if policies {
        sweep.rows.iter().map(|r| r.policy.len()).max().unwrap_or(0) + 2
    } else {
        0
    };
    let sw = sweep
        .rows
        .iter()
        .map(|r| r.share.len())
        .max()
        .unwrap_or(0)
        .max(16)
        + 1;
    let _ = writeln!(
        out,
        "{:>6}  {:<pw$}{:<sw$} {:>12} {:>9} {:>11}{} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "agents",
        if policies { "policy" } else { "" },
        "share",
        error,
        "gain",
        "reward/step",
        if mdp { " policy loss" } else { "" },
        "msgs up",
        "msgs down",
        "rows up",
        "rows down",
        "kB up+down"
    );
    let mut rows: Vec<_> = sweep.rows.iter().collect();
    rows.sort_by_key(|r| r.agents);
    for r in rows {
        let gain = r
            .accuracy_gain
            .map_or("-".to_string(), |g| format!("{:.1}%", 100.0 * g));
        let _ = writeln!(
            out,
            "{:>6}  {:<pw$}{:<sw$} {:>12.5} {:>9} {:>11.5}{} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>12.1}",
            r.agents,
            if policies { r.policy.as_str() } else { "" },
            r.share,
            r.error(),
            gain,
            r.reward_per_step,
            r.policy_loss
                .map_or(String::new(), |l| format!(" {l:>11.4}")),
            r.messages_up,
            r.messages_down,
            r.rows_up,
            r.rows_down,
            (r.bytes_up + r.bytes_down) / 1000.0
        );
    }
    out
}

/// A model error to five places, or a dash where the task does not know
/// its truth (a dataset, clicks).
fn known(v: f64) -> String {
    if v.is_nan() {
        "—".to_string()
    } else {
        format!("{v:.5}")
    }
}
