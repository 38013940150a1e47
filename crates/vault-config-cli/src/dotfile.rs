//! A dotenv file as dotenvy reads it, and where in the file each value is
//! written: for `import`, which stores the values and may rewrite the file
//! with references in their place. Uses dotenvy (the parser: comments,
//! `export `, single and double quotes, escapes, multi-line quoted values)
//! and std; knows nothing of Vault.
//!
//! The values are dotenvy's, never a second parser's. dotenvy gives no
//! positions, so [`Located`] walks the file only to find each assignment's
//! line and the bytes of its value (quotes included), following dotenvy
//! 0.15.7's own rules for where a line ends; every span found is checked by
//! handing it back to dotenvy alone, which must read the same value, before
//! a rewrite uses it.
//!
//! Where dotenvy 0.15.7 and python-dotenv read a value differently, the
//! value is flagged ([`Entry::ambiguity`]) rather than guessed:
//! - a `$` outside single quotes: dotenvy substitutes `$NAME` and `${NAME}`
//!   (from the process environment or earlier lines) and drops a lone `$`;
//!   python-dotenv expands only `${NAME}`;
//! - `${` in single quotes: python-dotenv (1.x) expands it there too;
//! - a backslash in an unquoted value (an escape to dotenvy, a character to
//!   python-dotenv) or in single quotes (python-dotenv unescapes `\\` and
//!   `\'` there, dotenvy does not);
//! - `\$` and `\ ` in double quotes, unescaped by dotenvy only;
//! - quotes around part of a value (`a"b"`), joined by dotenvy only;
//! - an unquoted value starting with `#` (`KEY= # note`): empty to dotenvy,
//!   `# note` to python-dotenv;
//! - a carriage return inside a value (a CRLF file's multi-line value):
//!   python-dotenv reads it as `\n`.
//!
//! dotenvy 0.15.7 knows the escapes `\\ \' \" \$ \n` and `\ ` only: `\t`,
//! `\r` or `\u…` in a value is an error (python-dotenv would decode them);
//! it reads `"$NAME"` (a `$` name right before the closing quote) as an
//! unclosed quote. A UTF-8 byte-order mark at the start is skipped.

use std::fmt;
use std::ops::Range;

use zeroize::Zeroizing;

/// One assignment of the file.
pub struct Entry {
    pub key: String,
    /// The value, as dotenvy reads it.
    pub value: Zeroizing<String>,
    /// The line (from 1) the assignment starts on.
    pub line: usize,
    /// The bytes of the value as written, quotes included, in the file's text.
    pub span: Range<usize>,
    /// Why dotenvy and python-dotenv would read the value differently.
    pub ambiguity: Option<&'static str>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value", &"<redacted>")
            .field("line", &self.line)
            .field("span", &self.span)
            .finish()
    }
}

/// A file that did not parse: where, never what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line (from 1) of the assignment dotenvy could not read.
    pub line: usize,
    /// Its key, when the line starts with one.
    pub key: Option<String>,
    /// Why, in words that quote no value.
    pub why: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(key) = &self.key {
            write!(f, " (key {key})")?;
        }
        write!(f, ": {}", self.why)
    }
}

/// The assignments of a file, in order.
pub fn parse(text: &str) -> Result<Vec<Entry>, ParseError> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let body = &text[bom..];
    let located = locate(body);
    let mut entries = Vec::with_capacity(located.len());
    let mut items = dotenvy::from_read_iter(body.as_bytes());
    for at in &located {
        let item = items.next();
        let unreadable = |why| ParseError {
            line: at.line,
            key: at.key.clone(),
            why,
        };
        let (key, value) = match item {
            Some(Ok((key, value))) => (key, Zeroizing::new(value)),
            Some(Err(_)) if at.open.is_some() => {
                return Err(unreadable(at.open.unwrap_or_default()))
            }
            // dotenvy's message quotes the line: never shown.
            Some(Err(_)) => return Err(unreadable(
                "dotenvy cannot read it: not KEY=value, an unquoted space inside the value, text after a closing quote, or an escape other than \\\\ \\' \\\" \\$ \\n and `\\ `",
            )),
            None => return Err(unreadable("dotenvy read no assignment here")),
        };
        let (Some(span), true) = (at.span.clone(), at.key.as_deref() == Some(key.as_str())) else {
            return Err(unreadable(
                "its key could not be found where dotenvy read it (please report this file's layout)",
            ));
        };
        entries.push(Entry {
            key,
            value,
            line: at.line,
            span: span.start + bom..span.end + bom,
            ambiguity: at.ambiguity,
        });
    }
    if let Some(item) = items.next() {
        let line = located.last().map_or(1, |l| l.line);
        let key = item.ok().map(|(key, _)| key);
        return Err(ParseError {
            line,
            key,
            why: "dotenvy read an assignment after this line that could not be located (please report this file's layout)",
        });
    }
    Ok(entries)
}

