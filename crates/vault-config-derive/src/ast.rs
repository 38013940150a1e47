//! The intermediate form: the struct and its fields as the attributes describe
//! them, keeping the syn nodes for spans.
//!
//! [`Input::from_syn`] turns the syn tree into this form, collecting each
//! attribute's raw value into [`FieldArgs`]; which values may go together is
//! decided in `valid`, one field at a time, so the errors read in field order.

use proc_macro2::Span;
use syn::{Data, DeriveInput, Expr, Fields, Ident, LitStr, Type};

use crate::attr::{self, Arg};
use crate::ctxt::Ctxt;
use crate::valid;

pub struct Input<'a> {
    pub ident: &'a Ident,
    pub mount: Option<LitStr>,
    pub prefix: Option<LitStr>,
    pub env_prefix: Option<LitStr>,
    /// `path = "..."`: the path of fields that name only a `key`.
    pub path: Option<LitStr>,
    /// `path_env = "..."`: an env var that, when set, replaces `path`.
    pub path_env: Option<LitStr>,
    /// `crate = "..."`: the path of the runtime crate, when renamed.
    pub krate: Option<syn::Path>,
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
    /// No `#[vault]`: filled by its default or other configuration layers.
    Plain,
    /// Mapped to a Vault `path#key`.
    Vault(Box<Source>),
    /// Another `VaultConfig` struct.
    Nested,
    /// `#[vault(env = "PORT")]` alone: read from that variable, never from Vault.
    Env(Box<EnvField>),
}

/// A field only env fills.
pub struct EnvField {
    pub env: LitStr,
    pub default: Option<Expr>,
    /// `#[vault(json)]`: a string value is parsed as JSON.
    pub json: bool,
}

pub struct Source {
    pub path: String,
    pub key: String,
    /// Where `path#key` was written, for errors.
    pub span: Span,
    /// Where the key was written: the `key = "..."` value, or the shorthand.
    pub key_span: Span,
    pub env: Option<LitStr>,
    /// An env var that, when set at load time, replaces `path`.
    pub path_env: Option<LitStr>,
    /// The lease TTL asked for (`ttl = "1h"`, leased paths only), in seconds.
    pub ttl: Option<(u64, Span)>,
    pub default: Option<Expr>,
    pub version: Option<u64>,
    /// `path` is a secrets engine path that leases credentials.
    pub dynamic: bool,
    /// `#[vault(json)]`: a string value is parsed as JSON.
    pub json: bool,
    /// `#[vault(pki = "...", common_name = "...")]`: `path` is the PKI role's
    /// issue path and `key` is `*` (the whole answer).
    pub issue: Option<Issue>,
}

/// What a `pki` field asks its role for.
pub struct Issue {
    pub common_name: LitStr,
    pub alt_names: Option<LitStr>,
    pub ip_sans: Option<LitStr>,
}

/// Everything one field's `#[vault(...)]` said, before the rules across items.
#[derive(Default)]
pub struct FieldArgs {
    pub shorthand: Option<LitStr>,
    pub path: Option<LitStr>,
    pub dynamic: Option<LitStr>,
    pub path_env: Option<LitStr>,
    pub ttl: Option<(u64, Span)>,
    pub key: Option<LitStr>,
    pub env: Option<LitStr>,
    pub default: Option<(Ident, Expr)>,
    pub version: Option<(u64, Span)>,
    pub nested: Option<Ident>,
    /// `json`: parse a string value as JSON.
    pub json: Option<Ident>,
    /// `pki = "pki/issue/web"` and what goes with it.
    pub pki: Option<LitStr>,
    pub common_name: Option<LitStr>,
    pub alt_names: Option<LitStr>,
    pub ip_sans: Option<LitStr>,
    /// Where the first item was written.
    pub any: Option<Span>,
    /// An item was already reported: say nothing more about this field.
    pub failed: bool,
}

