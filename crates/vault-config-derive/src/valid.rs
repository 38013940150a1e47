//! The rules: which attribute values may go together on the struct and on one
//! field (turning a field's [`FieldArgs`] into its [`Kind`]), and across fields.

use std::collections::HashMap;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::ast::{EnvField, FieldArgs, Input, Issue, Kind, Source};
use crate::ctxt::Ctxt;
use crate::env_names;

/// The struct's own attributes: a `mount` must name something; neither it
/// nor a `prefix` may hold a segment a URL would drop or resolve.
pub fn struct_args(input: &Input, cx: &Ctxt) {
    if let Some(m) = &input.mount {
        if m.value().trim_matches('/').is_empty() {
            cx.error_spanned_by(
                m,
                "the mount is empty; name a KV mount, e.g. mount = \"secret\"",
            );
        } else if let Some(msg) = bad_segment("mount", &m.value()) {
            cx.error_spanned_by(m, msg);
        }
    }
    if let Some(p) = &input.path {
        if p.value().trim_matches('/').is_empty() {
            cx.error_spanned_by(p, "the struct's path is empty");
        } else if let Some(msg) = bad_segment("path", &p.value()) {
            cx.error_spanned_by(p, msg);
        } else if p.value().contains('#') {
            cx.error_spanned_by(
                p,
                "the struct's path contains `#`: name the key on each field",
            );
        }
    }
    if let (Some(env), None) = (&input.path_env, &input.path) {
        cx.error_spanned_by(
            env,
            "`path_env` moves the struct's `path` at load time: add path = \"...\", the default it replaces",
        );
    }
    if let Some(p) = &input.prefix {
        if !p.value().trim_matches('/').is_empty() {
            if let Some(msg) = bad_segment("prefix", &p.value()) {
                cx.error_spanned_by(p, msg);
            }
        }
    }
}

/// Why `value` cannot be a Vault path: an empty, `.` or `..` segment
/// (`a//b`, `team/../admin`), which a URL would drop or resolve into another path.
fn bad_segment(what: &str, value: &str) -> Option<String> {
    let trimmed = value.trim_matches('/');
    trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        .then(|| {
            format!(
                "the Vault {what} `{value}` has an empty, `.` or `..` segment, which would read another path; write the plain path"
            )
        })
}

/// What a struct gives its fields: the path and `path_env` of those that
/// name only a `key`, and the prefix of default env fallback names.
pub struct Defaults<'a> {
    pub path: Option<&'a LitStr>,
    pub path_env: Option<&'a LitStr>,
    pub env_prefix: Option<&'a LitStr>,
}

/// What field `ident` is, once its attributes agree; `None` after reporting why not.
pub fn field_kind(
    ident: &Ident,
    mut args: FieldArgs,
    optional: bool,
    map: bool,
    defaults: &Defaults,
    cx: &Ctxt,
) -> Option<Kind> {
    let Some(any) = args.any else {
        return (!args.failed).then_some(Kind::Plain);
    };
    if args.failed {
        return None;
    }
    if let Some(flag) = args.nested.take() {
        return nested(&flag, &args, optional, cx);
    }
    if let Some(pki) = args.pki.take() {
        return issued(&pki, args, cx);
    }
    if let Some(stray) = [&args.common_name, &args.alt_names, &args.ip_sans]
        .into_iter()
        .flatten()
        .next()
    {
        cx.error_spanned_by(
            stray,
            "common_name, alt_names and ip_sans ask a PKI role for a certificate: they go with pki = \"pki/issue/<role>\"",
        );
        return None;
    }
    let json = args.json.take();
    let names_vault = args.dynamic.is_some()
        || args.shorthand.is_some()
        || args.path.is_some()
        || args.key.is_some();
    if !names_vault {
        if let Some(env) = args.env.take() {
            return env_only(env, json.is_some(), args, optional, cx);
        }
    }
    let kind = match args.dynamic.take() {
        Some(path) => dynamic(&path, args, optional, cx),
        None => vault(args, any, optional, defaults, cx),
    }?;
    let kind = with_json(kind, json.as_ref(), cx)?;
    let kind = whole_secret(kind, map, cx)?;
    default_env(kind, ident, defaults.env_prefix, cx)
}

