//! README.md's quick start and the install script, run as a reader would run them.
//!
//! The quick start is executed by `tests/quickstart.sh`, which reads its commands out of
//! README.md, with the workspace's built binaries first on PATH and a fresh home directory, so
//! a newcomer's first minutes are tested exactly as written. `bin/install.sh` installs into a
//! temporary prefix, where the binaries, the completions and the man pages it generated are
//! checked against each tool's own `--help`, and `--uninstall` must leave the prefix as it was.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use netwar_tests::bins::{binary, run};

/// The tools that carry completions and man pages.
const TOOLS: [&str; 5] = [
    "timeline-bulk",
    "user-bulk",
    "observer",
    "stream-capture",
    "netwar",
];

/// Every binary the install script installs.
const BINARIES: [&str; 6] = [
    "timeline-bulk",
    "user-bulk",
    "observer",
    "stream-capture",
    "netwar",
    "x-api-sim",
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the workspace's built binaries (target/<profile>).
fn binaries_dir() -> PathBuf {
    binary("netwar")
        .parent()
        .expect("a binary lives in a directory")
        .to_path_buf()
}

/// A command with the built binaries first on PATH and nothing of the caller's netwar
/// settings or XDG directories leaking in.
fn isolated(program: &str, home: &Path) -> Command {
    let mut command = Command::new(program);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![binaries_dir()];
    dirs.extend(std::env::split_paths(&path));
    command
        .env("PATH", std::env::join_paths(dirs).expect("a PATH"))
        .env("HOME", home)
        .current_dir(home);
    for (key, _) in std::env::vars() {
        if key.starts_with("NETWAR_") || key.starts_with("XDG_") {
            command.env_remove(key);
        }
    }
    command
}

/// Every file and directory under `root`, relative to it.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            found.insert(path.strip_prefix(root).expect("under root").to_path_buf());
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            }
        }
    }
    found
}

/// The subcommands a tool's `--help` lists (clap's own `help` left out).
fn subcommands(tool: &str) -> Vec<String> {
    let (code, help, stderr) = run({
        let mut command = Command::new(binary(tool));
        command.arg("--help");
        command
    });
    assert_eq!(code, 0, "{tool} --help: {stderr}");
    let names: Vec<String> = help
        .lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(
        !names.is_empty(),
        "{tool} --help lists no commands:\n{help}"
    );
    names
}

fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    assert!(!text.trim().is_empty(), "{} is empty", path.display());
    text
}

/// Runs the install script with `args` (and DESTDIR when given); returns its output.
fn install_script(home: &Path, destdir: Option<&Path>, args: &[&str]) -> String {
    let mut command = isolated("bash", home);
    command.arg(repository().join("bin/install.sh")).args(args);
    if let Some(destdir) = destdir {
        command.env("DESTDIR", destdir);
    }
    let (code, stdout, stderr) = run(command);
    assert_eq!(code, 0, "install.sh {args:?} failed:\n{stdout}{stderr}");
    stdout
}

/// Checks an installed tree under `root`: every binary, and for every tool completions for
/// three shells and man pages that name each subcommand its `--help` lists.
fn check_installed(root: &Path) {
    for name in BINARIES {
        let path = root.join("bin").join(name);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path)
                .unwrap_or_else(|_| panic!("{} is not installed", path.display()))
                .permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o755,
            "{} is not executable by all",
            path.display()
        );
    }

    let share = root.join("share");
    for tool in TOOLS {
        let subcommands = subcommands(tool);
        let completions = [
            share.join("bash-completion/completions").join(tool),
            share.join("zsh/site-functions").join(format!("_{tool}")),
            share
                .join("fish/vendor_completions.d")
                .join(format!("{tool}.fish")),
        ];
        for path in &completions {
            let script = read(path);
            for subcommand in &subcommands {
                assert!(
                    script.contains(subcommand.as_str()),
                    "{} does not complete `{subcommand}`",
                    path.display()
                );
            }
        }

        // Roff escapes hyphens; the names are compared as a reader sees them.
        let man1 = share.join("man/man1");
        let page = read(&man1.join(format!("{tool}.1"))).replace("\\-", "-");
        assert!(page.contains(".TH"), "{tool}.1 is no man page");
        for subcommand in &subcommands {
            assert!(
                page.contains(&format!("{tool}-{subcommand}(1)")),
                "{tool}.1 does not refer to {tool}-{subcommand}(1)"
            );
            let sub_page = read(&man1.join(format!("{tool}-{subcommand}.1"))).replace("\\-", "-");
            assert!(
                sub_page.contains(&format!("{tool} {subcommand}")),
                "{tool}-{subcommand}.1 does not show the command's synopsis"
            );
            assert!(
                sub_page.contains("--config"),
                "{tool}-{subcommand}.1 does not document the flags every tool takes"
            );
        }
    }
}

