//! The `vault-config` binary, run as a user runs it, against real OpenBao dev
//! servers (one per test).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};
use vault_test_support::{dead_addr, DevServer};

const BIN: &str = env!("CARGO_BIN_EXE_vault-config");

/// The binary with only `vars` of the Vault contract (none of the test
/// runner's own), a throwaway HOME (no `~/.vault-token`).
fn vault_config(home: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") || name.starts_with("BAO_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home).envs(vars.iter().copied());
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

fn contract(server: &DevServer) -> Vec<(&str, &str)> {
    vec![
        ("VAULT_ADDR", server.addr()),
        ("VAULT_TOKEN", server.root_token()),
    ]
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vault-config-cli-{name}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn run(server: &DevServer, home: &Path, args: &[&str]) -> Output {
    run_as(home, &contract(server), args).await
}

/// The binary run to its end with `vars` as the Vault contract.
async fn run_as(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    vault_config(home, vars).args(args).output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The values a shell holds after `eval "$(vault-config env ...)"`, from `env -0`.
fn env0(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let at = entry.iter().position(|b| *b == b'=')?;
            Some((text(&entry[..at]), entry[at + 1..].to_vec()))
        })
        .collect()
}

const TRICKY: &[(&str, &str)] = &[
    ("QUOTES", "it's \"quoted\" 'twice'"),
    ("LINES", "line one\nline two\n\n"),
    ("DOLLAR", "$HOME ${PATH} $(id) `id` \\n \\"),
    ("UNICODE", "pässwörd ✓ 密码 🔑"),
    ("SPACES", "  leading and trailing  \t"),
    ("EMPTY", ""),
    ("GLOB", "* ? [a-z] ~ ; | & < > #"),
];

#[tokio::test]
async fn env_values_come_back_byte_for_byte_after_eval() {
    let server = DevServer::start().await;
    let home = temp_dir("eval");
    let data: serde_json::Map<String, Value> = TRICKY
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    server
        .kv_put("secret", "tricky", Value::Object(data))
        .await
        .unwrap();
    server
        .kv_put("secret", "app", json!({"api-key": "k1", "port": 5432}))
        .await
        .unwrap();

    let script = format!("eval \"$('{BIN}' env tricky app)\" && env -0");
    let out = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", server.root_token())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let vars = env0(&out.stdout);
    for (name, value) in TRICKY {
        let got = vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(got.as_deref(), Some(value.as_bytes()), "{name}");
    }
    // A key that is no variable name is sanitized; a number is its text.
    let get = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| text(v));
    assert_eq!(get("api_key").as_deref(), Some("k1"));
    assert_eq!(get("port").as_deref(), Some("5432"));
}

#[tokio::test]
async fn env_is_all_or_nothing_and_says_why() {
    let server = DevServer::start().await;
    let home = temp_dir("env");
    server
        .kv_put("secret", "app", json!({"URL": "u-app", "api-key": "k1"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "db", json!({"URL": "u-db", "LINES": "a\nb"}))
        .await
        .unwrap();

    // One path missing: nothing printed, exit 14, the path named.
    let out = run(&server, &home, &["env", "app", "nope"]).await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("nope"), "{}", text(&out.stderr));

    // A name from two paths: an error naming both, unless the last wins.
    let out = run(&server, &home, &["env", "app#URL", "db#URL"]).await;
    assert_eq!(out.status.code(), Some(15));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(err.contains("app#URL") && err.contains("db#URL"), "{err}");
    assert!(!err.contains("u-app") && !err.contains("u-db"), "{err}");
    let out = run(&server, &home, &["env", "--last-wins", "app#URL", "db#URL"]).await;
    assert_eq!(text(&out.stdout), "export URL='u-db'\n");

    // --strict refuses a key that is not a variable name.
    let out = run(&server, &home, &["env", "--strict", "app"]).await;
    assert_eq!(out.status.code(), Some(15));
    assert!(
        text(&out.stderr).contains("app#api-key"),
        "{}",
        text(&out.stderr)
    );

    // A missing key is not found, and the keys that exist are named.
    let out = run(&server, &home, &["env", "app#NOPE"]).await;
    assert_eq!(out.status.code(), Some(14));
    assert!(text(&out.stderr).contains("URL"), "{}", text(&out.stderr));

    // Lines for docker --env-file, with a prefix (tests/formats.rs reads
    // them and dotenv back with real readers); JSON for tools.
    let out = run(
        &server,
        &home,
        &["env", "--format", "docker", "--prefix", "APP_", "app"],
    )
    .await;
    assert_eq!(text(&out.stdout), "APP_URL=u-app\nAPP_api_key=k1\n");
    let out = run(&server, &home, &["env", "--format", "docker", "db"]).await;
    assert_eq!(
        out.status.code(),
        Some(15),
        "a line break cannot go in a docker --env-file"
    );
    let out = run(&server, &home, &["env", "--format", "json", "db"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, json!({"URL": "u-db", "LINES": "a\nb"}));

    // Vault unreachable: exit 10, nothing printed.
    let out = run_as(
        &home,
        &[
            ("VAULT_ADDR", &dead_addr()),
            ("VAULT_TOKEN", "t"),
            ("VAULT_MAX_RETRIES", "0"),
        ],
        &["env", "app"],
    )
    .await;
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("vault_connection_failed"));

    // A token Vault does not accept is an authentication failure, not a denial.
    let out = run_as(
        &home,
        &[
            ("VAULT_ADDR", server.addr()),
            ("VAULT_TOKEN", "not-a-token"),
        ],
        &["env", "app"],
    )
    .await;
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("not-a-token"));
}

