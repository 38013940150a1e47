//! The intermediate form: the struct and its fields as the attributes describe
//! them, keeping the syn nodes for spans.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, Ident, LitStr, Type};

use crate::attr::{self, Arg, Errors};

pub struct Input<'a> {
    pub ident: &'a Ident,
    pub mount: Option<LitStr>,
    pub prefix: Option<LitStr>,
    pub env_prefix: Option<LitStr>,
    pub fields: Vec<Field<'a>>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// The key serde reads it under.
    pub key: String,
    pub optional: bool,
    pub kind: Kind,
}

pub enum Kind {
    /// No `#[vault]`: filled by other figment layers.
    Plain,
    /// Mapped to a Vault `path#key`.
    Vault(Box<Source>),
    /// Another `VaultConfig` struct.
    Nested,
}

pub struct Source {
    pub path: String,
    pub key: String,
    /// Where `path#key` was written, for errors.
    pub span: Span,
    pub env: Option<LitStr>,
    pub default: Option<Expr>,
    pub version: Option<u64>,
    /// `path` is a secrets engine path that leases credentials.
    pub dynamic: bool,
}

/// Everything one field's `#[vault(...)]` said, before the rules across items.
#[derive(Default)]
struct FieldArgs {
    shorthand: Option<LitStr>,
    path: Option<LitStr>,
    dynamic: Option<LitStr>,
    key: Option<LitStr>,
    env: Option<LitStr>,
    default: Option<(Ident, Expr)>,
    version: Option<(u64, Span)>,
    nested: Option<Ident>,
    any: Option<Span>,
    /// An item was already reported: say nothing more about this field.
    failed: bool,
}

