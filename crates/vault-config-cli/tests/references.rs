//! `vault://PATH#KEY` references, as a user meets them after `import
//! --rewrite`: `env --env-file` and `exec --env-file` against real OpenBao
//! dev servers (and a real PostgreSQL for leased credentials), the built
//! binary, real shells and children. The exact values reach the shell and
//! the child; a dangling reference starts nothing; a rotation of a
//! referenced value restarts the child; a leased path is read once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};
use vault_test_support::{DevServer, Postgres};

const BIN: &str = env!("CARGO_BIN_EXE_vault-config");

/// The longest any one wait of these tests lasts.
const PATIENCE: Duration = Duration::from_secs(20);

/// The binary against `server` as root, with none of the test runner's
/// own Vault settings and a throwaway HOME.
fn vault_config(server: &DevServer, home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") || name.starts_with("BAO_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home)
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", server.root_token())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn run(server: &DevServer, home: &Path, args: &[&str]) -> Output {
    vault_config(server, home)
        .args(args)
        .output()
        .await
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "vault-config-references-{name}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `NAME=value` entries of `env -0` output.
fn env0(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let at = entry.iter().position(|b| *b == b'=')?;
            Some((text(&entry[..at]), text(&entry[at + 1..])))
        })
        .collect()
}

fn get<'v>(vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
    vars.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A value no shell, dotenv reader or JSON parser may change (a `$` is
/// `env`'s own tests' business: `--format dotenv` refuses some with `'`).
const TRICKY: &str = "it's \"q\" `id` \\n \\ pässwörd 🔑 #no-comment a=b";

/// A `.env` as `import --rewrite` leaves it: references, a literal, a
/// comment, `export `.
const DOTENV: &str = "# the app\n\
    export DATABASE_URL=vault://database#DATABASE_URL\n\
    API_KEY='vault://app#API_KEY'\n\
    LOG_LEVEL=debug # a literal\n\
    SHARED=from-file\n";

async fn seed(server: &DevServer) {
    server
        .kv_put(
            "secret",
            "database",
            json!({"DATABASE_URL": "postgres://u:p@db/app", "OTHER": "o"}),
        )
        .await
        .unwrap();
    server
        .kv_put(
            "secret",
            "app",
            json!({"API_KEY": TRICKY, "SHARED": "from-secret", "PORT": 8080}),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn env_env_file_prints_resolved_values_in_every_format() {
    let server = DevServer::start().await;
    seed(&server).await;
    let home = temp_dir("env");
    let file = home.join(".env");
    std::fs::write(&file, DOTENV).unwrap();
    let file = file.to_str().unwrap();

    // JSON: exactly the file's variables, references resolved.
    let out = run(
        &server,
        &home,
        &["env", "--format", "json", "--env-file", file],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!({
            "DATABASE_URL": "postgres://u:p@db/app",
            "API_KEY": TRICKY,
            "LOG_LEVEL": "debug",
            "SHARED": "from-file",
        })
    );

    // sh: the shell holds the exact values after eval; a PATH argument wins
    // over the file.
    let script = format!("eval \"$('{BIN}' env --env-file '{file}' app#SHARED)\" && env -0");
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
    assert_eq!(get(&vars, "API_KEY"), Some(TRICKY));
    assert_eq!(get(&vars, "DATABASE_URL"), Some("postgres://u:p@db/app"));
    assert_eq!(get(&vars, "LOG_LEVEL"), Some("debug"));
    assert_eq!(get(&vars, "SHARED"), Some("from-secret"));

    // dotenv: read back by the same dotenvy-based reader `env --env-file`
    // uses, the printed file gives the same values.
    let out = run(
        &server,
        &home,
        &["env", "--format", "dotenv", "--env-file", file],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = home.join("printed.env");
    std::fs::write(&printed, &out.stdout).unwrap();
    let again = run(
        &server,
        &home,
        &[
            "env",
            "--format",
            "json",
            "--env-file",
            printed.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&again.stdout).unwrap()["API_KEY"],
        json!(TRICKY)
    );

    // docker: NAME=value, as written.
    let out = run(
        &server,
        &home,
        &["env", "--format", "docker", "--env-file", file],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("API_KEY={TRICKY}\n")),
        "{}",
        text(&out.stdout)
    );

    // A dangling reference: nothing printed, the variable, file, line and
    // reference named, no value quoted.
    let dangling = home.join("dangling.env");
    std::fs::write(
        &dangling,
        "OK=vault://app#API_KEY\n\nGONE=vault://app#NOPE\n",
    )
    .unwrap();
    let out = run(
        &server,
        &home,
        &["env", "--env-file", dangling.to_str().unwrap()],
    )
    .await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "GONE ({} line 3) = vault://app#NOPE",
            dangling.display()
        )),
        "{err}"
    );
    assert!(!err.contains("pässwörd"), "{err}");

    // The policy for the file's references: its paths, no other.
    let out = run(&server, &home, &["policy", "--env-file", file]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let policy = text(&out.stdout);
    for path in ["secret/data/database", "secret/data/app"] {
        assert!(policy.contains(&format!("path \"{path}\"")), "{policy}");
    }
    assert_eq!(policy.matches("/data/").count(), 2, "{policy}");

    // A path the token may not read: denied, named the same way.
    let token = server
        .token_with_policy("app-only", "path \"secret/data/app\" { capabilities = [\"read\"] }\npath \"sys/mounts\" { capabilities = [\"read\"] }\npath \"auth/token/lookup-self\" { capabilities = [\"read\"] }")
        .await
        .unwrap();
    let out = vault_config(&server, &home)
        .env("VAULT_TOKEN", &token)
        .args(["env", "--env-file", file])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(13), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("DATABASE_URL (") && out.stdout.is_empty(),
        "{}",
        text(&out.stderr)
    );
}

