//! `vault://PATH#KEY` references, and the dotenv files `--env-file` names,
//! for `env` and `exec`.
//!
//! A file is read as `import` reads it: [`crate::dotfile`] (dotenvy), with
//! the same refusals (a key assigned twice, a value dotenvy and
//! python-dotenv read differently). Each of its variables is a literal,
//! passed on as it is, or a reference, read from Vault; so is each variable
//! of the inherited environment whose value is a reference (`exec`). PATH
//! is relative to the KV mount (`--mount`, VAULT_KV_MOUNT), never a mount
//! of its own; a path on a mount of another secrets engine is leased
//! credentials, as everywhere in the command line ([`crate::read::resolve`]).
//!
//! Which value a name gets ([`layer`]): a Vault path of the command line
//! (`--secret`, `env PATH`) over the files, a later file over an earlier
//! one, a file over the inherited environment.
//!
//! Uses `dotfile`, `files`, `naming`, `target`, `read` and `exit`; knows
//! nothing of `exec`'s watcher, which reads references as it reads
//! `--secret` targets (one mapping each).

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;
use vault_config::VaultClient;
use zeroize::Zeroizing;

use crate::cli::NamingArgs;
use crate::exit::{Failure, Kind, Result};
use crate::naming::{is_name, refuse_dangerous, sanitize, text, Var};
use crate::target::Target;
use crate::{dotfile, files, read};

/// What a reference to a key in Vault starts with.
pub const SCHEME: &str = vault_config::Reference::SCHEME;

/// Where a variable was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of an `--env-file` file.
    File { file: String, line: usize },
    /// The environment vault-config was started in.
    Environment,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file} line {line}"),
            Origin::Environment => f.write_str("the environment"),
        }
    }
}

/// A variable's value: as written, or where in Vault it is.
#[derive(Clone)]
pub enum Source {
    Literal(Zeroizing<String>),
    /// `vault://PATH#KEY`: always one key.
    Reference(Target),
}

/// One variable of a file, or of the inherited environment.
#[derive(Clone)]
pub struct Item {
    pub name: String,
    pub origin: Origin,
    pub source: Source,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Literal(_) => f.write_str("Literal(<redacted>)"),
            Source::Reference(t) => write!(f, "Reference({SCHEME}{t})"),
        }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("source", &self.source)
            .finish()
    }
}

impl Item {
    /// `NAME (FILE line N)`, and ` = vault://PATH#KEY` for a reference:
    /// where it was written, for messages (never a value).
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Literal(_) => format!("{} ({})", self.name, self.origin),
            Source::Reference(t) => format!("{} ({}) = {SCHEME}{t}", self.name, self.origin),
        }
    }
}

/// The variables of the `--env-file` files (and, for `exec`, the
/// references of the inherited environment), one per name.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub items: Vec<Item>,
}

/// The target `value` refers to, if it is a reference; an error (the
/// reference's form, never a value) if it is a malformed one. The syntax is
/// the library's, parsed by [`vault_config::Reference::parse`].
pub fn parse(value: &str) -> Option<Result<Target, String>> {
    Some(vault_config::Reference::parse(value)?.map(|r| Target {
        path: r.path().to_owned(),
        key: Some(r.key().to_owned()),
        leased: false,
    }))
}

impl Sources {
    /// Reads `files` in order (a later file's name replaces an earlier
    /// one's) and, with `inherited`, the references among the variables
    /// vault-config was started with whose names no file defines. A file
    /// that cannot be read or that `import` would refuse, a malformed
    /// reference, or a reference under a name that runs code (without
    /// `--allow-name`) is an error naming the file, line and variable.
    pub fn load(files: &[PathBuf], inherited: bool, naming: &NamingArgs) -> Result<Sources> {
        let sources = Sources::read(files, inherited, naming.strict)?;
        // A reference's value is whoever can write its path's: the names
        // that run code need --allow-name, as for a --secret key.
        let named: Vec<Var> = sources
            .references()
            .map(|(item, _)| Var {
                name: item.name.clone(),
                value: String::new(),
                from: item.describe(),
            })
            .collect();
        refuse_dangerous(&named, &naming.allow_names)?;
        Ok(sources)
    }