impl<'a> Input<'a> {
    pub fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Option<Self> {
        let fields = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(_) => {
                    errors.push(syn::Error::new_spanned(
                        &input.ident,
                        "VaultConfig needs named fields: a tuple struct has no field names to map",
                    ));
                    return None;
                }
                Fields::Unit => {
                    errors.push(syn::Error::new_spanned(
                        &input.ident,
                        "VaultConfig needs a struct with named fields, not a unit struct",
                    ));
                    return None;
                }
            },
            Data::Enum(e) => {
                errors.push(syn::Error::new_spanned(
                    e.enum_token,
                    "VaultConfig can only be derived for a struct with named fields, not an enum",
                ));
                return None;
            }
            Data::Union(u) => {
                errors.push(syn::Error::new_spanned(
                    u.union_token,
                    "VaultConfig can only be derived for a struct with named fields, not a union",
                ));
                return None;
            }
        };
        if !input.generics.params.is_empty() {
            errors.push(syn::Error::new_spanned(
                &input.generics,
                "VaultConfig does not support generic structs: the mapping table is static; use a concrete struct",
            ));
        }
        if let Some(span) = attr::serde_rename_all(&input.attrs) {
            errors.push(syn::Error::new(
                span,
                "VaultConfig does not follow `#[serde(rename_all)]`; rename the fields one by one with #[serde(rename = \"...\")]",
            ));
        }
        let mut out = Input {
            ident: &input.ident,
            mount: None,
            prefix: None,
            env_prefix: None,
            fields: Vec::new(),
        };
        out.struct_args(attr::vault_args(&input.attrs, errors), errors);
        for field in fields {
            if let Some(f) = Field::from_syn(field, errors) {
                out.fields.push(f);
            }
        }
        Some(out)
    }

    fn struct_args(&mut self, args: Vec<Arg>, errors: &mut Errors) {
        for arg in args {
            match arg {
                Arg::Shorthand(lit) => errors.push(syn::Error::new_spanned(
                    lit,
                    "a `path#key` belongs on a field; on the struct use mount, prefix or env_prefix",
                )),
                Arg::Flag(name) => errors.push(flag_or_unknown(&name, attr::STRUCT_KEYS, attr::FIELD_KEYS, "struct")),
                Arg::NameValue(name, value) => {
                    let slot = match name.to_string().as_str() {
                        attr::MOUNT => &mut self.mount,
                        attr::PREFIX => &mut self.prefix,
                        attr::ENV_PREFIX => &mut self.env_prefix,
                        _ => {
                            errors.push(attr::unknown(&name, attr::STRUCT_KEYS, attr::FIELD_KEYS, "struct"));
                            continue;
                        }
                    };
                    match attr::lit_str(&name, &value) {
                        Ok(lit) if slot.is_some() => errors.push(duplicate(&name, lit.span())),
                        Ok(lit) => *slot = Some(lit),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        if let Some(m) = &self.mount {
            if m.value().trim_matches('/').is_empty() {
                errors.push(syn::Error::new_spanned(
                    m,
                    "the mount is empty; name a KV mount, e.g. mount = \"secret\"",
                ));
            }
        }
    }
}

fn duplicate(name: &Ident, span: Span) -> syn::Error {
    syn::Error::new(span, format!("`{name}` is given twice"))
}

fn flag_or_unknown(name: &Ident, allowed: &[&str], other: &[&str], level: &str) -> syn::Error {
    let text = name.to_string();
    if allowed.contains(&text.as_str()) {
        return syn::Error::new_spanned(name, format!("`{text}` needs a value: {text} = ..."));
    }
    attr::unknown(name, allowed, other, level)
}

impl<'a> Field<'a> {
    fn from_syn(field: &'a syn::Field, errors: &mut Errors) -> Option<Self> {
        let ident = field.ident.as_ref()?;
        let key = attr::serde_key(field, ident, errors);
        let optional = is_option(&field.ty);
        let args = FieldArgs::collect(attr::vault_args(&field.attrs, errors), errors);
        let kind = args.into_kind(optional, errors)?;
        Some(Field {
            ident,
            ty: &field.ty,
            key,
            optional,
            kind,
        })
    }
}

impl FieldArgs {
    fn collect(args: Vec<Arg>, errors: &mut Errors) -> Self {
        let mut out = FieldArgs::default();
        for arg in args {
            match arg {
                Arg::Shorthand(lit) => {
                    out.any.get_or_insert(lit.span());
                    if out.shorthand.is_some() {
                        out.failed = true;
                        errors.push(syn::Error::new_spanned(
                            &lit,
                            "a second `path#key`; a field maps to one Vault key",
                        ));
                    } else {
                        out.shorthand = Some(lit);
                    }
                }
                Arg::Flag(name) if name == attr::NESTED => {
                    out.any.get_or_insert(name.span());
                    if out.nested.is_some() {
                        errors.push(duplicate(&name, name.span()));
                    }
                    out.nested = Some(name);
                }
                Arg::Flag(name) => errors.push(flag_or_unknown(
                    &name,
                    attr::FIELD_KEYS,
                    attr::STRUCT_KEYS,
                    "field",
                )),
                Arg::NameValue(name, value) => {
                    out.any.get_or_insert(name.span());
                    let text = name.to_string();
                    let result = match text.as_str() {
                        attr::PATH => {
                            attr::lit_str(&name, &value).map(|l| set(&mut out.path, l, &name))
                        }
                        attr::KEY => {
                            attr::lit_str(&name, &value).map(|l| set(&mut out.key, l, &name))
                        }
                        attr::DYNAMIC => {
                            attr::lit_str(&name, &value).map(|l| set(&mut out.dynamic, l, &name))
                        }
                        attr::ENV => {
                            attr::lit_str(&name, &value).map(|l| set(&mut out.env, l, &name))
                        }
                        attr::VERSION => attr::lit_version(&name, &value)
                            .map(|(v, lit)| set(&mut out.version, (v, lit.span()), &name)),
                        attr::DEFAULT => Ok(set(&mut out.default, (name.clone(), value), &name)),
                        attr::NESTED => Err(syn::Error::new_spanned(
                            &value,
                            "`nested` takes no value: write #[vault(nested)]",
                        )),
                        _ => Err(attr::unknown(
                            &name,
                            attr::FIELD_KEYS,
                            attr::STRUCT_KEYS,
                            "field",
                        )),
                    };
                    match result {
                        Ok(None) => {}
                        Ok(Some(e)) | Err(e) => {
                            out.failed = true;
                            errors.push(e);
                        }
                    }
                }
            }
        }
        out
    }

    fn into_kind(self, optional: bool, errors: &mut Errors) -> Option<Kind> {
        let Some(any) = self.any else {
            return (!self.failed).then_some(Kind::Plain);
        };
        if self.failed {
            return None;
        }
        if let Some(nested) = &self.nested {
            let mut ok = true;
            let conflicts = [
                self.shorthand.as_ref().map(Spanned::span),
                self.path.as_ref().map(Spanned::span),
                self.dynamic.as_ref().map(Spanned::span),
                self.key.as_ref().map(Spanned::span),
                self.env.as_ref().map(Spanned::span),
                self.default.as_ref().map(|(n, _)| n.span()),
                self.version.map(|(_, s)| s),
            ];
            for span in conflicts.into_iter().flatten() {
                ok = false;
                errors.push(syn::Error::new(
                    span,
                    "`nested` cannot be combined with path, key, env, default or version: the nested struct maps its own fields",
                ));
            }
            if optional {
                ok = false;
                errors.push(syn::Error::new_spanned(
                    nested,
                    "a `nested` field cannot be an Option",
                ));
            }
            return ok.then_some(Kind::Nested);
        }
        if let Some(dynamic) = &self.dynamic {
            let conflicts = [
                self.shorthand.as_ref().map(Spanned::span),
                self.path.as_ref().map(Spanned::span),
                self.version.map(|(_, s)| s),
            ];
            let mut ok = true;
            for span in conflicts.into_iter().flatten() {
                ok = false;
                errors.push(syn::Error::new(
                    span,
                    "`dynamic` names the whole secrets engine path (e.g. \"database/creds/app\"): drop path, \"path#key\" and version",
                ));
            }
            let Some(key) = &self.key else {
                errors.push(syn::Error::new_spanned(
                    dynamic,
                    "missing `key`: which field of the leased credentials? add key = \"username\" (or \"password\")",
                ));
                return None;
            };
            if dynamic.value().trim_matches('/').is_empty() {
                errors.push(syn::Error::new_spanned(
                    dynamic,
                    "the dynamic path is empty",
                ));
                return None;
            }
            if let (Some((name, _)), true) = (&self.default, optional) {
                errors.push(syn::Error::new_spanned(
                    name,
                    "`default` on an Option field: drop the default or the Option",
                ));
                return None;
            }
            return ok.then(|| {
                Kind::Vault(Box::new(Source {
                    path: dynamic.value().trim_matches('/').to_owned(),
                    key: key.value(),
                    span: dynamic.span(),
                    env: self.env,
                    default: self.default.map(|(_, e)| e),
                    version: None,
                    dynamic: true,
                }))
            });
        }
        let (path, key, span) = match (&self.shorthand, &self.path, &self.key) {
            (Some(short), None, None) => match split_shorthand(short) {
                Ok((p, k)) => (p, k, short.span()),
                Err(e) => {
                    errors.push(e);
                    return None;
                }
            },
            (Some(short), _, _) => {
                errors.push(syn::Error::new_spanned(
                    short,
                    "write either \"path#key\" or path = ..., key = ..., not both",
                ));
                return None;
            }
            (None, Some(path), Some(key)) => {
                let mut ok = true;
                for (lit, what) in [(path, "path"), (key, "key")] {
                    let v = lit.value();
                    if v.trim_matches('/').is_empty() {
                        ok = false;
                        errors.push(syn::Error::new_spanned(
                            lit,
                            format!("the Vault {what} is empty"),
                        ));
                    } else if v.contains('#') {
                        ok = false;
                        errors.push(syn::Error::new_spanned(lit, format!("the Vault {what} contains `#`; use the \"path#key\" shorthand or separate path and key")));
                    }
                }
                if !ok {
                    return None;
                }
                (
                    path.value(),
                    key.value(),
                    path.span().join(key.span()).unwrap_or(path.span()),
                )
            }
            (None, Some(path), None) => {
                errors.push(syn::Error::new_spanned(
                    path,
                    "missing `key`: which key of the secret at this path? add key = \"...\"",
                ));
                return None;
            }
            (None, None, Some(key)) => {
                errors.push(syn::Error::new_spanned(
                    key,
                    "missing `path`: where in Vault is this key? add path = \"...\"",
                ));
                return None;
            }
            (None, None, None) => {
                errors.push(syn::Error::new(
                    any,
                    "this #[vault] names no Vault key: add path = \"...\", key = \"...\" (or \"path#key\"), dynamic = \"...\", key = \"...\", or mark the field `nested`",
                ));
                return None;
            }
        };
        if let (Some((name, _)), true) = (&self.default, optional) {
            errors.push(syn::Error::new_spanned(
                name,
                "`default` on an Option field: absent everywhere already means None; drop the default or the Option",
            ));
            return None;
        }
        Some(Kind::Vault(Box::new(Source {
            path,
            key,
            span,
            env: self.env,
            default: self.default.map(|(_, e)| e),
            version: self.version.map(|(v, _)| v),
            dynamic: false,
        })))
    }
}

/// Stores `value` in an empty slot, or says it was given twice.
fn set<T>(slot: &mut Option<T>, value: T, name: &Ident) -> Option<syn::Error> {
    if slot.is_some() {
        return Some(duplicate(name, name.span()));
    }
    *slot = Some(value);
    None
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

fn is_option(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    if p.qself.is_some() {
        return false;
    }
    p.path.segments.last().is_some_and(|seg| {
        seg.ident == "Option"
            && matches!(&seg.arguments, syn::PathArguments::AngleBracketed(a) if a.args.len() == 1)
    })
}
