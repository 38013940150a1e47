//! Variables as text: POSIX shell assignments, dotenv lines (for dotenvy,
//! python-dotenv and docker compose), `docker run --env-file` lines, JSON.

use crate::cli::Format;
use crate::exit::{Failure, Kind, Result};
use crate::naming::Var;

/// `value` in POSIX single quotes: every byte stands for itself, and a `'`
/// closes the quote, adds an escaped `'` and opens a new one.
pub fn sh_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `value` written after `NAME=` in a dotenv file that dotenvy (Rust),
/// python-dotenv and docker compose's env_file all read back byte for byte,
/// or why it cannot be.
///
/// - No `$`: in double quotes, with `\\` for a backslash, `\"` for a double
///   quote and `\n` for a line break (so every variable is one line). All
///   three read these three escapes, and nothing else in the value is
///   special to any of them inside double quotes.
/// - A `$`: dotenvy and compose expand `$NAME` in double quotes, and
///   python-dotenv keeps `\$` as two characters, so it goes in single quotes,
///   which all three take literally (line breaks as they are), but for
///   python-dotenv's `\\` and `\'`: a value holding `'`, `\\` or ending with
///   `\` cannot be written so.
/// - python-dotenv expands `${NAME}` and `${NAME:-default}` in any quotes,
///   with no escape; and reads a carriage return as a line break (a file
///   opened as text), which dotenvy has no escape for. Such values cannot
///   be written for all three.
pub fn push_dotenv(out: &mut String, value: &str) -> Result<(), &'static str> {
    if value.contains('\r') {
        return Err("holds a carriage return, which python-dotenv reads as a line break and dotenvy cannot unescape");
    }
    if !value.contains('$') {
        out.push('"');
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
        return Ok(());
    }
    if python_expands(value) {
        return Err("holds `${...}`, which python-dotenv expands inside any quotes");
    }
    if value.contains('\'') || value.contains("\\\\") || value.ends_with('\\') {
        return Err("holds `$` together with `'`, or with a backslash that doubles or ends it, which no quoting keeps whole in dotenvy, python-dotenv and docker compose at once");
    }
    out.push('\'');
    out.push_str(value);
    out.push('\'');
    Ok(())
}

/// Whether python-dotenv's interpolation (on by default) would replace part
/// of `value`: its pattern `\$\{[^}:]*(:-[^}]*)?\}`.
fn python_expands(value: &str) -> bool {
    value.match_indices("${").any(|(at, _)| {
        let rest = &value[at + 2..];
        match rest.find(['}', ':']) {
            Some(i) if rest[i..].starts_with('}') => true,
            Some(i) => rest[i..].starts_with(":-") && rest[i + 2..].contains('}'),
            None => false,
        }
    })
}

/// The whole output for `vars`.
pub fn render(vars: &[Var], format: Format) -> Result<String> {
    let mut out = String::new();
    match format {
        Format::Sh => {
            for v in vars {
                out.push_str("export ");
                out.push_str(&v.name);
                out.push('=');
                out.push_str(&sh_quote(&v.value));
                out.push('\n');
            }
        }
        Format::Dotenv => {
            for v in vars {
                out.push_str(&v.name);
                out.push('=');
                push_dotenv(&mut out, &v.value).map_err(|why| {
                    Failure::new(
                        Kind::Invalid,
                        format!("the value of {} {why}; use --format json or sh", v.from),
                    )
                })?;
                out.push('\n');
            }
        }
        Format::Docker => {
            for v in vars {
                // docker run --env-file takes the rest of the line as it is:
                // no quoting, so no way to write a line break (and a
                // carriage return before one is dropped).
                if v.value.contains(['\n', '\r']) {
                    return Err(Failure::new(
                        Kind::Invalid,
                        format!("the value of {} spans lines, which docker run --env-file cannot take; use --format dotenv (docker compose's env_file), json or sh", v.from),
                    ));
                }
                out.push_str(&v.name);
                out.push('=');
                out.push_str(&v.value);
                out.push('\n');
            }
        }
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|v| (v.name.clone(), serde_json::Value::String(v.value.clone())))
                .collect();
            out = serde_json::Value::Object(map).to_string();
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_quotes_hold_everything() {
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$HOME `x` \\n"), "'$HOME `x` \\n'");
        assert_eq!(sh_quote(""), "''");
    }

    fn dotenv(value: &str) -> Result<String, &'static str> {
        let mut out = String::new();
        push_dotenv(&mut out, value).map(|()| out)
    }

    #[test]
    fn dotenv_quotes_for_every_reader_or_refuses() {
        assert_eq!(dotenv("").unwrap(), r#""""#);
        assert_eq!(dotenv("a b#c=d").unwrap(), r#""a b#c=d""#);
        assert_eq!(dotenv("it's \"x\" \\n\n").unwrap(), r#""it's \"x\" \\n\n""#);
        assert_eq!(dotenv("$HOME\nx").unwrap(), "'$HOME\nx'");
        assert_eq!(dotenv(r"a\b$").unwrap(), r"'a\b$'");
        assert!(dotenv("$'").is_err());
        assert!(dotenv(r"$\\").is_err());
        assert!(dotenv(r"$\").is_err());
        assert!(dotenv("a\rb").is_err());
        assert!(dotenv("${X}").is_err());
        assert!(dotenv("${X:-d}").is_err());
        // python-dotenv leaves these alone.
        assert!(dotenv("${X:d}").is_ok());
        assert!(dotenv("${X").is_ok());
        assert!(dotenv("$X {}").is_ok());
    }
}
