//! Shell completions and man pages, generated from each binary's own command-line definition.
//!
//! Every binary parses its arguments through [`parse`], which adds two hidden subcommands to
//! the binary's clap command: `completions SHELL` prints the completion script for bash, zsh
//! or fish on stdout, and `man-pages DIR` writes one man page for the binary and one for each
//! of its subcommands (`timeline-bulk.1`, `timeline-bulk-run.1`, …) into DIR. Generating them
//! from the definitions the binary itself parses with means they can never describe flags the
//! binary does not have; the install script calls both. The subcommands are hidden so that
//! `--help` stays about the work, and they leave themselves out of what they generate.

use std::path::{Path, PathBuf};

use clap::{Arg, Command, CommandFactory, FromArgMatches};
use clap_complete::Shell;

use crate::exit;

/// The hidden subcommand that prints a completion script.
const COMPLETIONS: &str = "completions";

/// The hidden subcommand that writes the man pages.
const MAN_PAGES: &str = "man-pages";

/// Parses the process's arguments into `C`, as `clap::Parser::parse` does, except that the
/// hidden `completions` and `man-pages` subcommands are carried out here and end the
/// process. Usage errors print clap's message and exit with 2, `--help` and `--version` with
/// 0, as before.
pub fn parse<C: CommandFactory + FromArgMatches>() -> C {
    let mut matches = with_generators(C::command()).get_matches();

    match matches.subcommand() {
        Some((COMPLETIONS, arguments)) => {
            let shell = *arguments
                .get_one::<Shell>("shell")
                .expect("clap requires the shell");
            print_completions(C::command(), shell);
            std::process::exit(i32::from(exit::OK));
        }
        Some((MAN_PAGES, arguments)) => {
            let directory = arguments
                .get_one::<PathBuf>("directory")
                .expect("clap requires the directory");
            write_man_pages_or_exit(C::command(), directory);
            std::process::exit(i32::from(exit::OK));
        }
        _ => {}
    }

    C::from_arg_matches_mut(&mut matches).unwrap_or_else(|error| {
        // Formatted against the binary's own command, the message reads as clap's would.
        error.format(&mut C::command()).exit()
    })
}

/// The binary's command with the two generators added as hidden subcommands.
fn with_generators(command: Command) -> Command {
    command
        .subcommand(
            Command::new(COMPLETIONS)
                .hide(true)
                .about("Print the shell completion script for this command")
                .arg(
                    Arg::new("shell")
                        .required(true)
                        .value_parser(clap::value_parser!(Shell)),
                ),
        )
        .subcommand(
            Command::new(MAN_PAGES)
                .hide(true)
                .about("Write the man pages of this command and its subcommands into DIR")
                .arg(
                    Arg::new("directory")
                        .value_name("DIR")
                        .required(true)
                        .value_parser(clap::value_parser!(PathBuf)),
                ),
        )
}

/// Prints the completion script of `command` for `shell` on stdout.
pub fn print_completions(mut command: Command, shell: Shell) {
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
}

/// Writes the man pages and prints the path of each on stdout; on failure, says why and exits
/// with the usage code (the directory is the only thing that can be wrong).
fn write_man_pages_or_exit(command: Command, directory: &Path) {
    match write_man_pages(command, directory) {
        Ok(pages) => {
            for page in pages {
                println!("{}", page.display());
            }
        }
        Err(error) => {
            eprintln!(
                "error: cannot write man pages into {}: {error}",
                directory.display()
            );
            std::process::exit(i32::from(exit::USAGE));
        }
    }
}

/// Writes a man page for `command` and one for every visible subcommand (named
/// `<binary>-<subcommand>.1`, as man pages of git-style tools are) into `directory`, creating
/// it when needed. Returns the paths written, the binary's page first.
pub fn write_man_pages(command: Command, directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(directory)?;

    // Building resolves global flags into every subcommand and gives each its display name
    // (`timeline-bulk-run`), which becomes the page's title and file name. `help` is clap's
    // own subcommand, not worth a page.
    let mut command = command.disable_help_subcommand(true);
    command.build();

    let mut written = Vec::new();
    write_pages(&command, directory, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: &Command,
    directory: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(command.clone()).generate_to(directory)?;
    written.push(page);

    for subcommand in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_pages(subcommand, directory, written)?;
    }
    Ok(())
}