/// Refuses what dotenvy and python-dotenv would settle differently among
/// `entries`: a key assigned twice, or a value they read differently
/// ([`Entry::ambiguity`]). The reason names lines and keys, never a value.
pub fn refuse_ambiguous(entries: &[&Entry]) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = entries[..i].iter().find(|c| c.key == e.key) {
            return Err(format!(
                "{} is assigned twice (lines {} and {}), which dotenvy and python-dotenv settle differently; keep one",
                e.key, first.line, e.line
            ));
        }
        if let Some(why) = e.ambiguity {
            return Err(format!("line {} (key {}): {why}", e.line, e.key));
        }
    }
    Ok(())
}

/// Whether `text[span]`, alone after `key=`, reads as `value` to dotenvy:
/// the span was located right.
pub fn reads_back(key: &str, written: &str, value: &str) -> bool {
    let line = Zeroizing::new(format!("{key}={written}"));
    let mut items = dotenvy::from_read_iter(line.as_bytes());
    let first = items.next();
    let ok = matches!(&first, Some(Ok((k, v))) if k == key && v == value);
    if let Some(Ok((_, v))) = first {
        drop(Zeroizing::new(v));
    }
    ok && items.next().is_none()
}

/// `text` (whose assignments are `entries`) with the value of each key of
/// `replace` written anew, every other byte kept: read back by dotenvy, the
/// new text must give the new values to those keys and the old ones to
/// every other. Each old value's span is checked first ([`reads_back`]).
pub fn rewrite(
    text: &str,
    entries: &[Entry],
    replace: &[(&str, &str)],
) -> Result<Zeroizing<String>, ParseError> {
    let refuse = |e: &Entry, why| ParseError {
        line: e.line,
        key: Some(e.key.clone()),
        why,
    };
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut copied = 0;
    for e in entries {
        let Some((_, new)) = replace.iter().find(|(key, _)| *key == e.key) else {
            continue;
        };
        if !reads_back(&e.key, &text[e.span.clone()], &e.value) {
            return Err(refuse(
                e,
                "its value could not be located in the file to replace it",
            ));
        }
        let Some(mut written) = written(new) else {
            return Err(refuse(
                e,
                "its new value cannot be written in a way dotenvy and python-dotenv both read back",
            ));
        };
        // An empty value right before a `#`: a space keeps the comment one.
        if e.span.is_empty() && text[e.span.end..].starts_with('#') {
            written.push(' ');
        }
        out.push_str(&text[copied..e.span.start]);
        out.push_str(&written);
        copied = e.span.end;
    }
    out.push_str(&text[copied..]);
    let after = parse(&out)?;
    let same = after.len() == entries.len()
        && after.iter().zip(entries).all(|(a, e)| {
            let want = replace
                .iter()
                .find(|(key, _)| *key == e.key)
                .map_or(e.value.as_str(), |(_, new)| *new);
            a.key == e.key && a.value.as_str() == want
        });
    if !same {
        let line = entries.first().map_or(1, |e| e.line);
        return Err(ParseError {
            line,
            key: None,
            why: "the rewritten file would not read back as it should (please report this file's layout)",
        });
    }
    Ok(out)
}

