//! Parsing `#[vault(...)]` attributes (and the `#[serde(rename)]` the key must follow).

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Lit, LitInt, LitStr, Token};

use crate::ctxt::Ctxt;

/// The attribute's name.
pub const VAULT: &str = "vault";

pub const PATH: &str = "path";
pub const KEY: &str = "key";
pub const ENV: &str = "env";
pub const DEFAULT: &str = "default";
pub const VERSION: &str = "version";
pub const NESTED: &str = "nested";
pub const DYNAMIC: &str = "dynamic";
pub const MOUNT: &str = "mount";
pub const PREFIX: &str = "prefix";
pub const ENV_PREFIX: &str = "env_prefix";
pub const CRATE: &str = "crate";
pub const PATH_ENV: &str = "path_env";
pub const TTL: &str = "ttl";
pub const NO_ENV: &str = "no_env";
pub const JSON: &str = "json";
pub const PKI: &str = "pki";
pub const COMMON_NAME: &str = "common_name";
pub const ALT_NAMES: &str = "alt_names";
pub const IP_SANS: &str = "ip_sans";

/// What a field may say.
pub const FIELD_KEYS: &[&str] = &[
    PATH,
    PATH_ENV,
    KEY,
    ENV,
    NO_ENV,
    DEFAULT,
    VERSION,
    NESTED,
    DYNAMIC,
    TTL,
    JSON,
    PKI,
    COMMON_NAME,
    ALT_NAMES,
    IP_SANS,
];
/// What a struct may say.
pub const STRUCT_KEYS: &[&str] = &[MOUNT, PREFIX, ENV_PREFIX, PATH, PATH_ENV, CRATE];

/// One item inside `#[vault(...)]`.
pub enum Arg {
    /// `"path#key"`
    Shorthand(LitStr),
    /// `name = value`
    NameValue(Ident, Expr),
    /// `name`
    Flag(Ident),
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return input.parse().map(Arg::Shorthand);
        }
        let name: Ident = input.call(Ident::parse_any)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Ok(Arg::NameValue(name, input.parse()?))
        } else {
            Ok(Arg::Flag(name))
        }
    }
}

/// Every item of every `#[vault(...)]` among `attrs`, with the errors of the
/// ones that did not parse.
pub fn vault_args(attrs: &[Attribute], cx: &Ctxt) -> Vec<Arg> {
    let mut args = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(VAULT)) {
        match attr.parse_args_with(Punctuated::<Arg, Token![,]>::parse_terminated) {
            Ok(list) => args.extend(list),
            Err(e) => cx.syn_error(syn::Error::new(
                e.span(),
                format!(
                    "{e}; write #[vault(path = \"...\", key = \"...\")] or #[vault(\"path#key\")]"
                ),
            )),
        }
    }
    args
}

/// The string literal of `name = "..."`, or an error saying a string is expected.
pub fn lit_str(name: &Ident, value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a string literal, e.g. {name} = \"...\""),
        )),
    }
}

/// The positive integer literal of `version = N`.
pub fn lit_version(name: &Ident, value: &Expr) -> syn::Result<(u64, LitInt)> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<u64>() {
            Ok(0) => Err(syn::Error::new_spanned(i, "KV versions start at 1")),
            Ok(v) => Ok((v, i.clone())),
            Err(e) => Err(syn::Error::new_spanned(i, e)),
        },
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a whole number (a KV v2 version), e.g. {name} = 3"),
        )),
    }
}

/// "`path` is given twice"
pub fn duplicate(name: &Ident, span: Span) -> syn::Error {
    syn::Error::new(span, format!("`{name}` is given twice"))
}

/// A bare `name` where `name = ...` is expected, or an unknown name.
pub fn flag_or_unknown(name: &Ident, allowed: &[&str], other: &[&str], level: &str) -> syn::Error {
    let text = name.to_string();
    if allowed.contains(&text.as_str()) {
        return syn::Error::new_spanned(name, format!("`{text}` needs a value: {text} = ..."));
    }
    unknown(name, allowed, other, level)
}

/// The seconds of `ttl = "1h"`: a whole number with a unit (`s`, `m`, `h`,
/// `d`), or seconds alone, as Vault writes TTLs.
pub fn lit_ttl(name: &Ident, value: &Expr) -> syn::Result<(u64, Span)> {
    let lit = lit_str(name, value)?;
    let text = lit.value();
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => Some(1u64),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86_400),
        _ => None,
    };
    match (digits.parse::<u64>().ok(), scale) {
        (Some(n), Some(scale)) if n > 0 => n
            .checked_mul(scale)
            .map(|secs| (secs, lit.span()))
            .ok_or_else(|| syn::Error::new_spanned(&lit, "the TTL is too long")),
        _ => Err(syn::Error::new_spanned(
            &lit,
            format!("`{name}` takes a duration as Vault writes it, e.g. {name} = \"1h\", \"30m\" or \"3600\""),
        )),
    }
}

/// "unknown vault attribute `pth`; did you mean `path`?"
pub fn unknown(name: &Ident, allowed: &[&str], other_level: &[&str], level: &str) -> syn::Error {
    let text = name.to_string();
    if other_level.contains(&text.as_str()) {
        let other = if level == "field" { "struct" } else { "field" };
        return syn::Error::new_spanned(
            name,
            format!("`{text}` is a {other} attribute, not a {level} attribute"),
        );
    }
    let best = allowed
        .iter()
        .map(|c| (distance(&text, c), *c))
        .min()
        .filter(|(d, _)| *d <= 2);
    let msg = match best {
        Some((_, c)) => format!("unknown vault attribute `{text}`; did you mean `{c}`?"),
        None => format!(
            "unknown vault attribute `{text}`; expected one of: {}",
            allowed.join(", ")
        ),
    };
    syn::Error::new_spanned(name, msg)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The key serde reads the field under: `#[serde(rename = "...")]` (or its
/// `deserialize` form) when present, else the field's name.
pub fn serde_key(field: &syn::Field, ident: &Ident, cx: &Ctxt) -> String {
    let mut key = ident.unraw().to_string();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                if meta.input.peek(Token![=]) {
                    key = meta.value()?.parse::<LitStr>()?.value();
                } else {
                    meta.parse_nested_meta(|inner| {
                        let value = inner.value()?.parse::<LitStr>()?;
                        if inner.path.is_ident("deserialize") {
                            key = value.value();
                        }
                        Ok(())
                    })?;
                }
            } else {
                skip_meta(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    key
}

/// `#[serde(rename_all = ...)]` on the struct, which the derive does not follow.
pub fn serde_rename_all(attrs: &[Attribute]) -> Option<Span> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                found = Some(meta.path.span());
            }
            skip_meta(&meta)
        });
    }
    found
}

/// Consumes a serde item this derive does not read: `name`, `name = expr` or `name(...)`.
fn skip_meta(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_meta(&inner))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert_eq!(distance("pth", "path"), 1);
        assert_eq!(distance("kye", "key"), 2);
        assert_eq!(distance("default", "default"), 0);
    }
}
