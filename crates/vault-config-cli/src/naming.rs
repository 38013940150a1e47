//! Secrets to environment variables: names (prefix, sanitized the way
//! envconsul does, or refused under `--strict`), values as text, conflicts
//! between paths, and the names that make programs run code ([`REFUSED`]).

use std::fmt;

use serde_json::Value;
use zeroize::Zeroize;

use crate::cli::NamingArgs;
use crate::exit::{Failure, Kind, Result};
use crate::target::Target;

/// One variable for the child or the shell. Its value is zeroed on drop and
/// never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub value: String,
    /// `PATH#KEY`, for messages.
    pub from: String,
}

impl Drop for Var {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Var")
            .field("name", &self.name)
            .field("value", &"[REDACTED]")
            .field("from", &self.from)
            .finish()
    }
}

/// A group of variable names that make a program run code: set by whoever
/// can write a KV path, each would run their command, or load their code,
/// in an operator's shell (`eval "$(vault-config env ...)"`) or in the child
/// of `exec`. `env` and `exec` refuse them (exit 15, the key named, nothing
/// printed, no child started) unless `--allow-name NAME`. Names are matched
/// as they are exported (after `--prefix` and sanitizing), case and all.
#[derive(Debug)]
pub struct Refused {
    /// What setting one does, for the message.
    pub why: &'static str,
    /// Exact names.
    pub names: &'static [&'static str],
    /// Every name starting with one of these.
    pub prefixes: &'static [&'static str],
}

/// The dynamic loader and the C library: `LD_PRELOAD`, `LD_AUDIT` and
/// `LD_LIBRARY_PATH` load shared objects into every program started
/// (glibc, musl), `DYLD_INSERT_LIBRARIES` and the rest on macOS; every
/// `LD_`/`DYLD_` name is refused, not only today's, so a LaunchDarkly
/// `LD_SDK_KEY` needs `--allow-name LD_SDK_KEY`. `GCONV_PATH` makes iconv
/// load its modules (shared objects) from elsewhere; `GLIBC_TUNABLES`
/// changes the allocator and CPU dispatch (CVE-2023-4911); `LOCPATH` and
/// `NLSPATH` point at locale files and message catalogs, which hold printf
/// formats. glibc drops or filters all of these for set-user-ID programs,
/// for the same reason. (`MALLOC_*` tuning and debugging, `TZDIR` and
/// resolver settings load no code and are not refused.)
pub const LOADER: Refused = Refused {
    why: "the dynamic loader and the C library load code, or files they trust, from where it says",
    names: &["GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH"],
    prefixes: &["LD_", "DYLD_"],
};

/// Shells. Start-up files: `BASH_ENV` (every non-interactive bash runs it,
/// so every `bash script`), `ENV` (interactive sh, dash, ksh, bash as sh),
/// `ZDOTDIR` (where zsh reads .zshenv, always). Exported functions: bash's
/// `BASH_FUNC_*`. Prompts, expanded with command substitution before each
/// command: `PROMPT_COMMAND`, `PS0`-`PS4` (`PS4` under `set -x`, in scripts
/// too), zsh's `PROMPT`, `PROMPT2`-`PROMPT4`, `RPROMPT`, `RPROMPT2`, `RPS1`,
/// `RPS2` (with prompt_subst, which frameworks turn on). Options:
/// `SHELLOPTS`, `BASHOPTS` (xtrace with `PS4` is code). And what changes
/// which commands a script runs: `IFS` (word splitting), `CDPATH` (where
/// `cd dir` lands), `GLOBIGNORE` (what `*` matches).
pub const SHELLS: Refused = Refused {
    why: "shells run it, or the files it names, as commands, or it changes which commands a script runs",
    names: &[
        "BASH_ENV", "ENV", "ZDOTDIR", "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4",
        "PROMPT", "PROMPT2", "PROMPT3", "PROMPT4", "RPROMPT", "RPROMPT2", "RPS1", "RPS2",
        "SHELLOPTS", "BASHOPTS", "IFS", "CDPATH", "GLOBIGNORE",
    ],
    prefixes: &["BASH_FUNC_"],
};