/// `value` as a dotenv value both dotenvy and python-dotenv read back:
/// as it is when it is plain, else in single quotes.
fn written(value: &str) -> Option<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:#@%+,=-".contains(c);
    if !value.is_empty() && value.chars().all(plain) && !value.starts_with('#') {
        Some(value.to_owned())
    } else if !value.contains(['\'', '\\', '\r']) && !value.contains("${") {
        Some(format!("'{value}'"))
    } else {
        None
    }
}

/// Where one assignment is, as far as the file's lines tell.
#[derive(Debug)]
struct Located {
    line: usize,
    key: Option<String>,
    /// The value as written (quotes included): None when no `KEY=` starts the line.
    span: Option<Range<usize>>,
    /// Why the file ends inside this assignment (a quote still open).
    open: Option<&'static str>,
    ambiguity: Option<&'static str>,
}

/// dotenvy 0.15.7's states for where a logical line ends (`iter.rs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Complete,
    Escape,
    StrongOpen,
    StrongOpenEscape,
    WeakOpen,
    WeakOpenEscape,
    Comment,
    WhiteSpace,
}

/// How `chunk` moves the state, and where a comment starts (dotenvy's
/// `eval_end_state`).
fn end_state(mut state: State, chunk: &str) -> (State, Option<usize>) {
    for (pos, c) in chunk.char_indices() {
        state = match state {
            State::WhiteSpace => match c {
                '#' => return (State::Comment, Some(pos)),
                '\\' => State::Escape,
                '"' => State::WeakOpen,
                '\'' => State::StrongOpen,
                _ => State::Complete,
            },
            State::Escape | State::Comment => State::Complete,
            State::Complete => match c {
                c if c.is_whitespace() && c != '\n' && c != '\r' => State::WhiteSpace,
                '\\' => State::Escape,
                '"' => State::WeakOpen,
                '\'' => State::StrongOpen,
                _ => State::Complete,
            },
            State::WeakOpen => match c {
                '\\' => State::WeakOpenEscape,
                '"' => State::Complete,
                _ => State::WeakOpen,
            },
            State::WeakOpenEscape => State::WeakOpen,
            State::StrongOpen => match c {
                '\\' => State::StrongOpenEscape,
                '\'' => State::Complete,
                _ => State::StrongOpen,
            },
            State::StrongOpenEscape => State::StrongOpen,
        };
    }
    (state, None)
}

/// The assignments of `body` dotenvy will read, in its order: its logical
/// lines (a quoted value may span several), less blank and comment lines.
fn locate(body: &str) -> Vec<Located> {
    let mut found = Vec::new();
    let mut line_no = 1;
    let mut start = 0;
    let mut state = State::Complete;
    let mut pos = 0;
    let mut lines_in = 0;
    while pos < body.len() {
        let end = body[pos..].find('\n').map_or(body.len(), |i| pos + i + 1);
        let chunk = &body[pos..end];
        lines_in += 1;
        if body[start..end].trim_start().starts_with('#') {
            // A comment line (dotenvy checks before anything else).
            (start, pos, state) = (end, end, State::Complete);
            line_no += lines_in;
            lines_in = 0;
            continue;
        }
        let (next, comment) = end_state(state, chunk);
        state = next;
        let cut = state == State::Comment;
        let content_end = match state {
            State::Complete => {
                let mut e = end;
                if body[start..e].ends_with('\n') {
                    e -= 1;
                    if body[start..e].ends_with('\r') {
                        e -= 1;
                    }
                }
                Some(e)
            }
            State::Comment => comment.map(|c| pos + c),
            _ => None,
        };
        if let Some(content_end) = content_end {
            if let Some(at) = assignment(body, start..content_end, line_no, None, cut) {
                found.push(at);
            }
            line_no += lines_in;
            lines_in = 0;
            (start, state) = (end, State::Complete);
        }
        pos = end;
    }
    if start < body.len() {
        let open = match state {
            State::WeakOpen | State::WeakOpenEscape | State::StrongOpen | State::StrongOpenEscape => {
                "a quote opened here is never closed (the file ends first)"
            }
            _ => "dotenvy 0.15.7 cannot read a last line that ends in a space, a tab or a backslash without a line break; end the file with a line break",
        };
        if let Some(at) = assignment(body, start..body.len(), line_no, Some(open), false) {
            found.push(at);
        }
    }
    found
}