/// `#[vault(env = "PORT")]` with no path, key or dynamic path: a field only
/// env fills, read at load and never from Vault, so nothing that acts on a
/// Vault read goes with it.
fn env_only(env: LitStr, json: bool, args: FieldArgs, optional: bool, cx: &Ctxt) -> Option<Kind> {
    let name = env.value();
    if name.is_empty() {
        cx.error_spanned_by(
            &env,
            "`no_env` (or an empty `env`) on a field with no Vault key: it would read nothing; add path = \"...\", key = \"...\", or name the variable, env = \"LOG_LEVEL\"",
        );
        return None;
    }
    if name.contains(|c: char| c == '=' || c == '\0' || c.is_whitespace()) {
        cx.error_spanned_by(
            &env,
            format!(
                "`{}` is not an env var name: no `=`, spaces or NUL",
                name.escape_debug()
            ),
        );
        return None;
    }
    let conflicts = [
        args.path_env.as_ref().map(|l| (l.span(), "path_env")),
        args.version.map(|(_, s)| (s, "version")),
        args.ttl.map(|(_, s)| (s, "ttl")),
    ];
    let mut ok = true;
    for (span, what) in conflicts.into_iter().flatten() {
        ok = false;
        cx.error_at(
            span,
            format!("`{what}` acts on a Vault read, and a field with `env` but no path or key reads env only: drop `{what}`, or add path = \"...\", key = \"...\" to read Vault first"),
        );
    }
    if let (Some((name, _)), true) = (&args.default, optional) {
        cx.error_spanned_by(
            name,
            "`default` on an Option field: absent everywhere already means None; drop the default or the Option",
        );
        return None;
    }
    ok.then(|| {
        Kind::Env(Box::new(EnvField {
            env,
            default: args.default.map(|(_, e)| e),
            json,
        }))
    })
}

/// `#[vault(json)]` on a Vault field: one value, parsed; a whole secret is
/// already a map.
fn with_json(kind: Kind, json: Option<&Ident>, cx: &Ctxt) -> Option<Kind> {
    match (json, kind) {
        (Some(flag), Kind::Vault(src)) if src.key == "*" => {
            cx.error_spanned_by(
                flag,
                "`json` parses one value; a whole secret (`key = \"*\"`) is already a map of its keys: drop `json`",
            );
            None
        }
        (Some(_), Kind::Vault(mut src)) => {
            src.json = true;
            Some(Kind::Vault(src))
        }
        (_, kind) => Some(kind),
    }
}

/// A field without `env` falls back to its default name, which may not be a
/// variable the service's own environment already holds (`PORT`, `USER`, ...):
/// when Vault lacked the key, the field would silently take that value.
///
/// Each struct is checked on its own: a prefix an enclosing struct gives a
/// `nested` one is not known here, so such a struct sets its own `env_prefix`.
fn default_env(kind: Kind, ident: &Ident, env_prefix: Option<&LitStr>, cx: &Ctxt) -> Option<Kind> {
    let Kind::Vault(src) = &kind else {
        return Some(kind);
    };
    if src.env.is_some() || src.key == "*" {
        return Some(kind);
    }
    let prefix = env_prefix.map(LitStr::value);
    let name = env_names::default_env_name(prefix.as_deref(), &src.key);
    let Some(why) = env_names::reserved(&name) else {
        return Some(kind);
    };
    let field = ident.unraw();
    let suggested = env_names::suggested_env_name(&src.path, &name);
    let prefix_fix = match &prefix {
        Some(p) => format!("change the struct's env_prefix = \"{p}\""),
        None => "set #[vault(env_prefix = \"APP_\")] on this struct (an enclosing struct's does not count here)".to_owned(),
    };
    cx.error_at(
        src.key_span,
        format!(
            "field `{field}` falls back to env `{name}` by default, which is {why}: when Vault lacks `{}#{}`, the service would silently run on that value; name the variable, e.g. env = \"{suggested}\", or {prefix_fix}",
            src.path, src.key
        ),
    );
    None
}

/// `key = "*"` takes every key of the secret: a map, or a type that
/// deserializes from one (a struct, a `tls::Identity`), never one value; and
/// it has no env fallback.
fn whole_secret(kind: Kind, map: bool, cx: &Ctxt) -> Option<Kind> {
    let Kind::Vault(src) = &kind else {
        return Some(kind);
    };
    if src.key != "*" {
        return Some(kind);
    }
    if !map {
        cx.error_at(
            src.span,
            "`key = \"*\"` reads every key of the secret: the field must be a map (HashMap<String, SecretString>, BTreeMap<String, String>) or a type that deserializes from one (a struct, vault_config::tls::Identity), not one value",
        );
        return None;
    }
    if let Some(env) = &src.env {
        cx.error_spanned_by(
            env,
            "a whole secret (`key = \"*\"`) has no env fallback: drop `env`",
        );
        return None;
    }
    Some(kind)
}

/// `#[vault(nested)]`: nothing else, and not an Option.
fn nested(nested: &Ident, args: &FieldArgs, optional: bool, cx: &Ctxt) -> Option<Kind> {
    let mut ok = true;
    let conflicts = [
        args.shorthand.as_ref().map(Spanned::span),
        args.path.as_ref().map(Spanned::span),
        args.dynamic.as_ref().map(Spanned::span),
        args.key.as_ref().map(Spanned::span),
        args.env.as_ref().map(Spanned::span),
        args.path_env.as_ref().map(Spanned::span),
        args.default.as_ref().map(|(n, _)| n.span()),
        args.version.map(|(_, s)| s),
        args.ttl.map(|(_, s)| s),
    ];
    for span in conflicts.into_iter().flatten() {
        ok = false;
        cx.error_at(
            span,
            "`nested` cannot be combined with path, path_env, key, env, default or version: the nested struct maps its own fields",
        );
    }
    if let Some(json) = &args.json {
        ok = false;
        cx.error_spanned_by(
            json,
            "`json` parses a string value into the field's type, and a `nested` struct maps its own fields: drop `nested` to read the struct from one JSON value, or drop `json`",
        );
    }
    if optional {
        ok = false;
        cx.error_spanned_by(nested, "a `nested` field cannot be an Option");
    }
    ok.then_some(Kind::Nested)
}