    /// [`Sources::load`], without refusing names that run code (`policy`,
    /// which passes no value on); `strict` refuses a name that is not a
    /// variable name instead of sanitizing it.
    pub fn read(files: &[PathBuf], inherited: bool, strict: bool) -> Result<Sources> {
        let mut sources = Sources::default();
        for file in files {
            for item in read_file(file, strict)? {
                sources.items.retain(|i| i.name != item.name);
                sources.items.push(item);
            }
        }
        if inherited {
            for (name, value) in std::env::vars_os() {
                let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                    continue;
                };
                if sources.items.iter().any(|i| i.name == name) {
                    continue;
                }
                let Some(target) = parse(value) else { continue };
                let target = target.map_err(|why| {
                    Failure::new(
                        Kind::Invalid,
                        format!("{name} (the environment): {why}; not passed on as it is"),
                    )
                })?;
                sources.items.push(Item {
                    name: name.to_owned(),
                    origin: Origin::Environment,
                    source: Source::Reference(target),
                });
            }
        }
        Ok(sources)
    }

    /// The references, in order.
    pub fn references(&self) -> impl Iterator<Item = (&Item, &Target)> {
        self.items.iter().filter_map(|i| match &i.source {
            Source::Reference(t) => Some((i, t)),
            Source::Literal(_) => None,
        })
    }

    /// The targets of the references, in order.
    pub fn targets(&self) -> Vec<Target> {
        self.references().map(|(_, t)| t.clone()).collect()
    }

    /// The variables, each reference given the value at its place in
    /// `values` (one per reference, in order).
    pub fn vars(&self, values: &[Value]) -> Result<Vec<Var>> {
        let mut values = values.iter();
        let mut vars = Vec::with_capacity(self.items.len());
        for item in &self.items {
            let value = match &item.source {
                Source::Literal(value) => value.to_string(),
                Source::Reference(_) => match values.next() {
                    Some(value) => text(value),
                    None => {
                        return Err(Failure::new(
                            Kind::Other,
                            format!("{} was not read", item.describe()),
                        ))
                    }
                },
            };
            if value.contains('\0') {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!(
                        "the value of {} holds a NUL byte, which no environment variable can",
                        item.describe()
                    ),
                ));
            }
            vars.push(Var {
                name: item.name.clone(),
                value,
                from: item.describe(),
            });
        }
        Ok(vars)
    }

    /// The variables written as literals, for a child started before Vault
    /// answered (`--mode fallback`): references are left out, never passed
    /// on as they are written.
    pub fn literals(&self) -> Vec<Var> {
        self.items
            .iter()
            .filter_map(|item| match &item.source {
                Source::Literal(value) => Some(Var {
                    name: item.name.clone(),
                    value: value.to_string(),
                    from: item.describe(),
                }),
                Source::Reference(_) => None,
            })
            .collect()
    }
}

/// `under` with `over` on top: a name both define gets `over`'s value.
pub fn layer(under: Vec<Var>, over: Vec<Var>) -> Vec<Var> {
    let mut vars: Vec<Var> = under
        .into_iter()
        .filter(|u| {
            let shadowed = over.iter().find(|o| o.name == u.name);
            if let Some(o) = shadowed {
                tracing::debug!(target: crate::exit::LOG, name = %u.name, from = %o.from, instead_of = %u.from, "vault-config: a Vault path of the command line wins over the file");
            }
            shadowed.is_none()
        })
        .collect();
    vars.extend(over);
    vars
}

/// Reads the references of `sources` and the `targets` of the command line
/// at once (each path once: a leased path's username and password come
/// from one lease); returns the targets' values and the references'
/// variables. A reference that cannot be resolved is an error naming it
/// and where it was written.
pub async fn read_with(
    client: &VaultClient,
    targets: &[Target],
    sources: &Sources,
) -> Result<(Vec<Value>, Vec<Var>)> {
    let mut all = targets.to_vec();
    all.extend(sources.targets());
    let reads = read::read_each(client, &all).await?;
    let mut values = reads.values.into_iter();
    let mut own = Vec::with_capacity(targets.len());
    for _ in targets {
        match values.next() {
            Some(Ok(value)) => own.push(value),
            Some(Err(failure)) => return Err(reads.first_failure.unwrap_or(failure)),
            None => return Err(Failure::new(Kind::Other, "a path was not read")),
        }
    }
    let mut resolved = Vec::new();
    for ((item, _), value) in sources.references().zip(values) {
        match value {
            Ok(value) => resolved.push(value),
            Err(failure) => {
                return Err(Failure::new(
                    failure.kind,
                    format!(
                        "{}: cannot be resolved: {}",
                        item.describe(),
                        failure.message
                    ),
                ))
            }
        }
    }
    let vars = sources.vars(&resolved)?;
    read::hand_out(reads.leased);
    Ok((own, vars))
}