/// The assignment on one logical line (`comment_cut`: dotenvy cut a
/// ` #` comment off it), None for a blank line or a comment (dotenvy's
/// `parse_line`, locating only).
fn assignment(
    body: &str,
    range: Range<usize>,
    line: usize,
    open: Option<&'static str>,
    comment_cut: bool,
) -> Option<Located> {
    let text = body[range.clone()].trim_end();
    let lead = text.len() - text.trim_start().len();
    let rest = &text[lead..];
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    let mut at = Located {
        line,
        key: None,
        span: None,
        open,
        ambiguity: None,
    };
    let mut i = lead;
    let Some(mut key) = key_at(text, &mut i) else {
        return Some(at);
    };
    skip_space(text, &mut i);
    if key == "export" && !text[i..].starts_with('=') {
        match key_at(text, &mut i) {
            Some(next) => key = next,
            None => return Some(at),
        }
        skip_space(text, &mut i);
    }
    at.key = Some(key);
    if !text[i..].starts_with('=') {
        return Some(at);
    }
    i += 1;
    skip_space(text, &mut i);
    let raw = &text[i..];
    let (len, ambiguity) = if raw.starts_with('#') || (raw.is_empty() && comment_cut) {
        (0, Some(HASH_START))
    } else {
        value_len(raw)
    };
    at.span = Some(range.start + i..range.start + i + len);
    at.ambiguity = ambiguity;
    Some(at)
}

/// A key at `text[*i..]` (a letter or `_`, then letters, digits, `_`, `.`).
fn key_at(text: &str, i: &mut usize) -> Option<String> {
    let rest = &text[*i..];
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    *i += len;
    Some(rest[..len].to_owned())
}

fn skip_space(text: &str, i: &mut usize) {
    let rest = &text[*i..];
    *i += rest.len() - rest.trim_start().len();
}

/// How long the written value at the start of `raw` is (up to an unquoted
/// space or tab, after which only a comment may follow), and why dotenvy
/// and python-dotenv would read it differently.
fn value_len(raw: &str) -> (usize, Option<&'static str>) {
    let (mut strong, mut weak, mut escaped) = (false, false, false);
    let mut ambiguity = None;
    // Where the one quoted string a value may be closed, if it was.
    let mut closed_at = None;
    for (i, c) in raw.char_indices() {
        if closed_at.is_some_and(|at| at < i) && c != ' ' && c != '\t' {
            flag(&mut ambiguity, MIXED);
        }
        if c == '\r' {
            flag(&mut ambiguity, CARRIAGE_RETURN);
        }
        if escaped {
            escaped = false;
            if weak && (c == '$' || c == ' ') {
                flag(&mut ambiguity, BACKSLASH_DOUBLE);
            }
        } else if strong {
            match c {
                '\'' => {
                    strong = false;
                    closed_at = Some(i);
                }
                '\\' => flag(&mut ambiguity, BACKSLASH_SINGLE),
                '{' if raw[..i].ends_with('$') => flag(&mut ambiguity, DOLLAR_BRACE),
                _ => {}
            }
        } else if c == '$' {
            flag(&mut ambiguity, DOLLAR);
        } else if weak {
            match c {
                '"' => {
                    weak = false;
                    closed_at = Some(i);
                }
                '\\' => escaped = true,
                _ => {}
            }
        } else {
            match c {
                '\'' | '"' if i > 0 => flag(&mut ambiguity, MIXED),
                _ => {}
            }
            match c {
                '\'' => strong = true,
                '"' => weak = true,
                '\\' => {
                    escaped = true;
                    flag(&mut ambiguity, BACKSLASH_UNQUOTED);
                }
                ' ' | '\t' => return (i, ambiguity),
                _ => {}
            }
        }
    }
    (raw.len(), ambiguity)
}

