//! The `trailwatch` binary: parses the command line, sets up logging, runs a command and maps
//! its outcome to an exit code (0 ran, 1 nothing could be read, 2 bad arguments or config).

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The allocator (why: Cargo.toml): chosen here, at the binary's edge, not by the library.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "trailwatch",
    version,
    about = "Organization-wide CloudTrail alerts in seconds"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the organization's CloudTrail Kinesis stream (the main job).
    Run(commands::run::Args),
    /// The Firehose HTTP endpoint: Firehose delivers the organization's events here.
    Serve(commands::serve::Args),
    /// Run as an AWS Lambda function (Kinesis event source mapping, Firehose transformation).
    Lambda(commands::lambda_cmd::Args),
    /// Replay files, directories or stdin (`-`) through the rules; alerts go to stdout.
    Replay(commands::replay::Args),
    /// What a config would have raised over an archive (S3 or local), and with --baseline
    /// what a change adds or removes; `backtest merge` adds up partial reports.
    Backtest(Box<commands::backtest::Args>),
    /// First-seen baselines: `baseline seed` builds one from the archive.
    Baseline(commands::baseline::Args),
    /// Check a config file and report every problem at once.
    Validate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Say why an event alerts, or why not.
    Explain(commands::explain::Args),
    /// Point at mistakes in filter patterns (one, or every rule of a config).
    Lint(commands::lint_cmd::Args),
    /// Print the events a CloudWatch Logs filter pattern matches (like grep).
    Match(commands::match_cmd::Args),
    /// Run every rule test in the config; non-zero exit on any failure.
    Test(commands::test_cmd::Args),
    /// The sinks' spools: status, deliver now (replay), or drop (purge).
    Spool(commands::spool_cmd::Args),
    /// The organization from AWS Organizations: each account's OU path and approved regions.
    Org(commands::org::Args),
    /// Exit 0 if the process on this metrics address is healthy (container health checks).
    Health(commands::health::Args),
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TRAILWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colour only for a person at a terminal: never into a file, a pipe or a log collector.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    // Started by the Lambda runtime as `bootstrap`, with no arguments: Lambda mode.
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.len() == 1 && std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        argv.push("lambda".into());
    }
    let cli = Cli::parse_from(argv);
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Lambda(args) => commands::lambda_cmd::run(args),
        Command::Health(args) => commands::health::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Backtest(args) => commands::backtest::run(*args),
        Command::Baseline(args) => commands::baseline::run(args),
        Command::Validate { config } => commands::validate::run(&config),
        Command::Explain(args) => commands::explain::run(args),
        Command::Match(args) => commands::match_cmd::run(args),
        Command::Lint(args) => commands::lint_cmd::run(args),
        Command::Test(args) => commands::test_cmd::run(args),
        Command::Spool(args) => commands::spool_cmd::run(args),
        Command::Org(args) => commands::org::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trailwatch: {e:#}");
            commands::exit::nothing_read()
        }
    }
}
