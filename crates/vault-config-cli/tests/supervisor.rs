//! `vault-config exec` as a supervisor, run as a user runs it against real
//! OpenBao dev servers (one per test), with real children: a wrapper and the
//! grandchild it started (one process group, stopped and killed together),
//! PID 1 under `unshare --pid --fork`, a key that vanishes from Vault,
//! `--splay`, `--to-file`, and Ctrl-C at a terminal (through `script`).
//!
//! Every child script ends on its own once vault-config is gone, so that a
//! failed test leaves nothing running.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use vault_test_support::DevServer;

const BIN: &str = env!("CARGO_BIN_EXE_vault-config");

/// The longest any one wait of these tests lasts.
const PATIENCE: Duration = Duration::from_secs(20);

/// `vars` as the only settings of the Vault contract (none of the test
/// runner's own) and a throwaway HOME, applied to `cmd`.
fn contract_env(cmd: &mut Command, home: &Path, vars: &[(&str, &str)]) {
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") || name.starts_with("BAO_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home).envs(vars.iter().copied());
}

/// `vault-config exec ... -- CMD` against `server`, its standard error kept.
fn exec(server: &DevServer, home: &Path, args: &[&str], command: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    contract_env(
        &mut cmd,
        home,
        &[
            ("VAULT_ADDR", server.addr()),
            ("VAULT_TOKEN", server.root_token()),
        ],
    );
    cmd.arg("exec")
        .args(args)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vault-config-supervisor-{name}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a child script into `dir`; returns its path.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_owned()
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn lines_of(lines: &[String], what: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with(what))
        .cloned()
        .collect()
}

/// The lines of `log` once it holds `n` lines starting with `what`.
async fn wait_lines(log: &Path, what: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = log_lines(log);
        if lines_of(&lines, what).len() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no {n} `{what}` lines in time: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Field `i` (0: the word after `start`) of the `n`th `what` line.
fn field(lines: &[String], what: &str, n: usize, i: usize) -> String {
    let line = &lines_of(lines, what)[n];
    line.split_whitespace()
        .nth(i + 1)
        .unwrap_or_else(|| panic!("no field {i} in {line:?}"))
        .to_owned()
}

async fn exit_of(child: &mut Child) -> Option<i32> {
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("vault-config did not exit")
        .unwrap()
        .code()
}

fn kill(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

/// What /proc says of a process: its state letter, parent, process group
/// and name.
#[derive(Debug, Clone)]
struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
    /// The foreground group of its terminal.
    tpgid: i64,
    comm: String,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(Stat {
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        tpgid: rest.get(5)?.parse().ok()?,
        comm,
    })
}

/// Running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Every process whose parent is `parent`.
fn children_of(parent: u32) -> Vec<(u32, Stat)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| s.ppid == parent)
        .collect()
}

/// Waits until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PATIENCE, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The standard error of a running vault-config, line by line, without
/// colors.
#[derive(Clone, Default)]
struct Stderr(Arc<Mutex<Vec<String>>>);

impl Stderr {
    fn capture(child: &mut Child) -> Stderr {
        let stderr = Stderr::default();
        let lines = stderr.0.clone();
        let pipe = child.stderr.take().expect("stderr piped");
        tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(strip_ansi(&line));
            }
        });
        stderr
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// The first line holding `needle`, once there is one.
    async fn wait_for(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.0.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no `{needle}` in vault-config's output in time:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A tool the test cannot do without: present, or the test fails saying how
/// to get it (never a silent skip).
fn require(tool: &str, package: &str) {
    let found = std::process::Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is needed by this test: install {package} (apt-get install {package})"
    );
}

