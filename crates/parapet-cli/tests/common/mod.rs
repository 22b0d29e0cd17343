//! Shared by the CLI's integration tests: runs the built `parapet` binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `parapet ARGS` with `stdin` piped in and `env` set (and `PARAPET_SEMANTIC_MODEL`
/// removed, so the model directory comes only from the arguments or the default search).
pub fn parapet(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parapet"));
    cmd.args(args)
        .env_remove("PARAPET_SEMANTIC_MODEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("binary finishes")
}
