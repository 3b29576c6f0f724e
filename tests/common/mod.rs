//! Shared test helpers: `avbatch serve` as a real process on 127.0.0.1:0 (in-process, the
//! double's own [`avbatch_serve::testing`], re-exported here), and running the binary.
#![allow(dead_code)]

pub mod azurite;
pub mod batch;
pub mod s3;
pub mod web;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub use avbatch_serve::testing::*;

/// How a finished process ended and everything it printed, for an assertion's message.
pub fn text(o: &Output) -> String {
    format!(
        "{:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A test that cannot run on this machine says so: under CI (`CI` set, as CI runs `.ci/run`)
/// that fails the test, never a silent pass; elsewhere it prints `SKIPPED` and the test returns.
pub fn cannot_run_here(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run here, and CI requires it: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// `avbatch serve` as a real child process, so tests can `kill -9` it.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
}

/// Starts the binary on 127.0.0.1:0 with `data` and `extra` flags and waits for its address line.
pub fn spawn_server_process(data: &Path, extra: &[&str]) -> ServerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_avbatch"))
        .args(["serve", "--addr", "127.0.0.1:0", "--rate-limit", "off", "--data"])
        .arg(data)
        // The environment, not `--api-key`: the way the help recommends, with no warning.
        .env("AVBATCH_SERVE_API_KEYS", KEY)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn avbatch serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let line = lines.next().expect("server printed its address").expect("read stdout");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.trim().to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProcess { child, url }
}

impl ServerProcess {
    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn data_dir_of(server: &TestServer) -> PathBuf {
    server.data.path().to_path_buf()
}

/// Runs `cmd` with its output collected, waiting at most `limit`: a hang fails the test instead
/// of stalling the suite. The child leads a process group of its own, and on overrun the whole
/// group (servers it started too) is killed. Output is drained as it comes, so a chatty child
/// never blocks on a full pipe.
pub fn run_bounded(mut cmd: Command, limit: std::time::Duration) -> std::process::Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let group = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("collect the child's output"),
        Err(_) => {
            kill_group(group);
            let out =
                rx.recv().expect("the waiting thread answers").expect("collect the child's output");
            panic!(
                "{cmd:?} still ran after {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// SIGKILL to every process of the group `group` leads (see [`run_bounded`]).
pub fn kill_group(group: u32) {
    #[cfg(unix)]
    // SAFETY: kill(2) with a negated process-group id signals only that group, which a test
    // started with `process_group(0)`; no memory is involved.
    unsafe {
        libc::kill(-(group as i32), libc::SIGKILL);
    }
}

/// Runs `cmd` to its end, its stdout discarded and its stderr into `stderr`, and returns its
/// exit code and peak resident memory in KiB, from the kernel's own accounting (no sampling can
/// miss the peak).
///
/// Through a small Python parent: Linux charges a process with the peak of the memory it was
/// forked or spawned from too (exec keeps the old address space's high-water mark), and the test
/// process, which runs the whole suite, may be hundreds of MiB. Python's children start from
/// its own (about 10 MiB), and `RUSAGE_CHILDREN` is theirs alone.
pub fn peak_rss_kib(cmd: &Command, stderr: &Path) -> (Option<i32>, u64) {
    const PARENT: &str = "import resource, subprocess, sys\n\
        code = subprocess.call(sys.argv[2:])\n\
        with open(sys.argv[1], 'w') as f:\n\
        \x20   f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut through = Command::new("python3");
    through.arg("-c").arg(PARENT).arg(report.path()).arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => through.env(name, value),
            None => through.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        through.current_dir(dir);
    }
    let status = through
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .status()
        .expect("run python3");
    let kib = std::fs::read_to_string(report.path()).unwrap_or_default();
    let kib = kib.trim().parse().unwrap_or_else(|_| panic!("python3 reported no peak: {status}"));
    (status.code(), kib)
}