/// `#[vault(pki = "pki/issue/web", common_name = "...")]`: a certificate the
/// role issues, the whole answer into the field (a `tls::Identity`, which
/// the generated code checks); `ttl`, `alt_names` and `ip_sans` may go with
/// it, nothing that names another source or a fallback.
fn issued(pki: &LitStr, args: FieldArgs, cx: &Ctxt) -> Option<Kind> {
    let conflicts = [
        args.shorthand
            .as_ref()
            .map(|l| (l.span(), "a \"path#key\"")),
        args.path.as_ref().map(|l| (l.span(), "path")),
        args.key.as_ref().map(|l| (l.span(), "key")),
        args.dynamic.as_ref().map(|l| (l.span(), "dynamic")),
        args.env.as_ref().map(|l| (l.span(), "env")),
        args.path_env.as_ref().map(|l| (l.span(), "path_env")),
        args.version.map(|(_, s)| (s, "version")),
        args.default.as_ref().map(|(n, _)| (n.span(), "default")),
        args.json.as_ref().map(|j| (j.span(), "json")),
    ];
    let mut ok = true;
    for (span, what) in conflicts.into_iter().flatten() {
        ok = false;
        cx.error_at(
            span,
            format!("`pki` fills the field with a certificate the role issues: drop {what} (a pki field takes common_name, alt_names, ip_sans and ttl)"),
        );
    }
    let path = pki.value().trim_matches('/').to_owned();
    if path.is_empty() {
        cx.error_spanned_by(
            pki,
            "the PKI issue path is empty: write pki = \"pki/issue/<role>\"",
        );
        return None;
    }
    if let Some(msg) = bad_segment("path", &path) {
        cx.error_spanned_by(pki, msg);
        return None;
    }
    if !is_issue_path(&path) {
        cx.error_spanned_by(
            pki,
            format!("`pki` takes a PKI role's issue path, `<mount>/issue/<role>` (e.g. \"pki/issue/web\", or `<mount>/issuer/<issuer>/issue/<role>`); `{path}` is not one, and a write there could change something else (a role's settings)"),
        );
        return None;
    }
    let Some(common_name) = args.common_name else {
        cx.error_spanned_by(
            pki,
            "missing `common_name`: the name the certificate is issued for, e.g. common_name = \"gateway.internal\" (the role must allow it)",
        );
        return None;
    };
    if common_name.value().trim().is_empty() {
        cx.error_spanned_by(&common_name, "the common name is empty");
        return None;
    }
    ok.then(|| {
        Kind::Vault(Box::new(Source {
            path,
            key: "*".to_owned(),
            span: pki.span(),
            key_span: pki.span(),
            env: None,
            path_env: None,
            ttl: args.ttl,
            default: None,
            version: None,
            dynamic: false,
            json: false,
            issue: Some(Issue {
                common_name,
                alt_names: args.alt_names,
                ip_sans: args.ip_sans,
            }),
        }))
    })
}

/// `<mount>/issue/<role>` or `<mount>/issuer/<issuer>/issue/<role>`: the only
/// PKI paths that issue a certificate (a write anywhere else may change the
/// engine, e.g. a role's settings). Kept in step with the runtime's check.
fn is_issue_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [.., mount, "issue", role] => !mount.is_empty() && !role.is_empty(),
        _ => false,
    }
}

/// `#[vault(dynamic = "...", key = "...")]`: the engine path is whole, so no
/// path, shorthand or version.
fn dynamic(dynamic: &LitStr, args: FieldArgs, optional: bool, cx: &Ctxt) -> Option<Kind> {
    let conflicts = [
        args.shorthand.as_ref().map(Spanned::span),
        args.path.as_ref().map(Spanned::span),
        args.version.map(|(_, s)| s),
    ];
    let mut ok = true;
    for span in conflicts.into_iter().flatten() {
        ok = false;
        cx.error_at(
            span,
            "`dynamic` names the whole secrets engine path (e.g. \"database/creds/app\"): drop path, \"path#key\" and version",
        );
    }
    let Some(key) = &args.key else {
        cx.error_spanned_by(
            dynamic,
            "missing `key`: which field of the leased credentials? add key = \"username\" (or \"password\")",
        );
        return None;
    };
    if dynamic.value().trim_matches('/').is_empty() {
        cx.error_spanned_by(dynamic, "the dynamic path is empty");
        return None;
    }
    if let Some(msg) = bad_segment("path", &dynamic.value()) {
        cx.error_spanned_by(dynamic, msg);
        return None;
    }
    if let (Some((name, _)), true) = (&args.default, optional) {
        cx.error_spanned_by(
            name,
            "`default` on an Option field: drop the default or the Option",
        );
        return None;
    }
    ok.then(|| {
        Kind::Vault(Box::new(Source {
            path: dynamic.value().trim_matches('/').to_owned(),
            key: key.value(),
            span: dynamic.span(),
            key_span: key.span(),
            env: args.env,
            path_env: args.path_env,
            ttl: args.ttl,
            default: args.default.map(|(_, e)| e),
            version: None,
            dynamic: true,
            json: false,
            issue: None,
        }))
    })
}