/// Where programs and start-up files are looked for. `PATH` decides which
/// file `ls` or `psql` runs. `HOME` decides where shells, git, ssh, pip, npm
/// and the rest read their start-up and configuration files (`~/.bashrc`,
/// `~/.gitconfig` with its `core.pager` and `core.sshCommand`, `~/.npmrc`):
/// pointed at a directory someone else can write, their files become code.
/// No secret is a home directory; `--allow-name HOME` if one is.
pub const SEARCH_PATHS: Refused = Refused {
    why: "programs, and the start-up files of shells and tools, are looked up where it says",
    names: &["PATH", "HOME"],
    prefixes: &[],
};

/// Interpreters' options and module paths. Node.js: `NODE_OPTIONS`
/// (`--require`), `NODE_PATH`. Python: `PYTHONSTARTUP`, `PYTHONPATH`,
/// `PYTHONHOME`, `PYTHONUSERBASE` (its .pth files run), `PYTHONWARNINGS`
/// (imports the module a filter names), `PYTHONBREAKPOINT` (calls any
/// function). Perl: `PERL5OPT` (`-M` runs code), `PERL5LIB`, `PERLLIB`,
/// `PERL5DB`. Ruby: `RUBYOPT` (`-r`), `RUBYLIB`. Java: `JAVA_TOOL_OPTIONS`,
/// `_JAVA_OPTIONS`, `JDK_JAVA_OPTIONS` (`-javaagent`,
/// `-XX:OnOutOfMemoryError=cmd`), `CLASSPATH`. PHP: `PHPRC`,
/// `PHP_INI_SCAN_DIR` (`auto_prepend_file`). .NET: `DOTNET_STARTUP_HOOKS`,
/// `CORECLR_PROFILER_PATH`. (`PYTHONINSPECT` reads code from the program's
/// own standard input, not the writer's, and is not refused.)
pub const INTERPRETERS: Refused = Refused {
    why: "an interpreter (Node.js, Python, Perl, Ruby, Java, PHP, .NET) runs code, or loads modules, from where it says",
    names: &[
        "NODE_OPTIONS", "NODE_PATH",
        "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONWARNINGS", "PYTHONBREAKPOINT",
        "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB",
        "RUBYOPT", "RUBYLIB",
        "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH",
        "PHPRC", "PHP_INI_SCAN_DIR",
        "DOTNET_STARTUP_HOOKS", "CORECLR_PROFILER_PATH",
    ],
    prefixes: &[],
};

/// Commands that everyday tools run through a shell when an operator uses
/// them after `eval`: git (`GIT_SSH_COMMAND`, `GIT_SSH`, `GIT_ASKPASS`,
/// `GIT_EDITOR`, `GIT_PAGER`, `GIT_EXTERNAL_DIFF`, `GIT_PROXY_COMMAND`,
/// `GIT_EXEC_PATH`, and `GIT_CONFIG*`, which sets any configuration, hooks
/// and `core.fsmonitor` included), ssh and sudo (`SSH_ASKPASS`,
/// `SUDO_ASKPASS`), pagers (`PAGER`, `MANPAGER`, `LESSOPEN`, `LESSCLOSE`),
/// editors (`EDITOR`, `VISUAL`) and `BROWSER`.
pub const TOOLS: Refused = Refused {
    why: "everyday tools (git, ssh, sudo, less, man, editors) run it as a command",
    names: &[
        "GIT_SSH_COMMAND",
        "GIT_SSH",
        "GIT_ASKPASS",
        "GIT_EDITOR",
        "GIT_PAGER",
        "GIT_EXTERNAL_DIFF",
        "GIT_PROXY_COMMAND",
        "GIT_EXEC_PATH",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "PAGER",
        "MANPAGER",
        "LESSOPEN",
        "LESSCLOSE",
        "EDITOR",
        "VISUAL",
        "BROWSER",
    ],
    prefixes: &["GIT_CONFIG"],
};

