//! What every netwar binary does the same way: common flags, logging, exit codes, the error
//! renderer, signal handling and progress display.
//!
//! Keeping it in one crate means cron lines, scripts and people meet one behaviour across the
//! tools: the same `--config`, `-v`/`-q` and `--log-format` flags, user output on stdout and
//! diagnostics on stderr, and exit codes that mean the same thing everywhere. The
//! long-running commands also share the `--metrics-listen` flag and its server ([`metrics`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use netwar_core::config::Config;
use tokio::sync::watch;

pub mod commands;
pub mod generate;
pub mod jobs;
pub mod metrics;
pub mod session;
pub mod status;

pub use generate::parse;
pub use jobs::JobRun;
pub use metrics::{MetricsArgs, Sample};
pub use session::{Session, install_crypto_provider};

/// Exit codes, documented in every binary's `--help` and in README.
pub mod exit {
    /// Everything asked for was done.
    pub const OK: u8 = 0;
    /// The run finished but some work failed (jobs dead-lettered, accounts not archived).
    pub const PARTIAL: u8 = 1;
    /// The command line, the configuration or the credentials are wrong.
    pub const USAGE: u8 = 2;
    /// The X API or a store could not be reached or refused the work.
    pub const UNAVAILABLE: u8 = 3;
    /// Another process holds the lock this command needs.
    pub const LOCKED: u8 = 4;
    /// Stopped by SIGINT or SIGTERM; work in hand was released, nothing was lost.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit-code paragraph for `--help` (`after_help`).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    done
  1    finished, but some work failed (see the summary)
  2    usage, configuration or credentials error
  3    the X API or a store could not be reached
  4    another process holds the lock this command needs
  130  interrupted by SIGINT/SIGTERM; jobs in hand were released";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags every binary takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Configuration file (default: $NETWAR_CONFIG, ~/.config/netwar/netwar.conf,
    /// /etc/netwar/netwar.conf).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More diagnostics on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr, no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Format of the diagnostics on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Credential set from the credentials file (default: api.credential).
    #[arg(long, global = true, value_name = "NAME")]
    pub credential: Option<String>,
}

impl CommonArgs {
    /// Starts logging as the flags ask: warnings by default, `NETWAR_LOG` (an EnvFilter
    /// directive such as `netwar_core=debug`) overriding everything.
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = std::env::var("NETWAR_LOG")
            .ok()
            .and_then(|directive| tracing_subscriber::EnvFilter::try_new(directive).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(level));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false);
        let result = match self.log_format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder
                .with_ansi(std::io::stderr().is_terminal())
                .try_init(),
        };
        // A second initialisation (tests running commands in-process) keeps the first.
        drop(result);
    }

    /// Loads the configuration the flags point at.
    pub fn load_config(&self) -> netwar_core::Result<Config> {
        Config::load(self.config.as_deref())
    }

    /// Whether progress bars should be drawn: on a terminal, and not quiet or verbose.
    pub fn show_progress(&self) -> bool {
        !self.quiet && self.verbose == 0 && std::io::stdout().is_terminal()
    }
}

/// The exit code of a command's result: its own code when it finished, or the error rendered
/// on stderr and mapped to its code ([`report`]) when it did not.
pub fn exit_code(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => report(&error),
    }
}

/// Prints an error and its causes to stderr and returns the exit code it maps to. The one
/// place a binary turns a failure into text.
pub fn report(error: &anyhow::Error) -> ExitCode {
    let mut text = format!("error: {error}");
    for cause in error.chain().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{text}");
    ExitCode::from(code_for(error))
}

/// The exit code for an error: usage errors are 2, everything else that stopped the run is 3.
pub fn code_for(error: &anyhow::Error) -> u8 {
    if error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<netwar_core::Error>())
        .any(netwar_core::Error::is_usage)
        || error
            .chain()
            .any(|cause| cause.downcast_ref::<UsageError>().is_some())
    {
        exit::USAGE
    } else {
        exit::UNAVAILABLE
    }
}

/// An error in what the user asked for, detected in a binary.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A flag that turns true at the first SIGINT or SIGTERM. Long-running commands check it
/// between jobs, release what they hold and exit with [`exit::INTERRUPTED`]; a second signal
/// ends the process at once.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "Cannot listen for SIGTERM.");
                    return;
                }
            };
        for round in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            if round == 0 {
                tracing::warn!("Stopping: finishing or releasing the work in hand.");
                let _ = sender.send(true);
            } else {
                eprintln!("Stopped at once by a second signal.");
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    });
    receiver
}

/// A progress bar with rate and ETA when drawing is wanted, a hidden one otherwise.
pub fn progress(show: bool, total: Option<u64>, unit: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => indicatif::ProgressBar::new(total),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = match total {
        Some(_) => format!(
            "{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) \
             {{msg}}"
        ),
        None => format!("{{elapsed_precise}} {{spinner}} {{pos}} {unit} ({{per_sec}}) {{msg}}"),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// The worker name written into leases and job records: host and process id.
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}
