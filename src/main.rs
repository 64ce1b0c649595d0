//! The `parbayes` command: parse arguments, start tracing, call the library.
#![warn(clippy::too_many_lines)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // Injected faults make kameo log each learner actor it restarts;
        // failures that matter reach the user as errors of the run.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARBAYES_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,kameo=off")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not for a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = cli::Cli::parse();
    match cli::execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if matches!(e.downcast_ref(), Some(parbayes::Error::Interrupted)) => {
            // The run has said where its checkpoint is and how to resume.
            ExitCode::from(130)
        }
        // The reader of stdout went away (`parbayes scenarios | head`):
        // nothing is wrong, and nobody is left to tell.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            // Bad input exits 2, like a clap usage error; anything else 1.
            match e.downcast_ref::<parbayes::Error>() {
                Some(pe) if pe.is_bad_input() => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