/// Keeps the first reason.
fn flag(ambiguity: &mut Option<&'static str>, why: &'static str) {
    ambiguity.get_or_insert(why);
}

const DOLLAR: &str = "a `$` outside single quotes, which dotenvy replaces with a variable \
     (from this process's environment or an earlier line; a lone `$` is dropped) and \
     python-dotenv reads otherwise; write the value in single quotes to import it as written";
const DOLLAR_BRACE: &str = "a `${` in single quotes, taken as written by dotenvy and expanded \
     by python-dotenv (in any quotes); no quoting keeps it whole in both";
const BACKSLASH_UNQUOTED: &str = "a backslash in an unquoted value, an escape to dotenvy and a \
     plain character to python-dotenv; put the value in double quotes (with `\\\\` for a backslash)";
const BACKSLASH_SINGLE: &str = "a backslash in single quotes, which python-dotenv unescapes \
     (`\\\\`, `\\'`) and dotenvy does not; put the value in double quotes (with `\\\\` for a backslash)";
const BACKSLASH_DOUBLE: &str = "`\\$` or `\\ ` in double quotes, which dotenvy unescapes and \
     python-dotenv keeps as written; use single quotes for a `$`, a plain space for a space";
const HASH_START: &str = "an unquoted value starting with `#`, empty to dotenvy and the text \
     itself to python-dotenv; write `KEY=` for an empty value, or quote the value";
const CARRIAGE_RETURN: &str = "a carriage return inside the value (a multi-line value of a \
     CRLF file), kept by dotenvy and read as a plain line break by python-dotenv; save the file \
     with LF line breaks";