#[test]
fn the_readme_quick_start_captures_timelines_into_the_embedded_store() {
    let home = tempfile::tempdir().expect("a temporary home");
    let mut command = isolated("bash", home.path());
    command
        .arg(repository().join("tests/quickstart.sh"))
        .arg(repository().join("README.md"));
    let (code, stdout, stderr) = run(command);
    assert_eq!(code, 0, "the quick start failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("tweets archived"), "{stdout}");

    // The store is where the quick start says it is: the embedded default under the home.
    let store = home.path().join(".local/share/netwar/netwar.sqlite");
    assert!(store.is_file(), "no embedded store at {}", store.display());
}

#[test]
fn install_puts_binaries_completions_and_man_pages_under_the_prefix_and_uninstall_removes_them() {
    let home = tempfile::tempdir().expect("a temporary home");
    let work = tempfile::tempdir().expect("a temporary directory");
    let prefix = work.path().join("prefix");
    let prefix_arg = prefix.to_str().expect("a UTF-8 path");
    let bin_dir = binaries_dir();
    let bin_dir_arg = bin_dir.to_str().expect("a UTF-8 path");

    // A file that was there before: the install shares its directory, the uninstall keeps it.
    let foreign = prefix.join("share/man/man1/other-tool.1");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::write(&foreign, ".TH OTHER-TOOL 1\n").unwrap();
    let before = tree(work.path());

    install_script(
        home.path(),
        None,
        &["--prefix", prefix_arg, "--bin-dir", bin_dir_arg],
    );
    check_installed(&prefix);

    // The manifest lists every file the install added, and nothing else.
    let manifest = read(&prefix.join("share/netwar/install-manifest"));
    let listed: BTreeSet<PathBuf> = manifest
        .lines()
        .filter_map(|line| line.strip_prefix("file "))
        .map(|path| PathBuf::from("prefix").join(path))
        .collect();
    let added: BTreeSet<PathBuf> = tree(work.path())
        .difference(&before)
        .filter(|path| work.path().join(path).is_file())
        .filter(|path| !path.ends_with("install-manifest"))
        .cloned()
        .collect();
    assert_eq!(listed, added);

    // Installing again replaces the first install; one uninstall still removes it all.
    install_script(
        home.path(),
        None,
        &["--prefix", prefix_arg, "--bin-dir", bin_dir_arg],
    );
    install_script(home.path(), None, &["--prefix", prefix_arg, "--uninstall"]);
    assert_eq!(tree(work.path()), before);
    assert_eq!(read(&foreign), ".TH OTHER-TOOL 1\n");
}

#[test]
fn a_staged_install_under_destdir_uninstalls_to_nothing() {
    let home = tempfile::tempdir().expect("a temporary home");
    let stage = tempfile::tempdir().expect("a staging directory");
    let bin_dir = binaries_dir();
    let bin_dir_arg = bin_dir.to_str().expect("a UTF-8 path");
    let args = ["--prefix", "/usr/local"];

    install_script(
        home.path(),
        Some(stage.path()),
        &[&args[..], &["--bin-dir", bin_dir_arg]].concat(),
    );
    let root = stage.path().join("usr/local");
    check_installed(&root);

    install_script(
        home.path(),
        Some(stage.path()),
        &[&args[..], &["--uninstall"]].concat(),
    );
    assert!(!root.exists(), "{} was left behind", root.display());
    // Only the directory DESTDIR needed above the prefix stays, empty: it is the stager's.
    assert_eq!(tree(stage.path()), BTreeSet::from([PathBuf::from("usr")]));
}

#[test]
fn the_generators_are_hidden_from_help() {
    for tool in TOOLS {
        let mut command = Command::new(binary(tool));
        command.arg("--help");
        let (code, help, _) = run(command);
        assert_eq!(code, 0);
        assert!(
            !help.contains("completions") && !help.contains("man-pages"),
            "{tool} --help shows the generators:\n{help}"
        );

        // And the generated completions do not offer them either.
        let mut command = Command::new(binary(tool));
        command.args(["completions", "fish"]);
        let (code, script, stderr) = run(command);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            !script.contains("man-pages"),
            "{tool}'s completions offer man-pages"
        );
    }
}