impl<'a> Input<'a> {
    pub fn from_syn(input: &'a DeriveInput, cx: &Ctxt) -> Option<Self> {
        let fields = match &input.data {
            Data::Struct(s) => match &s.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(_) => {
                    cx.error_spanned_by(
                        &input.ident,
                        "VaultConfig needs named fields: a tuple struct has no field names to map",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "VaultConfig needs a struct with named fields, not a unit struct",
                    );
                    return None;
                }
            },
            Data::Enum(e) => {
                cx.error_spanned_by(
                    e.enum_token,
                    "VaultConfig can only be derived for a struct with named fields, not an enum",
                );
                return None;
            }
            Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "VaultConfig can only be derived for a struct with named fields, not a union",
                );
                return None;
            }
        };
        if !input.generics.params.is_empty() {
            cx.error_spanned_by(
                &input.generics,
                "VaultConfig does not support generic structs: the mapping table is static; use a concrete struct",
            );
        }
        if let Some(span) = attr::serde_rename_all(&input.attrs) {
            cx.error_at(
                span,
                "VaultConfig does not follow `#[serde(rename_all)]`; rename the fields one by one with #[serde(rename = \"...\")]",
            );
        }
        let mut out = Input {
            ident: &input.ident,
            mount: None,
            prefix: None,
            env_prefix: None,
            path: None,
            path_env: None,
            krate: None,
            fields: Vec::new(),
        };
        out.struct_args(attr::vault_args(&input.attrs, cx), cx);
        valid::struct_args(&out, cx);
        for field in fields {
            let defaults = valid::Defaults {
                path: out.path.as_ref(),
                path_env: out.path_env.as_ref(),
                env_prefix: out.env_prefix.as_ref(),
            };
            if let Some(f) = Field::from_syn(field, &defaults, cx) {
                out.fields.push(f);
            }
        }
        Some(out)
    }

    fn struct_args(&mut self, args: Vec<Arg>, cx: &Ctxt) {
        for arg in args {
            match arg {
                Arg::Shorthand(lit) => cx.error_spanned_by(
                    lit,
                    "a `path#key` belongs on a field; on the struct use path, path_env, mount, prefix or env_prefix",
                ),
                Arg::Flag(name) => cx.syn_error(attr::flag_or_unknown(
                    &name,
                    attr::STRUCT_KEYS,
                    attr::FIELD_KEYS,
                    "struct",
                )),
                Arg::NameValue(name, value) if name == attr::CRATE => {
                    match attr::lit_str(&name, &value) {
                        Ok(lit) if self.krate.is_some() => {
                            cx.syn_error(attr::duplicate(&name, lit.span()));
                        }
                        Ok(lit) => match lit.parse::<syn::Path>() {
                            Ok(path) => self.krate = Some(path),
                            Err(_) => cx.error_spanned_by(
                                &lit,
                                "`crate` takes the path of the vault-config crate, e.g. crate = \"::vault_config\" or the name a renamed dependency has",
                            ),
                        },
                        Err(e) => cx.syn_error(e),
                    }
                }
                Arg::NameValue(name, value) => {
                    let slot = match name.to_string().as_str() {
                        attr::MOUNT => &mut self.mount,
                        attr::PREFIX => &mut self.prefix,
                        attr::ENV_PREFIX => &mut self.env_prefix,
                        attr::PATH => &mut self.path,
                        attr::PATH_ENV => &mut self.path_env,
                        _ => {
                            cx.syn_error(attr::unknown(
                                &name,
                                attr::STRUCT_KEYS,
                                attr::FIELD_KEYS,
                                "struct",
                            ));
                            continue;
                        }
                    };
                    match attr::lit_str(&name, &value) {
                        Ok(lit) if slot.is_some() => {
                            cx.syn_error(attr::duplicate(&name, lit.span()));
                        }
                        Ok(lit) => *slot = Some(lit),
                        Err(e) => cx.syn_error(e),
                    }
                }
            }
        }
    }
}