/// Every name `env` and `exec` refuse without `--allow-name`, in one place.
/// Proxies, CA bundles, `TMPDIR`, `SHELL` (a program's path, not a command
/// line) and locale settings redirect traffic or files but run no code of
/// the writer's, and are passed on.
pub const REFUSED: &[&Refused] = &[&LOADER, &SHELLS, &SEARCH_PATHS, &INTERPRETERS, &TOOLS];

/// The group that refuses `name`, if one does.
pub fn refused(name: &str) -> Option<&'static Refused> {
    REFUSED.iter().copied().find(|group| {
        group.names.contains(&name) || group.prefixes.iter().any(|p| name.starts_with(p))
    })
}

/// Refuses `vars` if any is named like one of [`REFUSED`] and `allowed`
/// (`--allow-name`) does not list it: an error naming each such variable
/// and its key, never a value. `env` and `exec` (at start and on every
/// change) get it through [`variables`].
pub fn refuse_dangerous(vars: &[Var], allowed: &[String]) -> Result<()> {
    let found: Vec<String> = vars
        .iter()
        .filter(|v| !allowed.contains(&v.name))
        .filter_map(|v| {
            refused(&v.name).map(|g| format!("`{}` (from {}: {})", v.name, v.from, g.why))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Invalid,
        format!(
            "refusing names that make programs run code: {}; pass --allow-name NAME for each one meant, or --prefix to keep the secrets apart",
            found.join(", ")
        ),
    ))
}