const MIXED: &str = "quotes that do not enclose the whole value (dotenvy joins the pieces, \
     python-dotenv does not); quote the whole value once";

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.key.clone(),
                    e.value.to_string(),
                    e.line,
                    text[e.span.clone()].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn values_are_dotenvys_and_spans_are_where_they_are_written() {
        let text = "\u{feff}# head\n\nexport A=1 # one\nB = \"two # not\"\r\n  C='th\nree'  # c\nD=\nE= # e\nF=  # f\nG=\"x\\ny\"\n#K=v\nexport=\"e\"\nH=a#b";
        let got = pairs(text);
        let want = [
            ("A", "1", 3, "1"),
            ("B", "two # not", 4, "\"two # not\""),
            ("C", "th\nree", 5, "'th\nree'"),
            ("D", "", 7, ""),
            ("E", "", 8, ""),
            ("F", "", 9, ""),
            ("G", "x\ny", 10, "\"x\\ny\""),
            ("export", "e", 12, "\"e\""),
            ("H", "a#b", 13, "a#b"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0.as_str(), g.1.as_str(), g.2, g.3.as_str()), w);
            assert!(reads_back(&g.0, &g.3, &g.1), "{g:?}");
        }
    }

    #[test]
    fn a_rewrite_replaces_values_and_keeps_every_other_byte() {
        let text =
            "\u{feff}# head\r\nexport A=1 # one\nB = \"two\nlines\"\nC='x' # c\nD=  # d\nE=keep\n";
        let entries = parse(text).unwrap();
        let out = rewrite(
            text,
            &entries,
            &[
                ("A", "vault://app#A"),
                ("B", "vault://app#B"),
                ("C", "vault://my app#C"),
                ("D", "vault://app#D"),
            ],
        )
        .unwrap();
        assert_eq!(
            out.as_str(),
            "\u{feff}# head\r\nexport A=vault://app#A # one\nB = vault://app#B\nC='vault://my app#C' # c\nD=  vault://app#D # d\nE=keep\n"
        );
        let bad = rewrite(text, &entries, &[("A", "it's")]).unwrap_err();
        assert_eq!((bad.line, bad.key.as_deref()), (2, Some("A")));
    }

    /// Files made of every form, in many orders: each span dotenvy accepts
    /// reads back alone, and a rewrite of every key reads back.
    #[test]
    fn located_spans_read_back_in_generated_files() {
        const LINES: &[&str] = &[
            "# comment\n",
            "\n",
            "   \n",
            "K=plain\n",
            "export K=exported # note\n",
            "K = 'single # x = \"y\"'\n",
            "K=\"double \\\" \\\\ \\n 'q'\" # c\n",
            "K=\"multi\nline # no\n\"\n",
            "K='multi\nsingle'  # c\n",
            "K=\n",
            "K=\"\"\n",
            "K=a#b=c\n",
            "K=crlf\r\n",
            "  K=\"pässwörd 🔑\"\t# tab\n",
            "K=''\n",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..300 {
            let mut text = String::new();
            let mut n = 0;
            for _ in 0..6 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let line = LINES[(seed % LINES.len() as u64) as usize];
                // Each key its own name.
                n += 1;
                text.push_str(&line.replacen("K", &format!("K{n}"), 1));
            }
            let entries = parse(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
            for e in &entries {
                assert!(
                    reads_back(&e.key, &text[e.span.clone()], &e.value),
                    "{e:?} in {text:?}"
                );
            }
            let refs: Vec<(String, String)> = entries
                .iter()
                .map(|e| (e.key.clone(), format!("vault://app#{}", e.key)))
                .collect();
            let refs: Vec<(&str, &str)> =
                refs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            rewrite(&text, &entries, &refs).unwrap_or_else(|e| panic!("{e}: {text:?}"));
        }
    }

    #[test]
    fn errors_name_the_line_and_key_never_the_value() {
        let err = parse("A=1\nB=\"unclosed secret\nC=3\n").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (2, Some("B")));
        assert!(err.why.contains("never closed"), "{err}");
        assert!(!err.to_string().contains("secret"));
        let err = parse("A=1\n\nB=two words\n").unwrap_err();
        assert_eq!((err.line, err.key.as_deref()), (3, Some("B")));
        assert!(!err.to_string().contains("words"), "{err}");
        let err = parse("A=\"tab\\t\"\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse("A=1\n=nokey\n").unwrap_err();
        assert_eq!((err.line, err.key), (2, None));
    }

    #[test]
    fn values_read_differently_elsewhere_are_flagged() {
        let flagged = |text: &str| parse(text).unwrap()[0].ambiguity;
        assert_eq!(flagged("A=\"${HOME}\""), Some(DOLLAR));
        assert_eq!(flagged("A=\"$HOME x\""), Some(DOLLAR));
        // dotenvy 0.15.7 takes the closing quote of `"$HOME"` into the value.
        assert!(parse("A=\"$HOME\"").is_err());
        assert_eq!(flagged("A=cost$"), Some(DOLLAR));
        assert_eq!(flagged("A='$HOME $5 $(id)'"), None);
        assert_eq!(flagged("A='${HOME}'"), Some(DOLLAR_BRACE));
        assert_eq!(flagged("A=\"\\$HOME\""), Some(BACKSLASH_DOUBLE));
        assert_eq!(flagged("A=a\\ b"), Some(BACKSLASH_UNQUOTED));
        assert_eq!(flagged("A='a\\b'"), Some(BACKSLASH_SINGLE));
        assert_eq!(flagged("A=\"a\\\\b \\\" \\n\""), None);
        assert_eq!(flagged("A=\"a\\$\""), Some(BACKSLASH_DOUBLE));
        assert_eq!(flagged("A=\"a\"b"), Some(MIXED));
        assert_eq!(flagged("A=a'b'"), Some(MIXED));
        assert_eq!(flagged("A='a' # c"), None);
        assert_eq!(flagged("A= # c"), Some(HASH_START));
        assert_eq!(flagged("A=#c"), Some(HASH_START));
        assert_eq!(flagged("A= \n"), None);
        assert_eq!(flagged("A=\"x\r\ny\"\r\n"), Some(CARRIAGE_RETURN));
        assert_eq!(flagged("A=\"x\"\r\n"), None);
        // dotenvy 0.15.7 fails on a last line ending in a space.
        assert!(parse("A= ").unwrap_err().why.contains("line break"));
    }
}
