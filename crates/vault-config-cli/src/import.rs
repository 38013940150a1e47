//! `vault-config import FILE --path PATH`: the keys of a dotenv file
//! (`dotfile`, read by dotenvy) merged into a KV secret check-and-set,
//! read back and verified (`merge`, shared with `rotate`); with
//! `--rewrite`, the file then rewritten with `vault://PATH#KEY` references
//! in place of the values (`files::replace`). Keys, lines and files are
//! named; values never are.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::cli::ImportArgs;
use crate::dotfile::{self, Entry};
use crate::exit::{Failure, Kind, Result};
use crate::{files, merge, read};

use crate::refs::SCHEME;

/// A key of the file against what the secret holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The secret lacks it.
    New,
    /// The secret holds the same value.
    Same,
    /// The secret holds another value (or one that is not a string).
    Differs,
}

impl Status {
    fn of(data: &Map<String, Value>, entry: &Entry) -> Status {
        match data.get(&entry.key) {
            None => Status::New,
            Some(Value::String(s)) if s.as_str() == entry.value.as_str() => Status::Same,
            Some(_) => Status::Differs,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Same => "same",
            Status::Differs => "differs",
        }
    }
}

/// Runs the import; returns the exit code.
pub async fn run(args: ImportArgs) -> Result<u8> {
    let path = args.path.trim_matches('/').to_owned();
    if path.is_empty() || path.contains('#') {
        return Err(Failure::new(
            Kind::Invalid,
            format!(
                "--path takes a KV path without a key: --path database (got `{}`)",
                args.path
            ),
        ));
    }
    let shown = args.file.display().to_string();
    let text = files::read_text(&args.file).map_err(|mut e| {
        e.message.push_str("; nothing imported");
        e
    })?;
    let entries = dotfile::parse(&text)
        .map_err(|e| Failure::new(Kind::Invalid, format!("{shown}: {e}; nothing imported")))?;
    let chosen = choose(&entries, &args.keys, &shown)?;

    let client = read::client(args.mount.mount.as_deref())?;
    let mount = client.kv_mount().to_owned();
    let kv = match client.kv_version(&mount).await {
        Ok(kv) => kv,
        Err(e) => return Err(read::explain(&client, e).await),
    };
    let hint_key = chosen.first().map_or("KEY", |e| e.key.as_str());
    let target = merge::Target {
        client: &client,
        mount: &mount,
        path: &path,
        kv,
        cas_retries: args.cas_retries,
        absent: merge::Absent::Create,
        verb: "import",
        hint_key,
    };

    if args.dry_run {
        let mut statuses = Vec::new();
        merge::change(&target, |data| {
            statuses = chosen.iter().map(|e| Status::of(data, e)).collect();
            Ok(false)
        })
        .await?;
        print_dry_run(&chosen, &statuses, &mount, &path);
        return Ok(0);
    }

    let mut counts = [0usize; 3];
    let changed = merge::change(&target, |data| {
        counts = [0; 3];
        let mut conflicts = Vec::new();
        for e in &chosen {
            let status = Status::of(data, e);
            match status {
                Status::Same => {}
                Status::Differs if !args.overwrite => conflicts.push(*e),
                Status::New | Status::Differs => {
                    data.insert(e.key.clone(), Value::String(e.value.to_string()));
                }
            }
            counts[status as usize] += 1;
        }
        if conflicts.is_empty() {
            Ok(counts[Status::New as usize] + counts[Status::Differs as usize] > 0)
        } else {
            Err(conflict(&conflicts, &mount, &path, &shown))
        }
    })
    .await?;
    let [new, same, replaced] = counts;
    let n = chosen.len();
    let keys = if n == 1 { "key" } else { "keys" };
    if changed.wrote {
        let expected: Vec<(&str, &str)> = chosen
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        merge::verify(&target, &expected, changed.new).await?;
        let mut parts = vec![format!("{new} new")];
        if replaced > 0 {
            parts.push(format!("{replaced} replaced"));
        }
        if same > 0 {
            parts.push(format!("{same} unchanged"));
        }
        println!(
            "imported {n} {keys} into {path}: {}, verified ({})",
            changed.versions(),
            parts.join(", ")
        );
    } else {
        let at = changed
            .new
            .map(|v| format!(" at version {v}"))
            .unwrap_or_default();
        println!("{path} holds the {n} {keys} already{at}: nothing written");
    }

    if args.rewrite {
        let written = rewrite(&args.file, &shown, &text, &entries, &chosen, &path)?;
        println!("rewrote {shown}: {written} {keys} now read vault://{path}#KEY");
    }
    Ok(0)
}

