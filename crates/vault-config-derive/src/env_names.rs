//! Default env fallback names, and the names they may not be.
//!
//! This file exists twice, byte for byte: `vault-config-derive/src/env_names.rs`
//! (the compile-time check of `#[derive(VaultConfig)]`) and
//! `vault-config/src/base/env_names.rs` (the run-time check of a `Mapping`). The
//! derive cannot depend on the runtime, so `tests/compiletest.rs` checks that
//! the two copies are equal: edit one, copy it onto the other.

/// The env variables a default fallback name may not be: the ones shells,
/// logins, container runtimes and hosting platforms set in a service's own
/// environment. A field or mapping whose default name (the Vault key in upper
/// case, after any `env_prefix`) is one of them would, when Vault lacks the
/// key, silently read that value: `database#user` the login name, `port` the
/// HTTP port a platform assigns. An `env` named explicitly is never refused.
///
/// - login: `USER`, `LOGNAME` (the login name on every Unix), `HOME`, `SHELL`,
///   `PATH`, `MAIL`;
/// - shell: `PWD`, `OLDPWD`, `SHLVL`, `IFS`, `PS1`, `UID`, `EUID`, `PPID`,
///   `HOSTTYPE`, `OSTYPE`, `MACHTYPE`;
/// - terminal and user preferences: `TERM`, `DISPLAY`, `EDITOR`, `VISUAL`,
///   `PAGER`, `COLUMNS`, `LINES`;
/// - locale and time: `LANG`, `LANGUAGE`, `LC_ALL`, `LC_COLLATE`, `LC_CTYPE`,
///   `LC_MESSAGES`, `LC_MONETARY`, `LC_NUMERIC`, `LC_TIME`, `TZ`;
/// - temporary files: `TMPDIR`, `TMP`, `TEMP`;
/// - host and container: `HOST` (zsh; the bind address on some platforms),
///   `HOSTNAME` (bash, Docker, Kubernetes: the machine's or pod's name);
/// - platforms: `PORT` (Heroku, Cloud Run, Render, Railway, App Engine: the
///   HTTP port to listen on).
pub const RESERVED_ENV_NAMES: &[&str] = &[
    "USER",
    "LOGNAME",
    "HOME",
    "SHELL",
    "PATH",
    "MAIL",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "IFS",
    "PS1",
    "UID",
    "EUID",
    "PPID",
    "HOSTTYPE",
    "OSTYPE",
    "MACHTYPE",
    "TERM",
    "DISPLAY",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "COLUMNS",
    "LINES",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_COLLATE",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_MONETARY",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "TMPDIR",
    "TMP",
    "TEMP",
    "HOST",
    "HOSTNAME",
    "PORT",
];

/// What sets `name`, when it is in [`RESERVED_ENV_NAMES`]: a phrase that
/// follows "which is" (`the login name on every Unix`).
pub fn reserved(name: &str) -> Option<&'static str> {
    if !RESERVED_ENV_NAMES.contains(&name) {
        return None;
    }
    Some(match name {
        "USER" | "LOGNAME" => "the login name on every Unix",
        "HOME" | "SHELL" | "PATH" | "MAIL" => "set at login for every process",
        "PORT" => "the HTTP port to listen on, set by Heroku, Cloud Run, Render and most platforms",
        "HOSTNAME" => "the machine's or container's name, set by shells, Docker and Kubernetes",
        "HOST" => "the machine's name in zsh, and the address to bind on some platforms",
        "TZ" => "the time zone, set by the system and many container images",
        "TMPDIR" | "TMP" | "TEMP" => "the temporary directory, set by the system",
        "TERM" | "DISPLAY" | "EDITOR" | "VISUAL" | "PAGER" | "COLUMNS" | "LINES" => {
            "a terminal or user setting, set at login"
        }
        _ if name.starts_with("LANG") || name.starts_with("LC_") => {
            "a locale setting, set by the system and container images"
        }
        _ => "set by the shell",
    })
}

/// The env fallback name of Vault key `key` by default: `prefix` + the key in
/// upper case, every character that is not an ASCII letter or digit turned
/// into `_` (`db-port` is `DB_PORT`).
pub fn default_env_name(prefix: Option<&str>, key: &str) -> String {
    format!("{}{}", prefix.unwrap_or(""), upper_snake(key))
}

/// A name to suggest instead of the reserved `name` for a key of the secret
/// at `path`: the path's last segment, then `name` (`DATABASE_PORT`).
pub fn suggested_env_name(path: &str, name: &str) -> String {
    let last = path.trim_matches('/').rsplit('/').next().unwrap_or("");
    match upper_snake(last).trim_matches('_') {
        "" => format!("APP_{name}"),
        segment => format!("{segment}_{name}"),
    }
}

fn upper_snake(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}
