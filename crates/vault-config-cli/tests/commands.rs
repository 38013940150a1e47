//! The `vault-config` binary against real OpenBao dev servers, logged in with
//! AppRole as a service would be: no token left behind at exit, leased or KV
//! by the mount's type, what `rotate` and `status` tell a new user, and the
//! policy `policy` prints being exactly enough.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};
use vault_test_support::{DevServer, Postgres};

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

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vault-config-commands-{name}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary run to its end with `vars` as the Vault contract.
async fn run_as(home: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    vault_config(home, vars).args(args).output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn root(server: &DevServer) -> Vec<(&str, &str)> {
    vec![
        ("VAULT_ADDR", server.addr()),
        ("VAULT_TOKEN", server.root_token()),
    ]
}

/// An AppRole login's environment, as a service gets it.
struct AppRole {
    addr: String,
    role_id: String,
    secret_id: String,
}

impl AppRole {
    /// Role `role` on the `approle` mount (enabled here if need be) holding `policies`.
    async fn new(server: &DevServer, role: &str, policies: &[&str]) -> AppRole {
        // Already enabled by an earlier role: fine.
        let _ = server.enable_auth("approle", "approle").await;
        let role_id = server
            .approle_role(role, json!({"token_policies": policies}))
            .await
            .unwrap();
        let secret_id = server.approle_secret_id(role).await.unwrap();
        AppRole {
            addr: server.addr().to_owned(),
            role_id,
            secret_id,
        }
    }

    fn vars(&self) -> Vec<(&str, &str)> {
        vec![
            ("VAULT_ADDR", self.addr.as_str()),
            ("VAULT_AUTH_METHOD", "approle"),
            ("VAULT_ROLE_ID", self.role_id.as_str()),
            ("VAULT_SECRET_ID", self.secret_id.as_str()),
        ]
    }

    async fn run(&self, home: &Path, args: &[&str]) -> Output {
        run_as(home, &self.vars(), args).await
    }
}

/// How many tokens are alive on `server` (root's own included).
async fn accessors(server: &DevServer) -> usize {
    let answer = server
        .api("LIST", "auth/token/accessors", None, None)
        .await
        .unwrap();
    answer["data"]["keys"].as_array().map_or(0, Vec::len)
}

/// The leases alive under `prefix` (`database/creds/app`).
async fn leases(server: &DevServer, prefix: &str) -> usize {
    match server
        .api("LIST", &format!("sys/leases/lookup/{prefix}"), None, None)
        .await
    {
        Ok(answer) => answer["data"]["keys"].as_array().map_or(0, Vec::len),
        // 404: none.
        Err(_) => 0,
    }
}

/// Reads and writes `secret/*`, as an operator running the CLI would.
const OPERATOR: &str = r#"
path "secret/data/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/*" { capabilities = ["read"] }
"#;

#[tokio::test]
async fn login_runs_revoke_their_token_at_exit_and_never_a_given_one() {
    let server = DevServer::start().await;
    let home = temp_dir("logout");
    server
        .kv_put("secret", "app-prod", json!({"A": "a", "B": "b"}))
        .await
        .unwrap();
    server.write_policy("operator", OPERATOR).await.unwrap();
    let approle = AppRole::new(&server, "operator", &["operator"]).await;
    let before = accessors(&server).await;

    // The health probe, five times.
    for _ in 0..5 {
        let out = approle.run(&home, &["status", "--json", "app-prod"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["secrets"]["vault_connected"], true, "{json}");
        assert_eq!(json["vault"]["auth_method"], "approle");
    }
    let after_status = accessors(&server).await;
    eprintln!(
        "token accessors: {before} before, {after_status} after five AppRole `status --json` runs"
    );
    assert_eq!(after_status, before, "status left tokens behind");

    // Every command, and an error exit.
    let out = approle.run(&home, &["env", "app-prod"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = approle
        .run(
            &home,
            &[
                "exec",
                "--secret",
                "app-prod",
                "--",
                "sh",
                "-c",
                "test \"$A\" = a && exit 3",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = approle
        .run(&home, &["rotate", "app-prod", "B", "--generate"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = approle.run(&home, &["env", "app-prod", "missing"]).await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    let out = approle.run(&home, &["policy", "app-prod"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        accessors(&server).await,
        before,
        "a command left a token behind"
    );

    // Stopped by a signal after it logged in: `rotate` waits for its value.
    let mut child = vault_config(&home, &approle.vars())
        .args(["rotate", "app-prod", "B", "--value-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while accessors(&server).await == before {
        assert!(started.elapsed() < Duration::from_secs(20), "no login");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Held open past the exit (waiting on the child would close it: an
    // end of input that would race the signal).
    let stdin = child.stdin.take();
    signal(&child, "TERM");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("vault-config did not exit on SIGTERM")
        .unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    assert_eq!(
        accessors(&server).await,
        before,
        "the signal left a token behind"
    );

    // A token the user gave is never revoked.
    let given = server
        .create_token(json!({"policies": ["operator"]}))
        .await
        .unwrap();
    let out = run_as(
        &home,
        &[("VAULT_ADDR", server.addr()), ("VAULT_TOKEN", &given)],
        &["env", "app-prod"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    server
        .api(
            "POST",
            "auth/token/lookup",
            None,
            Some(json!({"token": given})),
        )
        .await
        .expect("the given token was revoked");
}

#[tokio::test]
async fn leased_or_kv_is_the_mounts_type_never_a_creds_segment() {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", "1h", "24h")
        .await
        .unwrap();
    let home = temp_dir("leased");
    server
        .kv_put("secret", "team/creds", json!({"API_KEY": "k1"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "team/static-creds", json!({"OTHER": "o1"}))
        .await
        .unwrap();

    // KV secrets whose path has a `creds` segment: read from the KV mount.
    let out = run_as(
        &home,
        &root(&server),
        &["env", "team/creds", "team/static-creds"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "export API_KEY='k1'\nexport OTHER='o1'\n"
    );

    // The database mount: leased credentials.
    let out = run_as(
        &home,
        &root(&server),
        &["env", "database/creds/app#username"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("export username='v-"),
        "{}",
        text(&out.stdout)
    );

    // exec, with both.
    let out = run_as(
        &home,
        &root(&server),
        &[
            "exec",
            "--secret",
            "team/creds",
            "--secret",
            "database/creds/app#username",
            "--",
            "sh",
            "-c",
            "test \"$API_KEY\" = k1 && case \"$username\" in v-*) exit 0;; esac; exit 1",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // status tells them apart, and reads no lease to do so.
    let leases_before = leases(&server, "database/creds/app").await;
    let out = run_as(
        &home,
        &root(&server),
        &["status", "--json", "team/creds", "database/creds/app"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["paths"]["team/creds"]["leased"], false, "{json}");
    assert_eq!(json["paths"]["team/creds"]["exists"], true, "{json}");
    assert_eq!(
        json["paths"]["database/creds/app"]["leased"], true,
        "{json}"
    );
    assert_eq!(json["paths"]["database/creds/app"]["engine"], "database");
    assert_eq!(leases(&server, "database/creds/app").await, leases_before);
}

#[tokio::test]
async fn rotate_on_a_deleted_or_destroyed_version_says_what_happened() {
    let server = DevServer::start().await;
    let home = temp_dir("rotate");
    server.write_policy("operator", OPERATOR).await.unwrap();
    let approle = AppRole::new(&server, "operator", &["operator"]).await;
    server
        .kv_put("secret", "app", json!({"A": "1", "KEEP": "k"}))
        .await
        .unwrap();
    server
        .kv_put("secret", "app", json!({"A": "2", "KEEP": "k"}))
        .await
        .unwrap();

    // Version 2 deleted: undelete it, or roll back to 1; nothing written.
    server.kv_delete("secret", "app").await.unwrap();
    let out = approle
        .run(&home, &["rotate", "app", "A", "--generate"])
        .await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    for said in [
        "version 2 of secret/app",
        "is deleted",
        "bao kv undelete -mount=secret -versions=2 app",
        "bao kv rollback -mount=secret -version=1 app",
        "bao kv patch",
    ] {
        assert!(err.contains(said), "`{said}` not in: {err}");
    }
    assert!(!err.contains("create it first"), "{err}");
    let meta = server.kv_metadata("secret", "app").await.unwrap().unwrap();
    assert_eq!(meta["current_version"], 2, "nothing was written");

    // Destroyed: no undelete, a rollback.
    server.kv_destroy("secret", "app", &[2]).await.unwrap();
    let out = approle
        .run(&home, &["rotate", "app", "A", "--generate"])
        .await;
    assert_eq!(out.status.code(), Some(14));
    let err = text(&out.stderr);
    assert!(err.contains("was destroyed"), "{err}");
    assert!(!err.contains("undelete"), "{err}");
    assert!(err.contains("-version=1 app"), "{err}");

    // Rolled back as told, the rotation keeps the other key.
    server.kv_rollback("secret", "app", 1).await.unwrap();
    let out = approle
        .run(&home, &["rotate", "app", "A", "--generate"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let data = server
        .kv_read("secret", "app", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(data["KEEP"], "k", "{data:?}");

    // A secret that never existed: create it (there is nothing to lose).
    let out = approle
        .run(&home, &["rotate", "new", "A", "--generate"])
        .await;
    assert_eq!(out.status.code(), Some(14));
    assert!(text(&out.stderr).contains("create it first"));
}

#[tokio::test]
async fn status_keeps_its_column_for_long_paths_and_names_the_method_once() {
    let server = DevServer::start().await;
    let home = temp_dir("status");
    server.write_policy("operator", OPERATOR).await.unwrap();
    let approle = AppRole::new(&server, "operator", &["operator"]).await;
    let long = "teams/payments/production/eu-west-1/database";
    server
        .kv_put("secret", long, json!({"A": "a"}))
        .await
        .unwrap();
    let out = approle.run(&home, &["status", "app-missing", long]).await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    // Where each line's text starts, after its `label:` and the padding.
    let column = |line: &str| {
        let after = line.find(':')? + 1;
        let rest = &line[after..];
        Some(after + rest.len() - rest.trim_start().len())
    };
    let columns: Vec<usize> = report.lines().filter_map(column).collect();
    assert!(columns.len() >= 5, "{report}");
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "misaligned:\n{report}"
    );
    let auth = report.lines().find(|l| l.starts_with("auth:")).unwrap();
    assert!(
        auth.ends_with("approle (secret ID from VAULT_SECRET_ID)"),
        "{auth}"
    );
    assert!(!report.contains("approle (approle"), "{report}");
}

#[tokio::test]
async fn policy_grants_exactly_what_env_and_exec_read() {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", "1h", "24h")
        .await
        .unwrap();
    let home = temp_dir("policy");
    server
        .kv_put("secret", "app-prod", json!({"A": "a"}))
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "team/creds",
            json!({"API_KEY": "k1", "OTHER": "o"}),
        )
        .await
        .unwrap();
    server
        .kv_put("secret", "unrelated", json!({"X": "x"}))
        .await
        .unwrap();

    let args = [
        "app-prod",
        "team/creds#API_KEY",
        "database/creds/app#username",
    ];
    let out = run_as(&home, &root(&server), &[&["policy"], &args[..]].concat()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let hcl = text(&out.stdout);
    for grant in [
        r#"path "secret/data/app-prod" {"#,
        r#"path "secret/metadata/app-prod" {"#,
        r#"path "secret/data/team/creds" {"#,
        r#"path "secret/metadata/team/creds" {"#,
        r#"path "database/creds/app" {"#,
        r#"path "sys/leases/renew/database/creds/app/*" {"#,
        r#"path "sys/leases/revoke/database/creds/app/*" {"#,
    ] {
        assert!(hcl.contains(grant), "no `{grant}` in:\n{hcl}");
    }
    assert_eq!(hcl.matches("path \"").count(), 7, "{hcl}");
    assert!(
        !hcl.contains("update\", \"read") && !hcl.contains("\"list\""),
        "{hcl}"
    );
    let told = text(&out.stderr);
    assert!(told.contains("database/creds/app: leased"), "{told}");

    // Granted exactly that, an AppRole service reads its paths with env and
    // exec, and nothing else; its leases and tokens end with each run.
    server.write_policy("generated", &hcl).await.unwrap();
    let approle = AppRole::new(&server, "service", &["generated"]).await;
    let tokens = accessors(&server).await;
    let out = approle
        .run(
            &home,
            &[
                "exec",
                "--secret",
                "app-prod",
                "--secret",
                "team/creds#API_KEY",
                "--secret",
                "database/creds/app#username",
                "--",
                "sh",
                "-c",
                "test \"$A\" = a && test \"$API_KEY\" = k1 && test -n \"$username\"",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = approle.run(&home, &["env", "unrelated"]).await;
    assert_eq!(out.status.code(), Some(13), "{}", text(&out.stderr));
    assert_eq!(
        leases(&server, "database/creds/app").await,
        0,
        "a lease outlived exec"
    );
    assert_eq!(accessors(&server).await, tokens, "a token outlived its run");

    // env hands leased credentials over: the token they live under is kept
    // (revoking it would revoke them), and stderr says so.
    let out = approle.run(&home, &[&["env"], &args[..]].concat()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shell = text(&out.stdout);
    assert!(
        shell.contains("export A='a'") && shell.contains("export username='v-"),
        "{shell}"
    );
    assert!(
        text(&out.stderr).contains("is kept, not revoked"),
        "{}",
        text(&out.stderr)
    );
    let username = shell
        .lines()
        .find_map(|l| l.strip_prefix("export username='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap();
    assert!(pg
        .vault_roles()
        .await
        .unwrap()
        .iter()
        .any(|r| r == username));
    assert_eq!(leases(&server, "database/creds/app").await, 1);
    assert_eq!(accessors(&server).await, tokens + 1);
}