/// A child that logs `start <pid> <API_KEY> <DATABASE_URL> <LOG_LEVEL>
/// <SHARED> <FROM_ENV> <PLAIN_ENV>` and its environment (`env -0`) to
/// `$OUT`, then waits (ending once vault-config is gone).
const CHILD: &str = r#"
env -0 > "$OUT.env.$$"
echo "start $$ $API_KEY_SHORT" >> "$OUT"
trap 'echo "term $$" >> "$OUT"; exit 0' TERM
ppid=$PPID
while kill -0 "$ppid" 2>/dev/null; do sleep 0.1; done
"#;

fn exec(server: &DevServer, home: &Path, out: &Path, args: &[&str]) -> Command {
    let mut cmd = vault_config(server, home);
    cmd.env("OUT", out)
        .arg("exec")
        .args(["--interval", "200ms", "--debounce", "300ms"])
        .args(args)
        .args(["--", "sh", "-c", CHILD])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

async fn wait_lines(log: &Path, what: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines: Vec<String> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(what))
            .map(str::to_owned)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no {n} `{what}` lines in time: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The environment the child logged in its `start` line `line`.
fn child_env(out: &Path, line: &str) -> Vec<(String, String)> {
    let pid = line.split_whitespace().nth(1).unwrap();
    let env = std::fs::read(format!("{}.env.{pid}", out.display())).unwrap();
    env0(&env)
}

async fn exit_of(child: &mut Child) -> Option<i32> {
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("vault-config did not exit")
        .unwrap()
        .code()
}

#[tokio::test]
async fn exec_env_file_gives_the_child_exact_values_and_restarts_it_on_a_rotation() {
    let server = DevServer::start().await;
    seed(&server).await;
    server
        .kv_put("secret", "short", json!({"K": "s1", "E": "e1"}))
        .await
        .unwrap();
    let home = temp_dir("exec");
    let file = home.join(".env");
    std::fs::write(
        &file,
        format!("{DOTENV}API_KEY_SHORT=vault://short#K\nBOTH=from-file\n"),
    )
    .unwrap();
    let out = home.join("child.log");

    let mut supervisor = exec(
        &server,
        &home,
        &out,
        &[
            "--env-file",
            file.to_str().unwrap(),
            "--secret",
            "app#SHARED",
        ],
    )
    // The inherited environment: a reference, resolved; a literal the
    // file overrides; one it does not.
    .env("FROM_ENV", "vault://short#E")
    .env("BOTH", "from-env")
    .env("PLAIN_ENV", "plain")
    .spawn()
    .unwrap();

    let starts = wait_lines(&out, "start", 1).await;
    assert!(starts[0].ends_with(" s1"), "{starts:?}");
    let vars = child_env(&out, &starts[0]);
    assert_eq!(get(&vars, "API_KEY"), Some(TRICKY));
    assert_eq!(get(&vars, "DATABASE_URL"), Some("postgres://u:p@db/app"));
    assert_eq!(get(&vars, "LOG_LEVEL"), Some("debug"));
    // --secret over the file over the environment.
    assert_eq!(get(&vars, "SHARED"), Some("from-secret"));
    assert_eq!(get(&vars, "BOTH"), Some("from-file"));
    assert_eq!(get(&vars, "FROM_ENV"), Some("e1"));
    assert_eq!(get(&vars, "PLAIN_ENV"), Some("plain"));
    assert!(
        vars.iter().all(|(_, v)| !v.starts_with("vault://")),
        "no reference passed on as written: {vars:?}"
    );

    // A rotation of a referenced value restarts the child with it.
    server
        .cli(&["kv", "patch", "-mount=secret", "short", "K=s2"])
        .await
        .unwrap();
    let starts = wait_lines(&out, "start", 2).await;
    assert!(starts[1].ends_with(" s2"), "{starts:?}");
    wait_lines(&out, "term", 1).await;
    // So does one of the environment's references.
    server
        .cli(&["kv", "patch", "-mount=secret", "short", "E=e2"])
        .await
        .unwrap();
    let starts = wait_lines(&out, "start", 3).await;
    assert_eq!(get(&child_env(&out, &starts[2]), "FROM_ENV"), Some("e2"));

    nix_kill(&supervisor, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(0));
}

fn nix_kill(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_dangling_reference_starts_no_child() {
    let server = DevServer::start().await;
    seed(&server).await;
    let home = temp_dir("dangling");
    let out = home.join("child.log");
    let file = home.join(".env");
    std::fs::write(
        &file,
        "API_KEY=vault://app#API_KEY\nGONE=vault://app#NOPE\n",
    )
    .unwrap();

    let result = exec(
        &server,
        &home,
        &out,
        &["--env-file", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(result.status.code(), Some(14), "{}", text(&result.stderr));
    let err = text(&result.stderr);
    assert!(
        err.contains(&format!(
            "GONE ({} line 2) = vault://app#NOPE",
            file.display()
        )),
        "{err}"
    );
    assert!(!out.exists(), "the child started");

    // A path that does not exist at all, and one in the environment.
    std::fs::write(&file, "A=vault://nowhere#K\n").unwrap();
    let result = exec(
        &server,
        &home,
        &out,
        &["--env-file", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(result.status.code(), Some(14), "{}", text(&result.stderr));
    assert!(
        text(&result.stderr).contains("A ("),
        "{}",
        text(&result.stderr)
    );
    let result = exec(&server, &home, &out, &["--secret", "app#API_KEY"])
        .env("INHERITED", "vault://app#NOPE")
        .output()
        .await
        .unwrap();
    assert_eq!(result.status.code(), Some(14), "{}", text(&result.stderr));
    assert!(
        text(&result.stderr).contains("INHERITED (the environment) = vault://app#NOPE"),
        "{}",
        text(&result.stderr)
    );
    // A malformed one, and a form import refuses.
    std::fs::write(&file, "A=vault://app\n").unwrap();
    let result = exec(
        &server,
        &home,
        &out,
        &["--env-file", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(result.status.code(), Some(15), "{}", text(&result.stderr));
    std::fs::write(&file, "A=\"$HOME\"x\n").unwrap();
    let result = exec(
        &server,
        &home,
        &out,
        &["--env-file", file.to_str().unwrap()],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(result.status.code(), Some(15), "{}", text(&result.stderr));
    assert!(!out.exists(), "the child started");
}

/// The leases alive under `prefix`.
async fn leases(server: &DevServer, prefix: &str) -> usize {
    match server
        .api("LIST", &format!("sys/leases/lookup/{prefix}"), None, None)
        .await
    {
        Ok(answer) => answer["data"]["keys"].as_array().map_or(0, Vec::len),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_leased_path_is_read_once_for_all_its_references() {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    pg.configure_vault(&server, "app", "1h", "24h")
        .await
        .unwrap();
    let home = temp_dir("leased");
    let file = home.join(".env");
    std::fs::write(
        &file,
        "DB_USER=vault://database/creds/app#username\nDB_PASS=vault://database/creds/app#password\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let out = run(
        &server,
        &home,
        &["env", "--format", "json", "--env-file", file],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        printed["DB_USER"].as_str().unwrap().starts_with("v-"),
        "{printed}"
    );
    assert!(!printed["DB_PASS"].as_str().unwrap().is_empty());
    assert_eq!(
        leases(&server, "database/creds/app").await,
        1,
        "one lease for both"
    );

    let log = home.join("child.log");
    let mut supervisor = exec(&server, &home, &log, &["--env-file", file])
        .spawn()
        .unwrap();
    let starts = wait_lines(&log, "start", 1).await;
    let vars = child_env(&log, &starts[0]);
    let user = get(&vars, "DB_USER").unwrap();
    assert!(user.starts_with("v-"), "{vars:?}");
    assert_ne!(user, printed["DB_USER"].as_str().unwrap());
    assert_eq!(
        leases(&server, "database/creds/app").await,
        2,
        "one more lease for exec"
    );
    nix_kill(&supervisor, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(0));
    // exec's lease ends with it; env's, handed out, stays.
    assert_eq!(leases(&server, "database/creds/app").await, 1);
}

#[tokio::test]
async fn with_vault_down_under_fallback_no_reference_is_passed_on_as_written() {
    let server = DevServer::start().await;
    let home = temp_dir("fallback");
    let file = home.join(".env");
    std::fs::write(&file, "LITERAL=as-written\nREF=vault://app#K\n").unwrap();
    let log = home.join("child.log");
    // A port nothing listens on.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let mut supervisor = exec(
        &server,
        &home,
        &log,
        &["--env-file", file.to_str().unwrap(), "--mode", "fallback"],
    )
    .env("VAULT_ADDR", &down)
    .env("INHERITED", "vault://app#K")
    .spawn()
    .unwrap();
    let starts = wait_lines(&log, "start", 1).await;
    let vars = child_env(&log, &starts[0]);
    assert_eq!(get(&vars, "LITERAL"), Some("as-written"));
    assert_eq!(get(&vars, "REF"), None, "{vars:?}");
    assert_eq!(get(&vars, "INHERITED"), None, "{vars:?}");
    nix_kill(&supervisor, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(0));
}

#[tokio::test]
async fn leased_references_are_replaced_before_expiry_with_a_restart() {
    let server = DevServer::start().await;
    let pg = Postgres::start().await;
    // Credentials that cannot outlive 6 s: replaced before then.
    pg.configure_vault(&server, "app", "3s", "6s")
        .await
        .unwrap();
    let home = temp_dir("replaced");
    let file = home.join(".env");
    std::fs::write(
        &file,
        "DB_USER=vault://database/creds/app#username\nDB_PASS=vault://database/creds/app#password\n",
    )
    .unwrap();
    let log = home.join("child.log");
    let mut supervisor = exec(
        &server,
        &home,
        &log,
        &["--env-file", file.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let starts = wait_lines(&log, "start", 2).await;
    let first = child_env(&log, &starts[0]);
    let second = child_env(&log, &starts[1]);
    for name in ["DB_USER", "DB_PASS"] {
        let (a, b) = (get(&first, name).unwrap(), get(&second, name).unwrap());
        assert!(!a.is_empty() && !a.starts_with("vault://"), "{name}");
        assert_ne!(a, b, "{name}: new credentials after the replacement");
    }
    // Both variables of one start from one lease: never more than the
    // current one and the one being replaced.
    assert!(leases(&server, "database/creds/app").await <= 2);
    nix_kill(&supervisor, "TERM");
    assert_eq!(exit_of(&mut supervisor).await, Some(0));
}