impl<'a> Field<'a> {
    fn from_syn(field: &'a syn::Field, defaults: &valid::Defaults, cx: &Ctxt) -> Option<Self> {
        let ident = field.ident.as_ref()?;
        let key = attr::serde_key(field, ident, cx);
        let optional = is_option(&field.ty);
        let map = is_map(&field.ty);
        let scalar = is_scalar(&field.ty);
        let args = FieldArgs::collect(attr::vault_args(&field.attrs, cx), cx);
        let kind = valid::field_kind(ident, args, optional, map || !scalar, defaults, cx)?;
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
    /// Sorts the items into their slots; an item given twice, of the wrong
    /// kind or unknown is reported here.
    pub fn collect(args: Vec<Arg>, cx: &Ctxt) -> Self {
        let mut out = FieldArgs::default();
        for arg in args {
            match arg {
                Arg::Shorthand(lit) => {
                    out.any.get_or_insert(lit.span());
                    if out.shorthand.is_some() {
                        out.failed = true;
                        cx.error_spanned_by(
                            &lit,
                            "a second `path#key`; a field maps to one Vault key",
                        );
                    } else {
                        out.shorthand = Some(lit);
                    }
                }
                Arg::Flag(name) if name == attr::NESTED => {
                    out.any.get_or_insert(name.span());
                    if out.nested.is_some() {
                        cx.syn_error(attr::duplicate(&name, name.span()));
                    }
                    out.nested = Some(name);
                }
                Arg::Flag(name) if name == attr::JSON => {
                    out.any.get_or_insert(name.span());
                    if out.json.is_some() {
                        out.failed = true;
                        cx.syn_error(attr::duplicate(&name, name.span()));
                    }
                    out.json = Some(name);
                }
                // No env fallback: an empty env name, as the runtime reads it.
                Arg::Flag(name) if name == attr::NO_ENV => {
                    out.any.get_or_insert(name.span());
                    if out.env.is_some() {
                        out.failed = true;
                        cx.error_spanned_by(
                            &name,
                            "`no_env` and `env` contradict each other: keep one",
                        );
                    } else {
                        out.env = Some(LitStr::new("", name.span()));
                    }
                }
                Arg::Flag(name) => cx.syn_error(attr::flag_or_unknown(
                    &name,
                    attr::FIELD_KEYS,
                    attr::STRUCT_KEYS,
                    "field",
                )),
                Arg::NameValue(name, value) => {
                    out.any.get_or_insert(name.span());
                    let text = name.to_string();
                    let result =
                        match text.as_str() {
                            attr::PATH => {
                                attr::lit_str(&name, &value).map(|l| set(&mut out.path, l, &name))
                            }
                            attr::KEY => {
                                attr::lit_str(&name, &value).map(|l| set(&mut out.key, l, &name))
                            }
                            attr::DYNAMIC => attr::lit_str(&name, &value)
                                .map(|l| set(&mut out.dynamic, l, &name)),
                            attr::ENV if out.env.as_ref().is_some_and(|e| e.value().is_empty()) => {
                                Err(syn::Error::new_spanned(
                                    &name,
                                    "`no_env` and `env` contradict each other: keep one",
                                ))
                            }
                            attr::ENV => {
                                attr::lit_str(&name, &value).map(|l| set(&mut out.env, l, &name))
                            }
                            attr::PATH_ENV => attr::lit_str(&name, &value)
                                .map(|l| set(&mut out.path_env, l, &name)),
                            attr::PKI => {
                                attr::lit_str(&name, &value).map(|l| set(&mut out.pki, l, &name))
                            }
                            attr::COMMON_NAME => attr::lit_str(&name, &value)
                                .map(|l| set(&mut out.common_name, l, &name)),
                            attr::ALT_NAMES => attr::lit_str(&name, &value)
                                .map(|l| set(&mut out.alt_names, l, &name)),
                            attr::IP_SANS => attr::lit_str(&name, &value)
                                .map(|l| set(&mut out.ip_sans, l, &name)),
                            attr::TTL => {
                                attr::lit_ttl(&name, &value).map(|t| set(&mut out.ttl, t, &name))
                            }
                            attr::VERSION => attr::lit_version(&name, &value)
                                .map(|(v, lit)| set(&mut out.version, (v, lit.span()), &name)),
                            attr::DEFAULT => {
                                Ok(set(&mut out.default, (name.clone(), value), &name))
                            }
                            attr::NESTED => Err(syn::Error::new_spanned(
                                &value,
                                "`nested` takes no value: write #[vault(nested)]",
                            )),
                            attr::NO_ENV => Err(syn::Error::new_spanned(
                                &value,
                                "`no_env` takes no value: write #[vault(no_env)]",
                            )),
                            attr::JSON => Err(syn::Error::new_spanned(
                                &value,
                                "`json` takes no value: write #[vault(json)]",
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
                            cx.syn_error(e);
                        }
                    }
                }
            }
        }
        out
    }
}

/// Stores `value` in an empty slot, or says it was given twice.
fn set<T>(slot: &mut Option<T>, value: T, name: &Ident) -> Option<syn::Error> {
    if slot.is_some() {
        return Some(attr::duplicate(name, name.span()));
    }
    *slot = Some(value);
    None
}

/// A `HashMap`, `BTreeMap` or `IndexMap` with two type arguments, or an
/// `Option` of one: a field that can hold a whole secret (`key = "*"`).
fn is_map(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(a) = &seg.arguments else {
        return false;
    };
    if seg.ident == "Option" && a.args.len() == 1 {
        return match a.args.first() {
            Some(syn::GenericArgument::Type(inner)) => is_map(inner),
            _ => false,
        };
    }
    ["HashMap", "BTreeMap", "IndexMap"]
        .iter()
        .any(|m| seg.ident == m)
        && a.args.len() >= 2
}

/// A type that holds one value, never a whole secret: a string, number,
/// bool, list or path (or an `Option` of one). Anything else (a map, a
/// struct, a `tls::Identity`) may deserialize from a secret's keys.
fn is_scalar(ty: &Type) -> bool {
    let ty = match ty {
        Type::Reference(r) => &*r.elem,
        other => other,
    };
    let Type::Path(p) = ty else {
        return matches!(ty, Type::Array(_) | Type::Slice(_) | Type::Tuple(_));
    };
    let Some(seg) = p.path.segments.last() else {
        return false;
    };
    if seg.ident == "Option" {
        if let syn::PathArguments::AngleBracketed(a) = &seg.arguments {
            if let Some(syn::GenericArgument::Type(inner)) = a.args.first() {
                return is_scalar(inner);
            }
        }
    }
    const SCALARS: &[&str] = &[
        "String",
        "str",
        "SecretString",
        "SecretBox",
        "SecretSlice",
        "Vec",
        "VecDeque",
        "HashSet",
        "BTreeSet",
        "PathBuf",
        "Url",
        "bool",
        "char",
        "u8",
        "u16",
        "u32",
        "u64",
        "u128",
        "usize",
        "i8",
        "i16",
        "i32",
        "i64",
        "i128",
        "isize",
        "f32",
        "f64",
        "Duration",
        "IpAddr",
        "SocketAddr",
    ];
    SCALARS.iter().any(|s| seg.ident == s)
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
