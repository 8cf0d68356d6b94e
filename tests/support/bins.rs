//! Running the netwar binaries as a user would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The path of a binary of the workspace. Integration tests run from `target/<profile>/deps`;
/// the binaries are one level up, built by `cargo build --workspace`.
pub fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` before `cargo test`",
        path.display()
    );
    path
}

/// A command for a binary with `--config` set, and no environment overrides leaking in.
pub fn command(name: &str, config: &Path) -> Command {
    let mut command = Command::new(binary(name));
    command.arg("--config").arg(config);
    for (key, _) in std::env::vars() {
        if key.starts_with("NETWAR_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs a command to its end; returns exit code, stdout and stderr.
pub fn run(mut command: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// [`run`] on the blocking pool, so an in-process simulator keeps serving meanwhile.
pub async fn run_async(command: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("the command ran")
}

/// Sends a signal (`-TERM`, `-INT`, `-KILL`) to a running binary and collects its exit code
/// and output; fails the test when it has not stopped 30 seconds later.
pub async fn signal_and_wait(mut child: Child, signal: &str) -> (i32, String, String) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("waiting").is_none() {
            assert!(Instant::now() < deadline, "the process did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output().expect("output");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}
