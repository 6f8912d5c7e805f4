//! credit_ledger reliability and security suite.
//!
//! ```text
//! credit_ledger_reliability fuzz   [--calls N] [--epoch N] [--seed N]
//! credit_ledger_reliability attack
//! credit_ledger_reliability stress [--sessions N] [--ops N] [--seed N]
//! credit_ledger_reliability crash  --pgdata DIR [--cycles K] [--load-secs S]
//! ```
//!
//! Every subcommand prints one machine-readable figure line on stdout,
//! `reliability <test> key=value ... result=pass|fail`, and explanations on stderr.
//! Exit status: 0 pass, 1 a violation was found, 2 the test could not run.
//! Connections: PGHOST (a Unix socket directory or a loopback address), PGPORT, PGUSER (a
//! superuser); nothing else is ever contacted.

mod attack;
mod check;
mod common;
mod crash;
mod fuzz;
mod model;
mod stress;
mod workload;

const USAGE: &str = "usage: credit_ledger_reliability fuzz|attack|stress|crash [options]   (see tests/reliability/README.md)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let rest = &args[1..];
    let r = match cmd.as_str() {
        "fuzz" => fuzz::run(rest),
        "attack" => attack::run(rest),
        "stress" => stress::run(rest),
        "crash" => crash::run(rest),
        "-h" | "--help" => {
            println!("{USAGE}");
            return;
        }
        other => Err(format!("unknown subcommand {other}\n{USAGE}")),
    };
    match r {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("reliability {cmd}: could not run: {e}");
            println!("reliability {cmd} result=error");
            std::process::exit(2);
        }
    }
}