/// A wrapper (`sh -c 'server & wait'`) whose server ignores SIGTERM: a
/// restart must end the server too (SIGKILL to the group after
/// --kill-timeout) before the new one starts, and SIGTERM to vault-config
/// must leave neither running.
#[tokio::test]
async fn a_restart_and_sigterm_end_the_whole_process_tree() {
    let server = DevServer::start().await;
    let home = temp_dir("tree");
    let log = home.join("child.log");
    let server_sh = script(
        &home,
        "server.sh",
        r#"trap '' TERM
echo "start $$ ${SECRET_TOKEN:-unset}" >> "$LOG"
while kill -0 "$VC" 2>/dev/null; do sleep 0.1; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let mut cmd = exec(
        &server,
        &home,
        &[
            "--secret",
            "app#SECRET_TOKEN",
            "--interval",
            "200ms",
            "--debounce",
            "200ms",
            "--kill-timeout",
            "1s",
        ],
        &["sh", "-c", r#"VC=$PPID sh "$SERVER" & wait"#],
    );
    let mut supervisor = cmd
        .env("LOG", &log)
        .env("SERVER", &server_sh)
        .spawn()
        .unwrap();
    let stderr = Stderr::capture(&mut supervisor);
    let vc = supervisor.id().unwrap();

    let lines = wait_lines(&log, "start", 1).await;
    assert_eq!(field(&lines, "start", 0, 1), "v1");
    let old: u32 = field(&lines, "start", 0, 0).parse().unwrap();
    let old_stat = stat(old).unwrap();
    let wrapper = old_stat.ppid;
    assert_eq!(
        stat(wrapper).unwrap().ppid,
        vc,
        "the grandchild: {old_stat:?}"
    );
    assert_eq!(
        old_stat.pgrp, wrapper,
        "the wrapper leads a process group of its own, its server in it"
    );
    assert_ne!(stat(vc).unwrap().pgrp, wrapper);

    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v2"}))
        .await
        .unwrap();
    let lines = wait_lines(&log, "start", 2).await;
    // Checked the moment the new one is seen: the old tree went first.
    assert!(
        !alive(old) && !alive(wrapper),
        "the old server, holding the old secret, is gone: {:?}",
        stat(old)
    );
    assert_eq!(field(&lines, "start", 1, 1), "v2");
    let new: u32 = field(&lines, "start", 1, 0).parse().unwrap();
    assert!(alive(new));
    // Written before the new child started; read by a task of this runtime.
    stderr.wait_for("SIGKILL").await;

    // SIGTERM: the wrapper dies of it (its code is vault-config's), the
    // server that ignores it is killed with the group.
    kill(vc, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(128 + 15));
    assert!(!alive(new), "{:?}", stat(new));
    assert_eq!(lines_of(&log_lines(&log), "start").len(), 2);
}

/// SIGTERM while a restart waits for the old child to stop: the old child
/// still gets SIGKILL after --kill-timeout, and no new one starts.
#[tokio::test]
async fn a_stop_signal_during_a_restart_starts_no_new_child() {
    let server = DevServer::start().await;
    let home = temp_dir("stop-restart");
    let log = home.join("child.log");
    let slow = script(
        &home,
        "slow.sh",
        r#"trap 'echo "term $$" >> "$LOG"' TERM
echo "start $$ ${SECRET_TOKEN:-unset}" >> "$LOG"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let mut supervisor = exec(
        &server,
        &home,
        &[
            "--secret",
            "app#SECRET_TOKEN",
            "--interval",
            "200ms",
            "--debounce",
            "200ms",
            "--kill-timeout",
            "2s",
        ],
        &["sh", &slow],
    )
    .env("LOG", &log)
    .spawn()
    .unwrap();
    let stderr = Stderr::capture(&mut supervisor);
    wait_lines(&log, "start", 1).await;
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v2"}))
        .await
        .unwrap();
    // The restart's SIGTERM reached the child, which ignores it.
    wait_lines(&log, "term", 1).await;
    kill(supervisor.id().unwrap(), "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(128 + 9));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lines = log_lines(&log);
    assert_eq!(lines_of(&lines, "start").len(), 1, "{lines:?}");
    assert!(
        stderr.text().contains("not starting it again"),
        "{}",
        stderr.text()
    );
}

/// As PID 1 (`unshare --pid --fork`), vault-config reaps the orphans its
/// child leaves (5 `sleep`s whose parent exited), and still exits with the
/// child's own code.
#[tokio::test]
async fn as_pid_1_it_reaps_orphans_and_keeps_the_childs_exit_code() {
    require("unshare", "util-linux");
    let server = DevServer::start().await;
    let home = temp_dir("pid1");
    let log = home.join("child.log");
    let orphans = script(
        &home,
        "orphans.sh",
        r#"for i in 1 2 3 4 5; do ( sleep 60 & ) ; done
echo "start $$ $PPID ${SECRET_TOKEN:-unset}" >> "$LOG"
trap 'exit 7' TERM
while :; do sleep 0.1; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let mut unshare = Command::new("unshare");
    contract_env(
        &mut unshare,
        &home,
        &[
            ("VAULT_ADDR", server.addr()),
            ("VAULT_TOKEN", server.root_token()),
        ],
    );
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        // Unprivileged: a user namespace of its own (where it is root) first.
        unshare.args(["--user", "--map-root-user"]);
    }
    let mut unshare = unshare
        .args(["--pid", "--fork", "--mount-proc", BIN])
        .args(["exec", "--secret", "app#SECRET_TOKEN", "--", "sh", &orphans])
        .env("LOG", &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Stderr::capture(&mut unshare);
    let lines = wait_lines(&log, "start", 1).await;
    assert_eq!(
        field(&lines, "start", 0, 1),
        "1",
        "the child's parent is PID 1 of its namespace: vault-config"
    );
    let outer = unshare.id().unwrap();
    let vc = children_of(outer)
        .into_iter()
        .map(|(pid, _)| pid)
        .next()
        .expect("vault-config under unshare");
    assert_eq!(stat(vc).unwrap().comm, "vault-config");

    // The orphans are handed to vault-config, and reaped when they exit.
    let sleeps = || {
        children_of(vc)
            .into_iter()
            .filter(|(_, s)| s.comm == "sleep")
            .count()
    };
    eventually("5 orphans under vault-config", || sleeps() == 5).await;
    // Ended by the test once all five are seen (a short sleep could end
    // one before the fifth is handed over, on a loaded machine).
    for (pid, _) in children_of(vc)
        .into_iter()
        .filter(|(_, s)| s.comm == "sleep")
    {
        kill(pid, "TERM");
    }
    eventually("the orphans reaped", || sleeps() == 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let zombies: Vec<_> = children_of(vc)
        .into_iter()
        .filter(|(_, s)| s.state == 'Z')
        .collect();
    assert!(
        zombies.is_empty(),
        "zombies under vault-config: {zombies:?}"
    );

    kill(vc, "TERM");
    assert_eq!(exit_of(&mut unshare).await, Some(7), "{}", stderr.text());
}

/// `--secret app#SECRET_TOKEN` and a write of `app` without it: the child
/// keeps running with its value (never restarted with an empty one), a
/// warning names the key, and the child restarts once the key is back. At
/// start the same state is refused with exit 14.
#[tokio::test]
async fn a_vanished_key_keeps_the_child_and_a_returning_one_restarts_it() {
    let server = DevServer::start().await;
    let home = temp_dir("vanished");
    let log = home.join("child.log");
    let child = script(
        &home,
        "child.sh",
        r#"echo "start $$ [${SECRET_TOKEN-unset}]" >> "$LOG"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put(
            "secret",
            "app",
            json!({"SECRET_TOKEN": "sekrit-1", "OTHER": "x"}),
        )
        .await
        .unwrap();
    let args = [
        "--secret",
        "app#SECRET_TOKEN",
        "--interval",
        "200ms",
        "--debounce",
        "200ms",
    ];
    let mut supervisor = exec(&server, &home, &args, &["sh", &child])
        .env("LOG", &log)
        .spawn()
        .unwrap();
    let stderr = Stderr::capture(&mut supervisor);
    let lines = wait_lines(&log, "start", 1).await;
    assert_eq!(field(&lines, "start", 0, 1), "[sekrit-1]");

    server
        .kv_put("secret", "app", json!({"OTHER": "y"}))
        .await
        .unwrap();
    let warning = stderr.wait_for("no longer in Vault").await;
    assert!(warning.contains("app#SECRET_TOKEN"), "{warning}");
    // Polls and a debounce later, still the first child.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = log_lines(&log);
    assert_eq!(lines_of(&lines, "start").len(), 1, "{lines:?}");

    server
        .kv_put(
            "secret",
            "app",
            json!({"SECRET_TOKEN": "sekrit-2", "OTHER": "y"}),
        )
        .await
        .unwrap();
    let lines = wait_lines(&log, "start", 2).await;
    assert_eq!(field(&lines, "start", 1, 1), "[sekrit-2]");
    assert!(!stderr.text().contains("sekrit"), "{}", stderr.text());
    kill(supervisor.id().unwrap(), "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(128 + 15));

    // At start: refused, no child.
    let out = exec(&server, &home, &["--secret", "app#NOPE"], &["sh", &child])
        .env("LOG", home.join("never.log"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(14));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOPE"));
    assert!(log_lines(&home.join("never.log")).is_empty());
}

/// `--splay 3s`: the restart waits the debounce and a random part of the
/// splay, which the log states.
#[tokio::test]
async fn splay_adds_a_random_delay_below_its_bound() {
    let server = DevServer::start().await;
    let home = temp_dir("splay");
    let log = home.join("child.log");
    let child = script(
        &home,
        "child.sh",
        r#"echo "start $$ ${SECRET_TOKEN-unset}" >> "$LOG"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let args = [
        "--secret",
        "app#SECRET_TOKEN",
        "--interval",
        "200ms",
        "--debounce",
        "100ms",
        "--splay",
        "3s",
    ];
    let mut supervisor = exec(&server, &home, &args, &["sh", &child])
        .env("LOG", &log)
        .spawn()
        .unwrap();
    let stderr = Stderr::capture(&mut supervisor);
    wait_lines(&log, "start", 1).await;
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v2"}))
        .await
        .unwrap();
    let line = stderr.wait_for("splay_ms=").await;
    let number = |name: &str| -> u64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(number("debounce_ms"), 100, "{line}");
    assert!(number("splay_ms") < 3000, "{line}");
    let lines = wait_lines(&log, "start", 2).await;
    assert_eq!(field(&lines, "start", 1, 1), "v2");
    kill(supervisor.id().unwrap(), "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(128 + 15));
}

/// `--to-file tls#key=DEST` with `--on-change signal:HUP`: DEST holds the
/// value before the child starts and the new one before the signal, mode
/// 0600, replaced whole (a new file renamed over it, no temporary file left
/// behind), and removed at exit unless `--keep-files`.
#[tokio::test]
async fn to_file_writes_before_start_and_each_signal_and_removes_at_exit() {
    let server = DevServer::start().await;
    let home = temp_dir("to-file");
    let log = home.join("child.log");
    let secrets = home.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let dest = secrets.join("tls.key");
    let pem1 = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\nAT8wggE7AgEAAkEA1\n-----END PRIVATE KEY-----\n";
    let pem2 = "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASC\nAUAwggE8AgEAAkEA2\n-----END PRIVATE KEY-----\n";
    let child = script(
        &home,
        "child.sh",
        r#"cp "$FILE" "$OUT/at-start"
echo "start $$" >> "$LOG"
trap 'cp "$FILE" "$OUT/at-hup"; echo "hup $$" >> "$LOG"' HUP
trap 'echo "term $$" >> "$LOG"; exit 7' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put("secret", "tls", json!({"key": pem1}))
        .await
        .unwrap();
    server
        .kv_put("secret", "app", json!({"OTHER": "x"}))
        .await
        .unwrap();
    let to_file = format!("tls#key={}", dest.display());
    let args = [
        "--secret",
        "app#OTHER",
        "--to-file",
        &to_file,
        "--on-change",
        "signal:HUP",
        "--interval",
        "200ms",
        "--debounce",
        "100ms",
    ];
    let mut supervisor = exec(&server, &home, &args, &["sh", &child])
        .env("LOG", &log)
        .env("FILE", &dest)
        .env("OUT", &home)
        .spawn()
        .unwrap();
    let stderr = Stderr::capture(&mut supervisor);
    wait_lines(&log, "start", 1).await;
    assert_eq!(
        std::fs::read_to_string(home.join("at-start")).unwrap(),
        pem1,
        "written before the child started"
    );
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let first_inode = meta.ino();

    server
        .kv_put("secret", "tls", json!({"key": pem2}))
        .await
        .unwrap();
    let lines = wait_lines(&log, "hup", 1).await;
    assert_eq!(lines_of(&lines, "start").len(), 1, "signalled: {lines:?}");
    assert_eq!(
        std::fs::read_to_string(home.join("at-hup")).unwrap(),
        pem2,
        "written before the signal"
    );
    let meta = std::fs::metadata(&dest).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_ne!(
        meta.ino(),
        first_inode,
        "a new file renamed over the old one"
    );
    let names: Vec<String> = std::fs::read_dir(&secrets)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tls.key"], "no temporary file left behind");
    assert!(!stderr.text().contains("MIIB"), "{}", stderr.text());

    kill(supervisor.id().unwrap(), "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(7));
    assert!(!dest.exists(), "removed at exit");

    // --keep-files, and files only (no --secret): the child reads it, exits 0.
    let out = exec(
        &server,
        &home,
        &["--to-file", &to_file, "--keep-files"],
        &["sh", "-c", r#"cat "$FILE" > "$OUT/copy""#],
    )
    .env("FILE", &dest)
    .env("OUT", &home)
    .output()
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(home.join("copy")).unwrap(), pem2);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), pem2, "kept");

    // A key that is not there: refused at start, nothing written.
    let missing = format!("tls#nope={}", secrets.join("nope").display());
    let out = exec(&server, &home, &["--to-file", &missing], &["true"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(14));
    assert!(!secrets.join("nope").exists());
}

/// `script` running `line` with `sh` on a pseudo-terminal of its own, whose
/// keys the test types on standard input (output discarded), vault-config's
/// contract in the environment and `LOG` set to `log`.
fn at_a_terminal(server: &DevServer, home: &Path, line: &str, log: &Path) -> Command {
    let mut terminal = Command::new("script");
    contract_env(
        &mut terminal,
        home,
        &[
            ("VAULT_ADDR", server.addr()),
            ("VAULT_TOKEN", server.root_token()),
        ],
    );
    terminal
        .args(["-qec", line, "/dev/null"])
        .env("SHELL", "/bin/sh")
        .env("LOG", log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    terminal
}

/// Writes `value` as `app#SECRET_TOKEN` and waits for the child it starts,
/// the `n`th (from 0), whose start line gives its PID, its process group
/// and its terminal's foreground group, returned in that order.
async fn restart_with(
    server: &DevServer,
    log: &Path,
    value: &str,
    n: usize,
) -> (String, String, String) {
    server
        .kv_put("secret", "app", json!({ "SECRET_TOKEN": value }))
        .await
        .unwrap();
    let lines = wait_lines(log, "start", n + 1).await;
    assert_eq!(field(&lines, "start", n, 2), value, "{lines:?}");
    let at = |i| field(&lines, "start", n, i);
    (at(0), at(3), at(4))
}

/// Run from an interactive terminal (here `script`'s pseudo-terminal), the
/// child's group holds the terminal: Ctrl-C reaches the child (once), not
/// vault-config, which goes on supervising (a rotation still restarts the
/// child, which gets the terminal in turn).
#[tokio::test]
async fn ctrl_c_at_a_terminal_reaches_the_child_only() {
    require("script", "util-linux");
    let server = DevServer::start().await;
    let home = temp_dir("tty");
    let log = home.join("child.log");
    let repl = script(
        &home,
        "repl.sh",
        r#"trap 'echo "int $$" >> "$LOG"' INT
echo "start $$ $PPID ${SECRET_TOKEN-unset} $(cut -d' ' -f5,8 /proc/$$/stat)" >> "$LOG"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let line = format!(
        "exec '{BIN}' exec --secret app#SECRET_TOKEN --interval 200ms --debounce 200ms -- sh '{repl}'"
    );
    let mut terminal = at_a_terminal(&server, &home, &line, &log).spawn().unwrap();
    let mut keys = terminal.stdin.take().unwrap();

    let lines = wait_lines(&log, "start", 1).await;
    let child = field(&lines, "start", 0, 0);
    let vc: u32 = field(&lines, "start", 0, 1).parse().unwrap();
    assert_eq!(field(&lines, "start", 0, 2), "v1");
    assert_eq!(
        (field(&lines, "start", 0, 3), field(&lines, "start", 0, 4)),
        (child.clone(), child.clone()),
        "a group of its own, the terminal's foreground: {lines:?}"
    );

    keys.write_all(b"\x03").await.unwrap();
    keys.flush().await.unwrap();
    wait_lines(&log, "int", 1).await;

    let (second, group, foreground) = restart_with(&server, &log, "v2", 1).await;
    assert_eq!(
        (group, foreground),
        (second.clone(), second),
        "the terminal goes to the new child"
    );
    let lines = log_lines(&log);
    assert_eq!(
        lines_of(&lines, "int").len(),
        1,
        "one SIGINT, from the terminal, none passed on by vault-config: {lines:?}"
    );

    kill(vc, "TERM");
    assert_eq!(exit_of(&mut terminal).await, Some(128 + 15));
    drop(keys);
}

/// Ctrl-Z stops the child and vault-config, as one job of an interactive
/// shell; `bg` continues both in the background, where a restart leaves
/// the terminal to the shell (the new child does not take it); `fg` gives
/// it back to the running child, and the next child holds it in turn.
#[tokio::test]
async fn ctrl_z_bg_and_fg_leave_the_terminal_to_whom_the_shell_gives_it() {
    require("script", "util-linux");
    require("bash", "bash");
    let server = DevServer::start().await;
    let home = temp_dir("job");
    let log = home.join("child.log");
    let repl = script(
        &home,
        "repl.sh",
        r#"echo "start $$ $PPID ${SECRET_TOKEN-unset} $(cut -d' ' -f5,8 /proc/$$/stat)" >> "$LOG"
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done
"#,
    );
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let mut terminal = at_a_terminal(&server, &home, "bash --norc --noprofile -i", &log)
        .env("HISTFILE", "/dev/null")
        .spawn()
        .unwrap();
    let mut keys = terminal.stdin.take().unwrap();
    // The child runs under bash, not dash: dash starts `sleep` with vfork,
    // and a Ctrl-Z that stops the vforked child before its exec leaves dash
    // waiting uninterruptibly, never stopped (under any job control).
    let line = format!(
        "'{BIN}' exec --secret app#SECRET_TOKEN --interval 200ms --debounce 200ms -- bash '{repl}'\n"
    );
    keys.write_all(line.as_bytes()).await.unwrap();
    keys.flush().await.unwrap();

    let lines = wait_lines(&log, "start", 1).await;
    let first: u32 = field(&lines, "start", 0, 0).parse().unwrap();
    let vc: u32 = field(&lines, "start", 0, 1).parse().unwrap();
    let shell = stat(vc).unwrap().ppid;
    let foreground = || stat(vc).map(|s| s.tpgid);
    assert_eq!(
        foreground(),
        Some(i64::from(first)),
        "the child's group holds the terminal: {lines:?}"
    );

    // Ctrl-Z: the child stops, vault-config stops too, the shell has the terminal.
    keys.write_all(b"\x1a").await.unwrap();
    keys.flush().await.unwrap();
    eventually("both stopped", || {
        stat(vc).is_some_and(|s| s.state == 'T') && stat(first).is_some_and(|s| s.state == 'T')
    })
    .await;
    eventually("the shell holds the terminal", || {
        foreground() == Some(i64::from(shell))
    })
    .await;

    // `bg`: both go on, in the background.
    keys.write_all(b"bg\n").await.unwrap();
    keys.flush().await.unwrap();
    eventually("both continued", || {
        stat(vc).is_some_and(|s| s.state != 'T') && stat(first).is_some_and(|s| s.state != 'T')
    })
    .await;

    // A restart in the background: the terminal stays the shell's.
    let (second, group, foreground_then) = restart_with(&server, &log, "v2", 1).await;
    assert_eq!(
        (group, foreground_then),
        (second.clone(), shell.to_string()),
        "a group of its own, in the background"
    );
    assert_eq!(foreground(), Some(i64::from(shell)), "still the shell's");

    // `fg`: vault-config's group gets the terminal, and hands it to the
    // running child; the next child takes it in turn.
    keys.write_all(b"fg\n").await.unwrap();
    keys.flush().await.unwrap();
    let second_pid: u32 = second.parse().unwrap();
    eventually("the running child in the foreground again", || {
        foreground() == Some(i64::from(second_pid))
    })
    .await;
    let (third, group, foreground_then) = restart_with(&server, &log, "v3", 2).await;
    assert_eq!(
        (group, foreground_then),
        (third.clone(), third),
        "the terminal goes to the new child"
    );

    kill(vc, "TERM");
    eventually("vault-config ended", || !alive(vc)).await;
    keys.write_all(b"exit 0\n").await.unwrap();
    keys.flush().await.unwrap();
    assert_eq!(exit_of(&mut terminal).await, Some(0));
    drop(keys);
}

/// At a terminal, a command that cannot be started (the child takes the
/// terminal just before its exec fails) leaves the terminal to the group
/// that ran vault-config, not to the child's group, which is gone.
#[tokio::test]
async fn a_command_that_cannot_start_gives_the_terminal_back() {
    require("script", "util-linux");
    let server = DevServer::start().await;
    let home = temp_dir("noexec");
    let log = home.join("after.log");
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    // `sh -c` runs vault-config in its own group, the terminal's foreground;
    // then `cut` reports its group and the terminal's foreground group.
    let line = format!(
        "'{BIN}' exec --secret app#SECRET_TOKEN -- /nonexistent/command; echo \"after $? $(cut -d' ' -f5,8 /proc/self/stat)\" >> \"$LOG\""
    );
    let status = at_a_terminal(&server, &home, &line, &log).status();
    let status = tokio::time::timeout(PATIENCE, status)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let lines = wait_lines(&log, "after", 1).await;
    assert_eq!(
        field(&lines, "after", 0, 0),
        "127",
        "command not found: {lines:?}"
    );
    assert_eq!(
        field(&lines, "after", 0, 1),
        field(&lines, "after", 0, 2),
        "the shell's group holds the terminal again: {lines:?}"
    );
}
