//! `vault-config import`: the built binary against real OpenBao dev servers
//! (one per test). A `.env` with every form dotenvy and python-dotenv share
//! comes back from Vault byte for byte (KV v2 and v1); a dry run, a
//! re-import, a conflict and `--overwrite` do what they say to the
//! versions; `--rewrite` changes the imported values and no other byte.
//! No value ever reaches the output.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};
use tokio::process::Command;
use vault_test_support::DevServer;

const BIN: &str = env!("CARGO_BIN_EXE_vault-config");

/// The binary with only the server's address and root token of the Vault
/// contract (none of the test runner's own), a throwaway HOME.
fn vault_config(server: &DevServer, home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") || name.starts_with("BAO_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("HOME", home)
        .env("VAULT_ADDR", server.addr())
        .env("VAULT_TOKEN", server.root_token());
    cmd.stdin(Stdio::null()).kill_on_drop(true);
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
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vault-config-import-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything the run printed, for checks that no value is in it.
fn printed(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The data of KV v2 secret `path` on `secret`.
async fn data(server: &DevServer, path: &str) -> BTreeMap<String, Value> {
    server
        .kv_read("secret", path, None)
        .await
        .unwrap()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

async fn version(server: &DevServer, path: &str) -> u64 {
    server
        .kv_metadata("secret", path)
        .await
        .unwrap()
        .and_then(|m| m["current_version"].as_u64())
        .unwrap_or(0)
}

/// An Ed25519 private key (RFC 8410's example): a PEM, line breaks and all.
const PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
-----END PRIVATE KEY-----\n";

/// Every form the two readers share: comments (whole-line and after a
/// value), blank lines, `export `, spaces around `=`, single and double
/// quotes, the escapes both know, multi-line quoted values (a PEM), `#`
/// and `=` in values, empty values, CRLF, unicode, `$` in single quotes.
const TRICKY: &str = concat!(
    "# A tricky .env: every form dotenvy and python-dotenv agree on\n",
    "\n",
    "PLAIN=plain-value_1.2:3/4@5\n",
    "export EXPORTED=from-export\n",
    "SPACED = around-equals\n",
    "   INDENTED=indented\n",
    "TRAILING=value # a comment after a value\n",
    "SINGLE='single # not a comment = \"double\" inside'\n",
    "DOUBLE=\"double 'single' \\\"escaped\\\" \\\\ backslash\"\n",
    "ESCAPES=\"line1\\nline2\\\\nnot-a-break \\' quote\"\n",
    "HASH_UNQUOTED=a#b#c\n",
    "HASH_QUOTED=\"# not a comment\"\n",
    "EQUALS=\"=a=b==\"\n",
    "EQUALS_UNQUOTED=a=b=c\n",
    "EMPTY=\n",
    "EMPTY_DOUBLE=\"\"\n",
    "EMPTY_SINGLE=''\n",
    "CRLF=windows\r\n",
    "UNICODE=\"pässwörd ✓ 密码 🔑\"\n",
    "UNICODE_UNQUOTED=ключ-🔑\n",
    "PEM=\"-----BEGIN PRIVATE KEY-----\n",
    "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n",
    "-----END PRIVATE KEY-----\n",
    "\"\n",
    "MULTI_SINGLE='first line\n",
    "second line with \"quotes\" and # hash'\n",
    "DOLLAR_SINGLE='$HOME costs $5 $(id) `id`'\n",
    "JSON='{\"a\": [1, \"b\"], \"c\": null}'\n",
    "# the end\n",
);

fn tricky_values() -> BTreeMap<String, String> {
    [
        ("PLAIN", "plain-value_1.2:3/4@5"),
        ("EXPORTED", "from-export"),
        ("SPACED", "around-equals"),
        ("INDENTED", "indented"),
        ("TRAILING", "value"),
        ("SINGLE", "single # not a comment = \"double\" inside"),
        ("DOUBLE", "double 'single' \"escaped\" \\ backslash"),
        ("ESCAPES", "line1\nline2\\nnot-a-break ' quote"),
        ("HASH_UNQUOTED", "a#b#c"),
        ("HASH_QUOTED", "# not a comment"),
        ("EQUALS", "=a=b=="),
        ("EQUALS_UNQUOTED", "a=b=c"),
        ("EMPTY", ""),
        ("EMPTY_DOUBLE", ""),
        ("EMPTY_SINGLE", ""),
        ("CRLF", "windows"),
        ("UNICODE", "pässwörd ✓ 密码 🔑"),
        ("UNICODE_UNQUOTED", "ключ-🔑"),
        ("PEM", PEM),
        (
            "MULTI_SINGLE",
            "first line\nsecond line with \"quotes\" and # hash",
        ),
        ("DOLLAR_SINGLE", "$HOME costs $5 $(id) `id`"),
        ("JSON", r#"{"a": [1, "b"], "c": null}"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// What python-dotenv reads from `file` (python3's, or .tools/venv's).
fn python_dotenv(file: &Path) -> BTreeMap<String, String> {
    let script = "import dotenv, json, sys; print(json.dumps(dotenv.dotenv_values(sys.argv[1])))";
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for python in [
        workspace.join(".tools/venv/bin/python"),
        PathBuf::from("python3"),
    ] {
        let Ok(out) = std::process::Command::new(&python)
            .args(["-c", script])
            .arg(file)
            .output()
        else {
            continue;
        };
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).unwrap();
        }
    }
    panic!("python-dotenv is missing: run `bash scripts/test.sh`, or `pip install python-dotenv`");
}

#[tokio::test]
async fn a_tricky_env_comes_back_byte_for_byte_from_two_paths() {
    let server = DevServer::start().await;
    let home = temp_dir("tricky");
    let file = home.join(".env");
    std::fs::write(&file, TRICKY).unwrap();
    let want = tricky_values();
    // The file is read the same by both readers.
    assert_eq!(
        python_dotenv(&file),
        want,
        "python-dotenv reads it otherwise"
    );
    let dotenvy: BTreeMap<String, String> = dotenvy::from_path_iter(&file)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(dotenvy, want, "dotenvy reads it otherwise");

    // KV v2, and a path of a KV v1 mount.
    server.enable_kv("kv1", 1, None).await.unwrap();
    let file_arg = file.to_str().unwrap();
    let out = run(
        &server,
        &home,
        &["import", file_arg, "--path", "app/tricky"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        format!(
            "imported {} keys into app/tricky: version 0 -> 1, verified ({} new)",
            want.len(),
            want.len()
        )
    );
    let out_v1 = run(
        &server,
        &home,
        &["import", file_arg, "--path", "tricky", "--mount", "kv1"],
    )
    .await;
    assert_eq!(out_v1.status.code(), Some(0), "{}", text(&out_v1.stderr));
    assert!(
        text(&out_v1.stdout).contains("KV v1, unversioned, verified"),
        "{}",
        text(&out_v1.stdout)
    );
    assert!(
        text(&out_v1.stderr).contains("no check-and-set"),
        "{}",
        text(&out_v1.stderr)
    );

    let v2 = data(&server, "app/tricky").await;
    let v1 = server.api("GET", "kv1/tricky", None, None).await.unwrap();
    let v1: BTreeMap<String, Value> = serde_json::from_value(v1["data"].clone()).unwrap();
    for (name, got) in [("KV v2", v2), ("KV v1", v1)] {
        let got: BTreeMap<String, String> = got
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    // No value reaches the output.
    for out in [&out, &out_v1] {
        let all = printed(out);
        for value in ["from-export", "BEGIN PRIVATE", "密码", "costs"] {
            assert!(!all.contains(value), "`{value}` printed: {all}");
        }
    }
}

#[tokio::test]
async fn dry_run_reimport_conflict_and_overwrite() {
    let server = DevServer::start().await;
    let home = temp_dir("conflict");
    server
        .kv_put(
            "secret",
            "database",
            json!({"KEEP": "kept", "SAME": "same-value", "DIFF": "old-value"}),
        )
        .await
        .unwrap();
    let file = home.join("db.env");
    std::fs::write(
        &file,
        "SAME=same-value\n# a comment\nDIFF=new-value\nNEW=\"fresh value\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();

    // Dry run: per key, nothing written.
    let out = run(
        &server,
        &home,
        &["import", f, "--path", "database", "--dry-run"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let lines: Vec<Vec<&str>> = report
        .lines()
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        lines[..3],
        [
            vec!["same", "SAME"],
            vec!["differs", "DIFF"],
            vec!["new", "NEW"]
        ],
        "{report}"
    );
    assert!(report.contains("1 new, 1 same, 1 differs"), "{report}");
    assert!(
        report.contains("nothing written to secret/database"),
        "{report}"
    );
    assert_eq!(version(&server, "database").await, 1);

    // A conflict: exit 15, the key named, nothing written.
    let out = run(&server, &home, &["import", f, "--path", "database"]).await;
    assert_eq!(out.status.code(), Some(15), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("DIFF (line 3)"), "{err}");
    assert!(err.contains("--overwrite"), "{err}");
    assert!(!err.contains("SAME") && !err.contains("NEW"), "{err}");
    assert_eq!(version(&server, "database").await, 1);

    // --overwrite: one new version, the other key kept.
    let out = run(
        &server,
        &home,
        &["import", f, "--path", "database", "--overwrite"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        "imported 3 keys into database: version 1 -> 2, verified (1 new, 1 replaced, 1 unchanged)"
    );
    let want: BTreeMap<String, Value> = [
        ("KEEP", "kept"),
        ("SAME", "same-value"),
        ("DIFF", "new-value"),
        ("NEW", "fresh value"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::from(v)))
    .collect();
    assert_eq!(data(&server, "database").await, want);

    // Again: Vault holds it all, no new version.
    let out = run(&server, &home, &["import", f, "--path", "database"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim_end(),
        "database holds the 3 keys already at version 2: nothing written"
    );
    assert_eq!(version(&server, "database").await, 2);

    // --keys picks; a key the file lacks is named.
    let out = run(
        &server,
        &home,
        &["import", f, "--path", "picked", "--keys", "NEW, SAME"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        data(&server, "picked").await.keys().collect::<Vec<_>>(),
        ["NEW", "SAME"]
    );
    let out = run(
        &server,
        &home,
        &["import", f, "--path", "picked", "--keys", "NEW,TYPO"],
    )
    .await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no key TYPO"));

    // A value the readers disagree on, and a file dotenvy cannot read:
    // line and key, never the value.
    for (content, said) in [
        ("A=1\nB=\"cost ${PRICE}\"\n", "line 2 (key B)"),
        ("A=1\nB='cost ${PRICE}'\n", "line 2 (key B)"),
        ("A=1\nB= # note\n", "line 2 (key B)"),
        ("A=1\nB=\"unclosed secret-text\nC=3\n", "line 2 (key B)"),
        ("A=1\nB=two words\n", "line 2 (key B)"),
    ] {
        std::fs::write(&file, content).unwrap();
        let out = run(&server, &home, &["import", f, "--path", "other"]).await;
        assert_eq!(
            out.status.code(),
            Some(15),
            "{content}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(err.contains(said), "{content}: {err}");
        for value in ["PRICE", "note", "secret-text", "words"] {
            assert!(!err.contains(value), "{content}: {err}");
        }
    }
    assert_eq!(version(&server, "other").await, 0, "nothing was written");
    let out = run(
        &server,
        &home,
        &["import", "/nonexistent/.env", "--path", "x"],
    )
    .await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
}

#[tokio::test]
async fn rewrite_replaces_the_imported_values_and_keeps_every_other_byte() {
    let server = DevServer::start().await;
    let home = temp_dir("rewrite");
    let file = home.join("app.env");
    let before = concat!(
        "# settings for app\r\n",
        "\n",
        "export API_KEY=\"sk-live-1234\" # rotated monthly\n",
        "LOG_LEVEL=debug\n",
        "  TLS_KEY='-----BEGIN KEY-----\n",
        "abc\n",
        "-----END KEY-----'\n",
        "DB_PASSWORD = hunter2\n",
        "# end\n",
        "PORT=8080",
    );
    std::fs::write(&file, before).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Through a link: the link stays one, its target is rewritten.
    let link = home.join("link.env");
    std::os::unix::fs::symlink(&file, &link).unwrap();

    let out = run(
        &server,
        &home,
        &[
            "import",
            link.to_str().unwrap(),
            "--path",
            "app",
            "--keys",
            "API_KEY,TLS_KEY,DB_PASSWORD",
            "--rewrite",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("rewrote "), "{report}");
    for value in ["sk-live", "BEGIN KEY", "hunter2"] {
        assert!(!printed(&out).contains(value), "{report}");
    }
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        after,
        concat!(
            "# settings for app\r\n",
            "\n",
            "export API_KEY=vault://app#API_KEY # rotated monthly\n",
            "LOG_LEVEL=debug\n",
            "  TLS_KEY=vault://app#TLS_KEY\n",
            "DB_PASSWORD = vault://app#DB_PASSWORD\n",
            "# end\n",
            "PORT=8080",
        )
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    // python-dotenv reads the references, and the values left, as well.
    let reread = python_dotenv(&file);
    assert_eq!(reread["API_KEY"], "vault://app#API_KEY");
    assert_eq!(reread["TLS_KEY"], "vault://app#TLS_KEY");
    assert_eq!(reread["LOG_LEVEL"], "debug");
    assert_eq!(reread["PORT"], "8080");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let names: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("vault-config"))
        .collect();
    assert!(names.is_empty(), "temporary files left: {names:?}");
    assert_eq!(
        data(&server, "app").await["TLS_KEY"],
        "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    );

    // Imported again: the references are skipped, the rest goes in.
    let out = run(
        &server,
        &home,
        &["import", file.to_str().unwrap(), "--path", "app"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("skipping API_KEY (line 3)"),
        "{}",
        text(&out.stderr)
    );
    let stored = data(&server, "app").await;
    assert_eq!(stored["API_KEY"], "sk-live-1234");
    assert_eq!(stored["PORT"], "8080");

    // --dry-run and --rewrite do not go together.
    let out = run(
        &server,
        &home,
        &[
            "import",
            file.to_str().unwrap(),
            "--path",
            "app",
            "--dry-run",
            "--rewrite",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn concurrent_imports_keep_each_others_keys_and_a_deleted_version_is_left_alone() {
    let server = DevServer::start().await;
    let home = temp_dir("concurrent");
    let mut files = Vec::new();
    for i in 0..4 {
        let file = home.join(format!("part{i}.env"));
        std::fs::write(&file, format!("KEY_{i}=value-{i}\nSHARED=same\n")).unwrap();
        files.push(file.to_str().unwrap().to_owned());
    }
    let runs = files
        .iter()
        .map(|f| async { run(&server, &home, &["import", f, "--path", "shared"]).await });
    for out in futures_util::future::join_all(runs).await {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let stored = data(&server, "shared").await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["KEY_0", "KEY_1", "KEY_2", "KEY_3", "SHARED"],
        "a key was lost"
    );
    // One version per import (each adds a key): the check-and-set retries.
    assert_eq!(version(&server, "shared").await, 4);

    // A token that may only read and write the secret's data (no metadata,
    // no other path) is enough.
    let token = server
        .token_with_policy(
            "importer",
            r#"path "secret/data/least" { capabilities = ["create", "read", "update"] }"#,
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let out = vault_config(&server, &home)
            .env("VAULT_TOKEN", &token)
            .args(["import", &files[1], "--path", "least"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    assert_eq!(version(&server, "least").await, 1);

    // Its current version deleted: nothing written, the way back named.
    server.kv_delete("secret", "shared").await.unwrap();
    let out = run(&server, &home, &["import", &files[0], "--path", "shared"]).await;
    assert_eq!(out.status.code(), Some(14), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("nothing imported: version 4 of secret/shared"),
        "{err}"
    );
    assert!(
        err.contains("bao kv undelete -mount=secret -versions=4 shared"),
        "{err}"
    );
    assert_eq!(version(&server, "shared").await, 4);
}