/// A KV `path#key`: the shorthand, both `path` and `key`, or a `key` under
/// the struct's `path`; neither empty. `path_env` is the field's own, or the
/// struct's for a field on the struct's path.
fn vault(
    args: FieldArgs,
    any: Span,
    optional: bool,
    defaults: &Defaults,
    cx: &Ctxt,
) -> Option<Kind> {
    if let Some((_, span)) = args.ttl {
        cx.error_at(
            span,
            "`ttl` asks a secrets engine for a lease's length: it goes with `dynamic = \"...\"`; KV secrets have no lease",
        );
        return None;
    }
    let mut path_env = args.path_env.clone();
    let (path, key, span, key_span) = match (&args.shorthand, &args.path, &args.key) {
        (Some(short), None, None) => match split_shorthand(short) {
            Ok((p, k)) => (p, k, short.span(), short.span()),
            Err(e) => {
                cx.syn_error(e);
                return None;
            }
        },
        (Some(short), _, _) => {
            cx.error_spanned_by(
                short,
                "write either \"path#key\" or path = ..., key = ..., not both",
            );
            return None;
        }
        (None, Some(path), Some(key)) => {
            let mut ok = true;
            for (lit, what) in [(path, "path"), (key, "key")] {
                let v = lit.value();
                if v.trim_matches('/').is_empty() {
                    ok = false;
                    cx.error_spanned_by(lit, format!("the Vault {what} is empty"));
                } else if v.contains('#') {
                    ok = false;
                    cx.error_spanned_by(lit, format!("the Vault {what} contains `#`; use the \"path#key\" shorthand or separate path and key"));
                }
            }
            if !ok {
                return None;
            }
            (
                path.value(),
                key.value(),
                path.span().join(key.span()).unwrap_or(path.span()),
                key.span(),
            )
        }
        (None, Some(path), None) => {
            cx.error_spanned_by(
                path,
                "missing `key`: which key of the secret at this path? add key = \"...\"",
            );
            return None;
        }
        (None, None, Some(key)) => match defaults.path {
            Some(path) => {
                if key.value().is_empty() {
                    cx.error_spanned_by(key, "the Vault key is empty");
                    return None;
                }
                if path_env.is_none() {
                    path_env = defaults.path_env.cloned();
                }
                (path.value(), key.value(), key.span(), key.span())
            }
            None => {
                cx.error_spanned_by(
                    key,
                    "missing `path`: where in Vault is this key? add path = \"...\" here, or #[vault(path = \"...\")] on the struct for every field that names only a key",
                );
                return None;
            }
        },
        (None, None, None) => {
            cx.error_at(
                any,
                "this #[vault] names no source: add path = \"...\", key = \"...\" (or \"path#key\"), env = \"...\" for a value only env holds, dynamic = \"...\", key = \"...\", or mark the field `nested`",
            );
            return None;
        }
    };
    if let Some(msg) = bad_segment("path", &path) {
        cx.error_at(span, msg);
        return None;
    }
    if let (Some((name, _)), true) = (&args.default, optional) {
        cx.error_spanned_by(
            name,
            "`default` on an Option field: absent everywhere already means None; drop the default or the Option",
        );
        return None;
    }
    Some(Kind::Vault(Box::new(Source {
        path,
        key,
        span,
        key_span,
        env: args.env,
        path_env,
        ttl: None,
        default: args.default.map(|(_, e)| e),
        version: args.version.map(|(v, _)| v),
        dynamic: false,
        json: false,
        issue: None,
    })))
}

fn split_shorthand(lit: &LitStr) -> syn::Result<(String, String)> {
    let text = lit.value();
    let parts: Vec<&str> = text.split('#').collect();
    let err = |msg: &str| Err(syn::Error::new_spanned(lit, msg));
    match parts.as_slice() {
        [_] => err("expected \"path#key\" (e.g. \"database#DATABASE_URL\"): there is no `#`"),
        [path, _] if path.trim_matches('/').is_empty() => {
            err("expected \"path#key\": the path before `#` is empty")
        }
        [_, ""] => err("expected \"path#key\": the key after `#` is empty"),
        [path, key] => Ok(((*path).to_owned(), (*key).to_owned())),
        _ => err("expected \"path#key\" with a single `#`"),
    }
}

