use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use parbayes::env::{ARROWS, Environment, TabularMdp, Task};
use parbayes::model::{Solution, solve as value_iteration};
use parbayes::{Overrides, Scenario};

use super::Format;

#[derive(Debug, clap::Args)]
pub(crate) struct SolveArgs {
    /// A scenario (file or shipped name), or a tabular model `.json` file.
    model: PathBuf,
    /// Discount γ in [0, 1) [default: the scenario's, or 0.9 for a model file].
    #[arg(long)]
    gamma: Option<f64>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(crate) fn solve(args: SolveArgs) -> Result<()> {
    if let Some(g) = args.gamma {
        parbayes::model::check_gamma(g)
            .map_err(|p| parbayes::Error::invalid("command line", "--gamma", p))?;
    }
    let is_model_file = args.model.extension().is_some_and(|e| e == "json");
    let env = if is_model_file {
        Environment::Tabular(TabularMdp::load(&args.model, args.gamma.unwrap_or(0.9))?)
    } else {
        Scenario::load(&args.model, &Overrides::default())?
            .learner()
            .task()
            .clone()
    };
    let gamma = args.gamma.unwrap_or_else(|| env.gamma());
    let solution = value_iteration(&env.true_model(), gamma);

    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&solution)?)?,
        Format::Table => write!(stdout, "{}", table(&env, &solution))?,
    }
    Ok(())
}

/// V*(start), convergence, and the policy: an arrow map for a grid, a list
/// of states otherwise.
fn table(env: &Environment, s: &Solution) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "V*(start) = {:.9}  (γ = {})", s.v_start, s.gamma);
    if s.gamma == 0.0 {
        // One sweep is exact: V*(s) is the best expected immediate reward.
        let _ = writeln!(
            out,
            "exact: with γ = 0, V* is the best expected reward of each state"
        );
    } else {
        let _ = writeln!(
            out,
            "value iteration: {} sweep{}, last residual {:.1e}",
            s.iterations,
            if s.iterations == 1 { "" } else { "s" },
            s.residual
        );
    }
    match env {
        Environment::GridWorld(g) => {
            let n = g.layout().size;
            let _ = writeln!(out, "\noptimal values and policy (row 0 at the top):");
            for r in 0..n {
                let cells = r * n..(r + 1) * n;
                let values: Vec<String> = cells
                    .clone()
                    .map(|c| format!("{:6.2}", s.values[c]))
                    .collect();
                let arrows: String = cells.map(|c| format!(" {}", ARROWS[s.policy[c]])).collect();
                let _ = writeln!(out, "{}    {arrows}", values.join(" "));
            }
            let _ = writeln!(
                out,
                "(from A and B every action is the same; the arrow shows the first)"
            );
        }
        _ => {
            let _ = writeln!(out, "\n{:>7}  {:>14}  action", "state", "V*");
            for (state, (v, a)) in s.values.iter().zip(&s.policy).enumerate() {
                let _ = writeln!(out, "{state:>7}  {v:>14.9}  {a}");
            }
        }
    }
    out
}
