//! Variables as text: POSIX shell assignments, dotenv lines, JSON.

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
                // docker --env-file takes the rest of the line as it is: no
                // quoting, so no way to write a line break.
                if v.value.contains(['\n', '\r']) {
                    return Err(Failure::new(
                        Kind::Invalid,
                        format!("the value of {} spans lines, which a dotenv file for docker --env-file cannot hold; use --format sh or json", v.from),
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
}