/// The keys to import, in the file's order: `keys`, or every key; each
/// once, none whose value dotenvy and python-dotenv read differently, and
/// none that already is a `vault://` reference (skipped, with a note).
fn choose<'e>(entries: &'e [Entry], keys: &[String], shown: &str) -> Result<Vec<&'e Entry>> {
    let keys: Vec<&str> = keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(missing) = keys.iter().find(|k| !entries.iter().any(|e| e.key == **k)) {
        let mut names: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        names.dedup();
        return Err(Failure::new(
            Kind::NotFound,
            format!(
                "no key {missing} in {shown} (its keys: {}); nothing imported",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    let wanted = |e: &&Entry| keys.is_empty() || keys.contains(&e.key.as_str());
    let chosen: Vec<&Entry> = entries.iter().filter(wanted).collect();
    dotfile::refuse_ambiguous(&chosen)
        .map_err(|why| Failure::new(Kind::Invalid, format!("{shown}: {why}; nothing imported")))?;
    let (references, chosen): (Vec<&Entry>, Vec<&Entry>) = chosen
        .into_iter()
        .partition(|e| e.value.starts_with(SCHEME));
    for e in &references {
        eprintln!(
            "vault-config: skipping {} (line {}): it is a {SCHEME} reference already",
            e.key, e.line
        );
    }
    if chosen.is_empty() {
        return Err(Failure::new(
            Kind::Invalid,
            format!("{shown} has no value to import; nothing imported"),
        ));
    }
    Ok(chosen)
}

/// The conflict that stops an import without `--overwrite`.
fn conflict(conflicts: &[&Entry], mount: &str, path: &str, shown: &str) -> Failure {
    let named: Vec<String> = conflicts
        .iter()
        .map(|e| format!("{} (line {})", e.key, e.line))
        .collect();
    Failure::new(
        Kind::Invalid,
        format!(
            "nothing imported: {mount}/{path} holds other values for {} of {shown}; --overwrite replaces them (--dry-run lists every key)",
            named.join(", ")
        ),
    )
}

fn print_dry_run(chosen: &[&Entry], statuses: &[Status], mount: &str, path: &str) {
    let width = chosen.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let mut counts = [0usize; 3];
    for (e, s) in chosen.iter().zip(statuses) {
        counts[*s as usize] += 1;
        println!("{:<8}{:<width$}  (line {})", s.word(), e.key, e.line);
    }
    let [new, same, differs] = counts;
    let stop = if differs > 0 {
        " (an import stops on those without --overwrite)"
    } else {
        ""
    };
    println!(
        "dry run: {new} new, {same} same, {differs} differs{stop}; nothing written to {mount}/{path}"
    );
}

/// Rewrites FILE with a `vault://PATH#KEY` reference in place of each
/// chosen value, if it still holds what was imported; returns how many.
fn rewrite(
    file: &Path,
    shown: &str,
    text: &str,
    entries: &[Entry],
    chosen: &[&Entry],
    path: &str,
) -> Result<usize> {
    let fail = |why: String| {
        Failure::new(
            Kind::Other,
            format!("{shown} not rewritten: {why} (Vault holds the values)"),
        )
    };
    // A link's target is rewritten: the link stays a link.
    let real: PathBuf = std::fs::canonicalize(file).map_err(|e| fail(e.to_string()))?;
    let meta = std::fs::metadata(&real).map_err(|e| fail(e.to_string()))?;
    let now = Zeroizing::new(std::fs::read(&real).map_err(|e| fail(e.to_string()))?);
    if now.as_slice() != text.as_bytes() {
        return Err(fail(
            "it changed since it was read; import it again".to_owned(),
        ));
    }
    let references: Vec<(&str, String)> = chosen
        .iter()
        .map(|e| (e.key.as_str(), format!("{SCHEME}{path}#{}", e.key)))
        .collect();
    let replace: Vec<(&str, &str)> = references
        .iter()
        .map(|(key, reference)| (*key, reference.as_str()))
        .collect();
    let new = dotfile::rewrite(text, entries, &replace).map_err(|e| fail(e.to_string()))?;
    files::replace(
        &real,
        new.as_bytes(),
        meta.mode() & 0o7777,
        Some((meta.uid(), meta.gid())),
    )
    .map_err(|e| fail(format!("cannot replace it: {e}")))?;
    Ok(chosen.len())
}