/// Rules across fields: no two fields of one struct may map the same `path#key`.
pub fn across_fields(input: &Input, cx: &Ctxt) {
    // The fields of one leased path share one read, one lease: one TTL.
    let mut ttls: HashMap<&str, (u64, &syn::Ident)> = HashMap::new();
    for field in &input.fields {
        if let Kind::Vault(src) = &field.kind {
            if let (true, Some((ttl, span))) = (src.dynamic, src.ttl) {
                match ttls.get(src.path.as_str()) {
                    Some((other, first)) if *other != ttl => cx.error_at(
                        span,
                        format!(
                            "`{}` is one lease for all its fields: this ttl differs from the one on field `{first}`",
                            src.path
                        ),
                    ),
                    Some(_) => {}
                    None => {
                        ttls.insert(&src.path, (ttl, field.ident));
                    }
                }
            }
        }
    }
    // The same key of the same secret: a pinned version or a leased path is
    // another read, not a duplicate.
    // Two certificates of one role for different names are two reads.
    type Id = (String, String, Option<u64>, bool, Option<String>);
    let mut seen: HashMap<Id, &syn::Ident> = HashMap::new();
    for field in &input.fields {
        if let Kind::Vault(src) = &field.kind {
            let id = (
                src.path.trim_matches('/').to_owned(),
                src.key.clone(),
                src.version,
                src.dynamic,
                // The whole request: another name, SAN or TTL is another certificate.
                src.issue.as_ref().map(|i| {
                    let text =
                        |l: &Option<LitStr>| l.as_ref().map(LitStr::value).unwrap_or_default();
                    format!(
                        "{} {} {} {:?}",
                        i.common_name.value(),
                        text(&i.alt_names),
                        text(&i.ip_sans),
                        src.ttl.map(|(t, _)| t)
                    )
                }),
            );
            if let Some(first) = seen.get(&id) {
                cx.error_at(
                    src.span,
                    format!(
                        "`{}#{}` is already mapped to field `{first}`; each Vault key fills one field",
                        id.0, id.1
                    ),
                );
            } else {
                seen.insert(id, field.ident);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{parse_quote, DeriveInput};

    use super::*;

    /// Each field as `name: kind`, and every error message, in order.
    fn run(input: DeriveInput) -> (Vec<String>, Vec<String>) {
        let cx = Ctxt::new();
        let parsed = Input::from_syn(&input, &cx);
        if let Some(parsed) = &parsed {
            across_fields(parsed, &cx);
        }
        let fields = parsed
            .iter()
            .flat_map(|p| &p.fields)
            .map(|f| {
                let kind = match &f.kind {
                    Kind::Plain => "plain".to_owned(),
                    Kind::Nested => "nested".to_owned(),
                    Kind::Env(e) => format!(
                        "env only {}{}{}",
                        e.env.value(),
                        if e.default.is_some() { " default" } else { "" },
                        if e.json { " json" } else { "" },
                    ),
                    Kind::Vault(s) => {
                        format!(
                            "{}#{}{}{}{}{}{}",
                            s.path,
                            s.key,
                            s.version.map(|v| format!(" v{v}")).unwrap_or_default(),
                            if s.dynamic { " dynamic" } else { "" },
                            s.env
                                .as_ref()
                                .map(|e| format!(" env={}", e.value()))
                                .unwrap_or_default(),
                            if s.default.is_some() { " default" } else { "" },
                            if s.json { " json" } else { "" },
                        ) + &s
                            .issue
                            .as_ref()
                            .map(|i| format!(" pki cn={}", i.common_name.value()))
                            .unwrap_or_default()
                    }
                };
                format!("{}: {kind}", f.key)
            })
            .collect();
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (fields, errors)
    }

    fn errors(input: DeriveInput) -> Vec<String> {
        run(input).1
    }

    #[test]
    fn kinds_of_valid_fields() {
        let (fields, errors) = run(parse_quote! {
            struct S {
                plain: u16,
                #[vault("db#url")]
                r#type: String,
                #[vault(path = "db", key = "user", env = "DB_USER", version = 2)]
                user: String,
                #[vault(dynamic = "/database/creds/app/", key = "password", default = String::new())]
                password: String,
                #[vault(nested)]
                inner: Inner,
            }
        });
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            fields,
            [
                "plain: plain",
                "type: db#url",
                "user: db#user v2 env=DB_USER",
                "password: database/creds/app#password dynamic default",
                "inner: nested",
            ]
        );
    }

    #[test]
    fn nested_takes_nothing_else_and_no_option() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault(nested, path = "a", key = "b")]
                    a: Inner,
                    #[vault(nested)]
                    b: Option<Inner>,
                }
            }),
            [
                "`nested` cannot be combined with path, path_env, key, env, default or version: the nested struct maps its own fields",
                "`nested` cannot be combined with path, path_env, key, env, default or version: the nested struct maps its own fields",
                "a `nested` field cannot be an Option",
            ]
        );
    }

    #[test]
    fn dynamic_misuse() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault(dynamic = "database/creds/app", path = "database", key = "username")]
                    a: String,
                    #[vault(dynamic = "database/creds/app")]
                    b: String,
                    #[vault(dynamic = "/", key = "username")]
                    c: String,
                    #[vault(dynamic = "database/creds/app", key = "username", default = 1)]
                    d: Option<String>,
                }
            }),
            [
                "`dynamic` names the whole secrets engine path (e.g. \"database/creds/app\"): drop path, \"path#key\" and version",
                "missing `key`: which field of the leased credentials? add key = \"username\" (or \"password\")",
                "the dynamic path is empty",
                "`default` on an Option field: drop the default or the Option",
            ]
        );
    }

    #[test]
    fn env_alone_is_an_env_only_field_and_json_goes_anywhere_but_nested() {
        let (fields, errors) = run(parse_quote! {
            #[vault(path = "app", env_prefix = "APP_")]
            struct S {
                #[vault(env = "PORT", default = 8080)]
                port: u16,
                #[vault(env = "LOG_LEVEL")]
                log_level: Option<String>,
                #[vault(env = "FEATURE_FLAGS", json)]
                flags: Flags,
                #[vault(json, "app#LIMITS", env = "LIMITS")]
                limits: Limits,
                #[vault(key = "ROUTES", json)]
                routes: HashMap<String, String>,
            }
        });
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(
            fields,
            [
                "port: env only PORT default",
                "log_level: env only LOG_LEVEL",
                "flags: env only FEATURE_FLAGS json",
                "limits: app#LIMITS env=LIMITS json",
                "routes: app#ROUTES json",
            ]
        );
    }

    #[test]
    fn an_env_only_field_refuses_what_acts_on_a_vault_read() {
        let errs = errors(parse_quote! {
            struct S {
                #[vault(env = "PORT", version = 2)]
                a: u16,
                #[vault(env = "PORT", path_env = "P", ttl = "1h")]
                b: u16,
                #[vault(env = "LEVEL", default = "info")]
                c: Option<String>,
                #[vault(no_env)]
                d: String,
                #[vault(env = "A B")]
                e: String,
            }
        });
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert!(
            errs[0].starts_with("`version` acts on a Vault read"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("`path_env` acts on a Vault read"),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("`ttl` acts on a Vault read"),
            "{errs:?}"
        );
        assert!(
            errs[3].starts_with("`default` on an Option field"),
            "{errs:?}"
        );
        assert!(errs[4].contains("it would read nothing"), "{errs:?}");
        assert!(errs[5].contains("is not an env var name"), "{errs:?}");
    }

    #[test]
    fn json_conflicts() {
        let errs = errors(parse_quote! {
            struct S {
                #[vault(nested, json)]
                a: Inner,
                #[vault("app#*", json)]
                b: HashMap<String, String>,
                #[vault("app#x", json, json)]
                c: String,
                #[vault("app#y", json = true)]
                d: String,
            }
        });
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "`json` parses a string value into the field's type, and a `nested` struct"
            ),
            "{errs:?}"
        );
        assert!(errs[1].contains("a whole secret"), "{errs:?}");
        assert_eq!(errs[2], "`json` is given twice");
        assert_eq!(errs[3], "`json` takes no value: write #[vault(json)]");
    }

    #[test]
    fn default_on_option() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault("a#b", default = "none")]
                    a: Option<String>,
                }
            }),
            ["`default` on an Option field: absent everywhere already means None; drop the default or the Option"]
        );
    }

    #[test]
    fn shorthand_path_and_key() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault("a#b", path = "a")]
                    a: String,
                    #[vault(path = "a")]
                    b: String,
                    #[vault(key = "b")]
                    c: String,
                    #[vault(default = 1)]
                    d: u16,
                    #[vault(path = "/", key = "x#y")]
                    e: String,
                }
            }),
            [
                "write either \"path#key\" or path = ..., key = ..., not both",
                "missing `key`: which key of the secret at this path? add key = \"...\"",
                "missing `path`: where in Vault is this key? add path = \"...\" here, or #[vault(path = \"...\")] on the struct for every field that names only a key",
                "this #[vault] names no source: add path = \"...\", key = \"...\" (or \"path#key\"), env = \"...\" for a value only env holds, dynamic = \"...\", key = \"...\", or mark the field `nested`",
                "the Vault path is empty",
                "the Vault key contains `#`; use the \"path#key\" shorthand or separate path and key",
            ]
        );
    }

    #[test]
    fn shorthand_shapes() {
        let check = |text: &str| {
            let lit = LitStr::new(text, Span::call_site());
            split_shorthand(&lit).map_err(|e| e.to_string())
        };
        assert_eq!(check("db#url"), Ok(("db".to_owned(), "url".to_owned())));
        assert_eq!(check("/db/#url"), Ok(("/db/".to_owned(), "url".to_owned())));
        assert!(check("db").unwrap_err().contains("there is no `#`"));
        assert!(check("/#url")
            .unwrap_err()
            .contains("the path before `#` is empty"));
        assert!(check("db#")
            .unwrap_err()
            .contains("the key after `#` is empty"));
        assert!(check("a#b#c").unwrap_err().contains("with a single `#`"));
    }

    #[test]
    fn an_item_already_reported_silences_the_field() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault(path = 1)]
                    a: Option<String>,
                }
            }),
            ["`path` takes a string literal, e.g. path = \"...\""]
        );
    }

    #[test]
    fn empty_mount() {
        assert_eq!(
            errors(parse_quote! {
                #[vault(mount = "/")]
                struct S {}
            }),
            ["the mount is empty; name a KV mount, e.g. mount = \"secret\""]
        );
    }

    #[test]
    fn one_field_per_path_and_key() {
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault("db#url")]
                    a: String,
                    #[vault(path = "/db/", key = "url")]
                    b: String,
                    #[vault("db#user", env = "DB_USER")]
                    c: String,
                }
            }),
            ["`db#url` is already mapped to field `a`; each Vault key fills one field"]
        );
    }

    #[test]
    fn a_pinned_version_or_a_leased_path_is_another_read() {
        assert!(errors(parse_quote! {
            struct S {
                #[vault("db#url")]
                now: String,
                #[vault("db#url", version = 3)]
                pinned: String,
                #[vault(dynamic = "db", key = "url")]
                leased: String,
            }
        })
        .is_empty());
        assert_eq!(
            errors(parse_quote! {
                struct S {
                    #[vault("db#url", version = 3)]
                    a: String,
                    #[vault(path = "db", key = "url", version = 3)]
                    b: String,
                }
            }),
            ["`db#url` is already mapped to field `a`; each Vault key fills one field"]
        );
    }

    #[test]
    fn the_runtime_crate_can_be_renamed() {
        assert!(errors(parse_quote! {
            #[vault(crate = "::my_vault")]
            struct S {}
        })
        .is_empty());
        assert_eq!(
            errors(parse_quote! {
                #[vault(crate = "not a path")]
                struct S {}
            }),
            ["`crate` takes the path of the vault-config crate, e.g. crate = \"::vault_config\" or the name a renamed dependency has"]
        );
    }

    #[test]
    fn paths_that_would_read_another_path() {
        let errs = errors(parse_quote! {
            #[vault(prefix = "team//x")]
            struct S {
                #[vault("team/../admin#k")]
                a: String,
                #[vault(path = "./db", key = "k")]
                b: String,
                #[vault(dynamic = "database/../creds", key = "k")]
                c: String,
                #[vault("/db/#fine")]
                d: String,
            }
        });
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(
            errs.iter().all(|e| e.contains("`.` or `..` segment")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_whole_secret_needs_a_map() {
        assert!(errors(parse_quote! {
            struct S {
                #[vault(path = "gateway/api-keys", key = "*")]
                keys: std::collections::HashMap<String, String>,
                #[vault("gateway/limits#*")]
                limits: Option<BTreeMap<String, u32>>,
            }
        })
        .is_empty());
        let errs = errors(parse_quote! {
            struct S {
                #[vault(path = "gateway/api-keys", key = "*")]
                keys: Vec<String>,
                #[vault(path = "gateway/x", key = "*", env = "X")]
                x: HashMap<String, String>,
            }
        });
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("must be a map"), "{errs:?}");
        assert!(errs[1].contains("no env fallback"), "{errs:?}");
    }

    #[test]
    fn a_whole_secret_fills_a_struct_or_an_identity_too() {
        assert!(errors(parse_quote! {
            struct S {
                #[vault(path = "tls/gateway", key = "*")]
                identity: vault_config::tls::Identity,
                #[vault(path = "tls/admin", key = "*")]
                admin: Option<Identity>,
            }
        })
        .is_empty());
        for ty in [
            quote::quote!(String),
            quote::quote!(SecretString),
            quote::quote!(Option<u16>),
        ] {
            let input: DeriveInput = syn::parse2(quote::quote! {
                struct S {
                    #[vault(path = "app", key = "*")]
                    x: #ty,
                }
            })
            .unwrap();
            let errs = errors(input);
            assert!(
                errs.len() == 1 && errs[0].contains("must be a map"),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn a_pki_field_names_its_role_and_common_name() {
        let (fields, errs) = run(parse_quote! {
            struct S {
                #[vault(pki = "/pki/issue/web/", common_name = "gateway.internal", ttl = "24h", alt_names = "a,b", ip_sans = "127.0.0.1")]
                tls: Identity,
                #[vault(pki = "pki/issue/web", common_name = "admin.internal")]
                admin: Option<Identity>,
            }
        });
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            fields,
            [
                "tls: pki/issue/web#* pki cn=gateway.internal",
                "admin: pki/issue/web#* pki cn=admin.internal"
            ]
        );
        let errs = errors(parse_quote! {
            struct S {
                #[vault(pki = "pki/issue/web")]
                a: Identity,
                #[vault(pki = "pki/issue/web", common_name = "x", key = "certificate", env = "TLS")]
                b: Identity,
                #[vault(path = "tls", key = "*", common_name = "x")]
                c: Identity,
                #[vault(pki = "pki/roles/web", common_name = "x")]
                d: Identity,
                #[vault(pki = "pki/issue/web", common_name = "x")]
                e: Identity,
                #[vault(pki = "pki/issue/web", common_name = "x")]
                f: Identity,
            }
        });
        assert_eq!(errs.len(), 6, "{errs:?}");
        assert!(errs[0].starts_with("missing `common_name`"), "{errs:?}");
        assert!(
            errs[1].contains("drop key") && errs[2].contains("drop env"),
            "{errs:?}"
        );
        assert!(errs[3].contains("go with pki"), "{errs:?}");
        assert!(
            errs[4].contains("is not one, and a write there"),
            "{errs:?}"
        );
        assert!(errs[5].contains("already mapped to field `e`"), "{errs:?}");
    }

    #[test]
    fn keys_under_the_struct_path_and_path_env() {
        assert!(errors(parse_quote! {
            #[vault(path = "aionos/db-main", path_env = "AION_DB_SECRET_PATH")]
            struct Db {
                #[vault(key = "username")]
                username: String,
                #[vault("other#x", path_env = "OTHER_PATH")]
                other: String,
            }
        })
        .is_empty());
        assert_eq!(
            errors(parse_quote! {
                #[vault(path_env = "AION_DB_SECRET_PATH")]
                struct Db {
                    #[vault("db#x")]
                    x: String,
                }
            }),
            ["`path_env` moves the struct's `path` at load time: add path = \"...\", the default it replaces"]
        );
    }

    #[test]
    fn a_lease_ttl_goes_with_a_leased_path_and_agrees() {
        assert!(errors(parse_quote! {
            struct S {
                #[vault(dynamic = "database/creds/app", key = "username", ttl = "1h")]
                u: String,
                #[vault(dynamic = "database/creds/app", key = "password", ttl = "3600")]
                p: String,
            }
        })
        .is_empty());
        let errs = errors(parse_quote! {
            struct S {
                #[vault(dynamic = "database/creds/app", key = "username", ttl = "1h")]
                u: String,
                #[vault(dynamic = "database/creds/app", key = "password", ttl = "2h")]
                p: String,
                #[vault(dynamic = "database/creds/other", key = "password", ttl = "soon")]
                q: String,
            }
        });
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("takes a duration"), "{errs:?}");
        assert!(
            errs[1].contains("this ttl differs from the one on field `u`"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_default_env_name_the_environment_already_holds_is_refused() {
        let errs = errors(parse_quote! {
            struct S {
                #[vault("database#user")]
                user: String,
                #[vault(path = "database", key = "port")]
                port: u16,
                #[vault(dynamic = "database/creds/app", key = "home")]
                r#home: String,
                #[vault("database#DATABASE_URL")]
                url: String,
            }
        });
        assert_eq!(
            errs,
            [
                "field `user` falls back to env `USER` by default, which is the login name on every Unix: when Vault lacks `database#user`, the service would silently run on that value; name the variable, e.g. env = \"DATABASE_USER\", or set #[vault(env_prefix = \"APP_\")] on this struct (an enclosing struct's does not count here)",
                "field `port` falls back to env `PORT` by default, which is the HTTP port to listen on, set by Heroku, Cloud Run, Render and most platforms: when Vault lacks `database#port`, the service would silently run on that value; name the variable, e.g. env = \"DATABASE_PORT\", or set #[vault(env_prefix = \"APP_\")] on this struct (an enclosing struct's does not count here)",
                "field `home` falls back to env `HOME` by default, which is set at login for every process: when Vault lacks `database/creds/app#home`, the service would silently run on that value; name the variable, e.g. env = \"APP_HOME\", or set #[vault(env_prefix = \"APP_\")] on this struct (an enclosing struct's does not count here)",
            ]
        );
    }

    #[test]
    fn an_explicit_env_a_prefix_or_a_whole_secret_is_allowed() {
        assert!(errors(parse_quote! {
            struct S {
                #[vault("database#port", env = "PORT")]
                port: u16,
                #[vault("database#host", env = "DATABASE_HOST")]
                host: String,
                #[vault("database#*")]
                all: HashMap<String, String>,
                #[vault("database#Port-Number")]
                port_number: u16,
            }
        })
        .is_empty());
        assert!(errors(parse_quote! {
            #[vault(env_prefix = "DB_")]
            struct S {
                #[vault("database#port")]
                port: u16,
                #[vault(path = "database", key = "user")]
                user: String,
            }
        })
        .is_empty());
        // The name is checked after the prefix and the upper-casing.
        assert_eq!(
            errors(parse_quote! {
                #[vault(env_prefix = "")]
                struct S {
                    #[vault("database#lc-all")]
                    locale: String,
                }
            }),
            ["field `locale` falls back to env `LC_ALL` by default, which is a locale setting, set by the system and container images: when Vault lacks `database#lc-all`, the service would silently run on that value; name the variable, e.g. env = \"DATABASE_LC_ALL\", or change the struct's env_prefix = \"\""]
        );
    }

    #[test]
    fn every_reserved_name_is_refused_and_says_why() {
        for name in env_names::RESERVED_ENV_NAMES {
            assert_eq!(
                env_names::default_env_name(None, &name.to_lowercase()),
                *name
            );
            let why = env_names::reserved(name).unwrap();
            assert!(!why.is_empty(), "{name}");
        }
        assert_eq!(env_names::reserved("DATABASE_PORT"), None);
        assert_eq!(
            env_names::reserved("port"),
            None,
            "env names are case-sensitive"
        );
        assert_eq!(
            env_names::suggested_env_name("/aionos/db-main/", "PORT"),
            "DB_MAIN_PORT"
        );
    }
}