/// Whether `name` can be a shell variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name` with every character other than A-Z, a-z, 0-9 and `_` replaced by
/// `_`, and a leading digit prefixed with `_`.
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A secret's value as the text a variable holds: strings as they are,
/// anything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The variables of `targets`, given what each returned (a map of keys for a
/// whole secret, a value for `PATH#KEY`), in command-line order; refused if
/// a final name is one of [`REFUSED`] that `--allow-name` does not list.
pub fn variables(targets: &[Target], values: &[Value], naming: &NamingArgs) -> Result<Vec<Var>> {
    let mut vars: Vec<Var> = Vec::new();
    for (target, value) in targets.iter().zip(values) {
        let pairs: Vec<(&str, &Value)> = match (&target.key, value) {
            (Some(key), value) => vec![(key.as_str(), value)],
            (None, Value::Object(map)) => map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            (None, _) => {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("`{target}` is not a secret of keys and values"),
                ))
            }
        };
        for (key, value) in pairs {
            let from = format!("{}#{key}", target.path);
            let wanted = format!("{}{key}", naming.prefix);
            let name = if is_name(&wanted) {
                wanted
            } else if naming.strict {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("`{wanted}` (from {from}) is not a variable name (A-Z, a-z, 0-9, _; not starting with a digit); drop --strict to have it sanitized to `{}`", sanitize(&wanted)),
                ));
            } else {
                sanitize(&wanted)
            };
            let value = text(value);
            if value.contains('\0') {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!(
                        "the value of {from} holds a NUL byte, which no environment variable can"
                    ),
                ));
            }
            let var = Var { name, value, from };
            match vars.iter_mut().find(|v| v.name == var.name) {
                Some(existing) if naming.last_wins => *existing = var,
                Some(existing) => {
                    return Err(Failure::new(
                        Kind::Invalid,
                        format!(
                            "`{}` is defined by both {} and {}; pass --last-wins to let the later one win, or --prefix to keep them apart",
                            var.name, existing.from, var.from
                        ),
                    ))
                }
                None => vars.push(var),
            }
        }
    }
    refuse_dangerous(&vars, &naming.allow_names)?;
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn naming(strict: bool, last_wins: bool) -> NamingArgs {
        NamingArgs {
            prefix: String::new(),
            strict,
            last_wins,
            allow_names: Vec::new(),
        }
    }

    #[test]
    fn names_are_sanitized_or_refused() {
        assert_eq!(sanitize("db-url.v2"), "db_url_v2");
        assert_eq!(sanitize("2fa"), "_2fa");
        assert!(is_name("_A1") && !is_name("1A") && !is_name("a-b") && !is_name(""));
        let targets = vec![Target::parse("app").unwrap()];
        let values = vec![json!({"api-key": "k", "port": 5432, "on": true})];
        let vars = variables(&targets, &values, &naming(false, false)).unwrap();
        let got: Vec<(&str, &str)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("api_key", "k"), ("on", "true"), ("port", "5432")]);
        let err = variables(&targets, &values, &naming(true, false)).unwrap_err();
        assert_eq!(err.kind, Kind::Invalid);
        assert!(err.message.contains("app#api-key"), "{}", err.message);
        assert!(!err.message.contains("\"k\""));
    }

    #[test]
    fn names_that_run_code_are_refused_unless_allowed() {
        for name in [
            "LD_PRELOAD",
            "LD_SDK_KEY",
            "DYLD_INSERT_LIBRARIES",
            "BASH_ENV",
            "ENV",
            "PS4",
            "PROMPT_COMMAND",
            "BASH_FUNC_ls__",
            "PATH",
            "HOME",
            "IFS",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PERL5OPT",
            "JAVA_TOOL_OPTIONS",
            "GIT_SSH_COMMAND",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0",
            "EDITOR",
            "GCONV_PATH",
        ] {
            assert!(refused(name).is_some(), "{name}");
        }
        for name in [
            "path",
            "ld_preload",
            "DATABASE_URL",
            "PS5",
            "PATHS",
            "MY_PATH",
            "ENVIRONMENT",
            "SHELL",
            "TMPDIR",
            "HTTPS_PROXY",
        ] {
            assert!(refused(name).is_none(), "{name}");
        }
        // Final names: sanitized (`BASH-ENV`) or prefixed (`--prefix LD_`).
        let targets = vec![Target::parse("app").unwrap()];
        let values = vec![json!({"BASH-ENV": "sekrit-1", "PATH": "/tmp", "OK": "v"})];
        let err = variables(&targets, &values, &naming(false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::Invalid);
        assert!(
            err.message.contains("`BASH_ENV` (from app#BASH-ENV")
                && err.message.contains("`PATH` (from app#PATH"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sekrit") && !err.message.contains("/tmp"));
        let mut allowing = naming(false, false);
        allowing.allow_names = vec!["BASH_ENV".into()];
        let err = variables(&targets, &values, &allowing).unwrap_err();
        assert!(!err.message.contains("BASH_ENV") && err.message.contains("PATH"));
        allowing.allow_names.push("PATH".into());
        assert_eq!(variables(&targets, &values, &allowing).unwrap().len(), 3);
        let mut prefixed = naming(false, false);
        prefixed.prefix = "LD_".into();
        let values = vec![json!({"OK": "v"})];
        let err = variables(&targets, &values, &prefixed).unwrap_err();
        assert!(err.message.contains("`LD_OK`"), "{}", err.message);
    }

    #[test]
    fn the_readme_lists_every_refused_name() {
        let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(readme).unwrap();
        for group in REFUSED {
            for name in group.names {
                assert!(readme.contains(&format!("`{name}`")), "{name}");
            }
            for prefix in group.prefixes {
                assert!(readme.contains(&format!("`{prefix}*`")), "{prefix}*");
            }
        }
    }

    #[test]
    fn a_name_from_two_paths_is_a_conflict_unless_the_last_wins() {
        let targets = vec![Target::parse("a").unwrap(), Target::parse("b#URL").unwrap()];
        let values = vec![json!({"URL": "sekrit-1"}), json!("sekrit-2")];
        let err = variables(&targets, &values, &naming(false, false)).unwrap_err();
        assert!(
            err.message.contains("a#URL") && err.message.contains("b#URL"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sekrit"));
        let vars = variables(&targets, &values, &naming(false, true)).unwrap();
        assert_eq!((vars.len(), vars[0].value.as_str()), (1, "sekrit-2"));
        assert!(!format!("{vars:?}").contains("sekrit"));
    }
}