/// The variables of one file.
fn read_file(file: &std::path::Path, strict: bool) -> Result<Vec<Item>> {
    let shown = file.display().to_string();
    let text = files::read_text(file)?;
    let entries =
        dotfile::parse(&text).map_err(|e| Failure::new(Kind::Invalid, format!("{shown}: {e}")))?;
    let all: Vec<&dotfile::Entry> = entries.iter().collect();
    dotfile::refuse_ambiguous(&all)
        .map_err(|why| Failure::new(Kind::Invalid, format!("{shown}: {why}")))?;
    let mut items = Vec::with_capacity(entries.len());
    for e in &entries {
        let origin = Origin::File {
            file: shown.clone(),
            line: e.line,
        };
        let name = if is_name(&e.key) {
            e.key.clone()
        } else if strict {
            return Err(Failure::new(
                Kind::Invalid,
                format!(
                    "{shown}: line {} (key {}): not a variable name (A-Z, a-z, 0-9, _; not starting with a digit); drop --strict to have it sanitized to `{}`",
                    e.line,
                    e.key,
                    sanitize(&e.key)
                ),
            ));
        } else {
            sanitize(&e.key)
        };
        let source = match parse(&e.value) {
            None => Source::Literal(e.value.clone()),
            Some(Ok(target)) => Source::Reference(target),
            Some(Err(why)) => {
                return Err(Failure::new(
                    Kind::Invalid,
                    format!("{shown}: line {} (key {}): {why}", e.line, e.key),
                ))
            }
        };
        items.push(Item {
            name,
            origin,
            source,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn naming() -> NamingArgs {
        NamingArgs {
            prefix: String::new(),
            strict: false,
            last_wins: false,
            allow_names: Vec::new(),
        }
    }

    fn file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vault-config-refs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn references_name_one_key_of_a_path() {
        let t = parse("vault://database#DATABASE_URL").unwrap().unwrap();
        assert_eq!(
            (t.path.as_str(), t.key.as_deref()),
            ("database", Some("DATABASE_URL"))
        );
        let t = parse("vault://database/creds/app#username")
            .unwrap()
            .unwrap();
        assert_eq!(t.path, "database/creds/app");
        assert!(parse("postgres://db").is_none());
        for bad in ["vault://database", "vault://#K", "vault://db#", "vault://"] {
            assert!(parse(bad).unwrap().is_err(), "{bad}");
        }
        let why = parse("vault://user:sekrit@host").unwrap().unwrap_err();
        assert!(!why.contains("sekrit"), "{why}");
    }

    #[test]
    fn files_layer_and_errors_name_file_line_and_reference() {
        let a = file(
            "a.env",
            "A=literal-a\nexport REF=vault://app#KEY\nSHARED=from-a\n",
        );
        let b = file("b.env", "# later\nSHARED=vault://other#S\n");
        let sources = Sources::load(&[a.clone(), b.clone()], false, &naming()).unwrap();
        let names: Vec<&str> = sources.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["A", "REF", "SHARED"]);
        let described: Vec<String> = sources.references().map(|(i, _)| i.describe()).collect();
        assert_eq!(
            described,
            [
                format!("REF ({} line 2) = vault://app#KEY", a.display()),
                format!("SHARED ({} line 2) = vault://other#S", b.display()),
            ]
        );
        assert!(!format!("{sources:?}").contains("literal-a"));
        let vars = sources.vars(&[json!("k"), json!(5)]).unwrap();
        let got: Vec<(&str, &str)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("A", "literal-a"), ("REF", "k"), ("SHARED", "5")]);
        assert_eq!(sources.literals().len(), 1);

        // Over the file: a Vault path of the command line.
        let over = vec![Var {
            name: "A".into(),
            value: "from-vault".into(),
            from: "app#A".into(),
        }];
        let layered = layer(vars, over);
        assert_eq!(layered.len(), 3);
        assert_eq!(
            layered.iter().find(|v| v.name == "A").unwrap().value,
            "from-vault"
        );

        let bad = file("bad.env", "OK=1\nB=vault://app\n");
        let err = Sources::load(&[bad], false, &naming()).unwrap_err();
        assert_eq!(err.kind, Kind::Invalid);
        assert!(err.message.contains("line 2 (key B)"), "{}", err.message);
        let twice = file("twice.env", "K=1\nK=2\n");
        let err = Sources::load(&[twice], false, &naming()).unwrap_err();
        assert!(err.message.contains("assigned twice"), "{}", err.message);
        let dollar = file("dollar.env", "K=\"a$b\"\n");
        assert_eq!(
            Sources::load(&[dollar], false, &naming()).unwrap_err().kind,
            Kind::Invalid
        );
        let code = file("code.env", "LD_PRELOAD=vault://app#LIB\nPATH=/bin\n");
        let err = Sources::load(std::slice::from_ref(&code), false, &naming()).unwrap_err();
        assert!(
            err.message.contains("LD_PRELOAD") && !err.message.contains("`PATH`"),
            "{}",
            err.message
        );
        let mut allowing = naming();
        allowing.allow_names = vec!["LD_PRELOAD".into()];
        assert!(Sources::load(&[code], false, &allowing).is_ok());
    }
}