/// A child that logs its start (pid, secret, whether it saw VAULT_TOKEN),
/// SIGHUP and SIGTERM (exiting 7) to `$LOG`, and ends when its parent is
/// gone (a test that failed killed vault-config, which must not leave it
/// holding the test's output open).
const CHILD: &str = r#"echo "start $$ ${SECRET_TOKEN:-unset} ${VAULT_TOKEN:-no-token}" >> "$LOG"
trap 'echo "hup $$" >> "$LOG"' HUP
trap 'echo "term $$" >> "$LOG"; exit 7' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn wait_lines(log: &Path, what: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = log_lines(log);
        if lines.iter().filter(|l| l.starts_with(what)).count() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no {n} `{what}` lines in time: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn starts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("start"))
        .cloned()
        .collect()
}

fn exec(server: &DevServer, home: &Path, token: &str, log: &Path, extra: &[&str]) -> Child {
    let log = log.to_str().unwrap().to_owned();
    let mut cmd = vault_config(
        home,
        &[("VAULT_ADDR", server.addr()), ("VAULT_TOKEN", token)],
    );
    cmd.env("LOG", log)
        .args([
            "exec",
            "--secret",
            "app#SECRET_TOKEN",
            "--interval",
            "200ms",
            "--debounce",
            "1500ms",
        ])
        .args(extra)
        .args(["--", "sh", "-c", CHILD])
        .stdout(Stdio::null());
    cmd.spawn().unwrap()
}

async fn exit_of(child: &mut Child) -> Option<i32> {
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("vault-config exec did not exit")
        .unwrap()
        .code()
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn exec_restarts_once_per_change_never_on_renewals_and_exits_like_its_child() {
    let server = DevServer::start().await;
    let home = temp_dir("exec");
    let log = home.join("child.log");
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1", "OTHER": "x"}))
        .await
        .unwrap();
    // A periodic 6 s token: without renewals it would die within the test.
    // (Not shorter: renewed at two thirds, a 2 s period left < 0.7 s for a
    // renewal on a loaded machine.)
    let token = server
        .create_token(json!({"period": "6s", "policies": ["root"]}))
        .await
        .unwrap();
    let mut supervisor = exec(&server, &home, &token, &log, &[]);

    let lines = wait_lines(&log, "start", 1).await;
    assert!(
        lines[0].ends_with(" v1 no-token"),
        "the secret, not the parent's token: {lines:?}"
    );

    // The same values written again, and a token renewal: no restart.
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1", "OTHER": "x"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(starts(&log_lines(&log)).len(), 1, "{:?}", log_lines(&log));

    // Two changes within the debounce: one restart, with the last value.
    // (Written through the API, milliseconds apart: two `bao kv patch`
    // processes could take longer than the debounce on a loaded machine.)
    server
        .kv_patch("secret", "app", json!({"SECRET_TOKEN": "v2"}))
        .await
        .unwrap();
    server
        .kv_patch("secret", "app", json!({"SECRET_TOKEN": "v3"}))
        .await
        .unwrap();
    let lines = wait_lines(&log, "start", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines_after = log_lines(&log);
    assert_eq!(starts(&lines_after).len(), 2, "{lines_after:?}");
    assert!(starts(&lines)[1].contains(" v3 "), "{lines:?}");
    assert!(
        lines_after.iter().any(|l| l.starts_with("term")),
        "stopped with SIGTERM: {lines_after:?}"
    );

    // SIGTERM to vault-config reaches the child, whose code is the exit code.
    signal(&supervisor, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(7));
    assert_eq!(
        log_lines(&log)
            .iter()
            .filter(|l| l.starts_with("term"))
            .count(),
        2
    );
}

#[tokio::test]
async fn exec_can_signal_instead_of_restarting() {
    let server = DevServer::start().await;
    let home = temp_dir("hup");
    let log = home.join("child.log");
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v1"}))
        .await
        .unwrap();
    let mut supervisor = exec(
        &server,
        &home,
        server.root_token(),
        &log,
        &["--on-change", "signal:HUP"],
    );
    wait_lines(&log, "start", 1).await;
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "v2"}))
        .await
        .unwrap();
    let lines = wait_lines(&log, "hup", 1).await;
    assert_eq!(
        starts(&lines).len(),
        1,
        "signalled, not restarted: {lines:?}"
    );
    // SIGINT is forwarded too; the child's trap leaves it to its default: it dies of it.
    signal(&supervisor, "INT");
    assert_eq!(exit_of(&mut supervisor).await, Some(128 + 2));
}

#[tokio::test]
async fn exec_with_vault_down_fails_in_time_or_falls_back() {
    let mut server = DevServer::start().await;
    let home = temp_dir("down");
    let log = home.join("child.log");
    let dead = dead_addr();
    let started = Instant::now();
    let mut cmd = vault_config(&home, &[("VAULT_ADDR", &dead), ("VAULT_TOKEN", "t")]);
    let out = cmd
        .env("LOG", &log)
        .args([
            "exec",
            "--secret",
            "app",
            "--start-timeout",
            "1s",
            "--",
            "sh",
            "-c",
            CHILD,
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text(&out.stderr).contains("start-timeout"),
        "{}",
        text(&out.stderr)
    );
    assert!(log_lines(&log).is_empty(), "the command never started");

    // --mode fallback: the child starts on the parent's environment, and
    // gets its secrets (a restart) once Vault is back.
    // A secret Vault does not have stops the start, as in `env`.
    let out = run(&server, &home, &["exec", "--secret", "nope", "--", "true"]).await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no secret at nope"),
        "{}",
        text(&out.stderr)
    );
    let addr = server.addr().to_owned();
    let token = server.root_token().to_owned();
    server.stop().await;
    let mut cmd = vault_config(&home, &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", &token)]);
    let mut child = cmd
        .env("LOG", &log)
        .env("SECRET_TOKEN", "from-parent")
        .args([
            "exec",
            "--secret",
            "app",
            "--mode",
            "fallback",
            "--debounce",
            "100ms",
            "--",
            "sh",
            "-c",
            CHILD,
        ])
        .spawn()
        .unwrap();
    let lines = wait_lines(&log, "start", 1).await;
    assert!(lines[0].contains(" from-parent "), "{lines:?}");
    server.restart().await.unwrap();
    server
        .kv_put("secret", "app", json!({"SECRET_TOKEN": "from-vault"}))
        .await
        .unwrap();
    let lines = wait_lines(&log, "start", 2).await;
    assert!(starts(&lines)[1].contains(" from-vault "), "{lines:?}");
    signal(&child, "TERM");
    assert_eq!(exit_of(&mut child).await, Some(7));
}

#[tokio::test]
async fn concurrent_rotations_of_one_path_lose_no_key() {
    let server = DevServer::start().await;
    let home = temp_dir("rotate");
    server
        .kv_put(
            "secret",
            "app-prod",
            json!({"A": "a0", "B": "b0", "KEEP": "kept"}),
        )
        .await
        .unwrap();
    let mut seen_a = std::collections::HashSet::new();
    let mut seen_b = std::collections::HashSet::new();
    for _ in 0..4 {
        let a = vault_config(&home, &contract(&server))
            .args([
                "rotate",
                "app-prod",
                "A",
                "--generate",
                "--charset",
                "hex",
                "--length",
                "40",
            ])
            .output();
        let b = vault_config(&home, &contract(&server))
            .args(["rotate", "app-prod", "B", "--generate"])
            .output();
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a.status.success() && b.status.success(),
            "{} {}",
            text(&a.stderr),
            text(&b.stderr)
        );
        let now = server
            .api("GET", "secret/data/app-prod", None, None)
            .await
            .unwrap();
        let data = &now["data"]["data"];
        let (va, vb) = (data["A"].as_str().unwrap(), data["B"].as_str().unwrap());
        assert_eq!(data["KEEP"], "kept");
        assert!(
            seen_a.insert(va.to_owned()) && va != "a0",
            "A was rotated: {va}"
        );
        assert!(
            seen_b.insert(vb.to_owned()) && vb != "b0",
            "B was rotated: {vb}"
        );
        assert_eq!(va.len(), 40);
        // The report, never the value.
        let report = text(&a.stdout);
        assert!(
            report.starts_with("rotated app-prod#A: version "),
            "{report}"
        );
        assert!(report.trim_end().ends_with(", verified"), "{report}");
        assert!(!report.contains(va) && !text(&a.stderr).contains(va));
    }

    // A value on the command line is refused; from stdin it is taken.
    let out = run(&server, &home, &["rotate", "app-prod", "A", "typed-value"]).await;
    assert_eq!(out.status.code(), Some(15));
    assert!(
        text(&out.stderr).contains("--value-stdin"),
        "{}",
        text(&out.stderr)
    );
    let mut child = vault_config(&home, &contract(&server))
        .args(["rotate", "app-prod", "A", "--value-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"piped value\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let now = server
        .api("GET", "secret/data/app-prod", None, None)
        .await
        .unwrap();
    assert_eq!(now["data"]["data"]["A"], "piped value");
    // A path that does not exist is not created by accident.
    let out = run(&server, &home, &["rotate", "app-typo", "A", "--generate"]).await;
    assert_eq!(out.status.code(), Some(14));
}

#[tokio::test]
async fn status_reports_sealed_and_unsealed_servers() {
    let server = DevServer::start().await;
    let home = temp_dir("status");
    server
        .kv_put("secret", "app-prod", json!({"A": "a"}))
        .await
        .unwrap();

    let out = run(&server, &home, &["status", "--json", "app-prod"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["secrets"],
        json!({"vault_enabled": true, "vault_connected": true})
    );
    assert_eq!(json["server"]["sealed"], false);
    assert_eq!(json["vault"]["kv_version"], 2);
    assert_eq!(json["paths"]["app-prod"]["exists"], true);
    assert_eq!(json["paths"]["app-prod"]["version"], 1);
    assert_eq!(json["paths"]["app-prod"]["capabilities"], json!(["root"]));
    assert!(!text(&out.stdout).contains(server.root_token()));

    // A path that does not exist, in words this time.
    let out = run(&server, &home, &["status", "app-prod", "missing"]).await;
    assert_eq!(out.status.code(), Some(14));
    let report = text(&out.stdout);
    assert!(
        report.contains("unsealed, active") && report.contains("not found"),
        "{report}"
    );

    // A token that may not read the path (with `default`, so that it may
    // look itself up: without it, a valid token cannot be told from a bogus one).
    server
        .write_policy(
            "meta-only",
            r#"path "secret/metadata/*" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
    let limited = server
        .create_token(json!({"policies": ["meta-only", "default"]}))
        .await
        .unwrap();
    let out = run_as(
        &home,
        &[("VAULT_ADDR", server.addr()), ("VAULT_TOKEN", &limited)],
        &["status", "--json", "app-prod"],
    )
    .await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(13), "{json}");
    assert_eq!(json["status"], "permission_denied");

    // A token Vault does not know.
    let out = run_as(
        &home,
        &[("VAULT_ADDR", server.addr()), ("VAULT_TOKEN", "hvs.bogus")],
        &["status", "--json"],
    )
    .await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(12), "{json}");
    assert_eq!(json["status"], "vault_authentication_failed");
    assert!(!text(&out.stdout).contains("hvs.bogus"));

    // Sealed.
    server.cli(&["operator", "seal"]).await.unwrap();
    let out = run(&server, &home, &["status", "--json", "app-prod"]).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(11), "{json}");
    assert_eq!(json["server"]["sealed"], true);
    assert_eq!(json["secrets"]["vault_connected"], false);
    assert_eq!(json["status"], "vault_sealed");

    // Nothing listening.
    let out = run_as(
        &home,
        &[
            ("VAULT_ADDR", &dead_addr()),
            ("VAULT_TOKEN", "t"),
            ("VAULT_MAX_RETRIES", "0"),
        ],
        &["status", "--json"],
    )
    .await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(10), "{json}");
    assert_eq!(json["secrets"]["vault_connected"], false);
    assert_eq!(json["status"], "vault_connection_failed");
}
