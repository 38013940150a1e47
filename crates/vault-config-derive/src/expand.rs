//! Code generation, through fully-qualified paths of `::vault_config::__private`
//! (or the path `crate = "..."` names).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{DeriveInput, LitStr};

use crate::ast::{Input, Kind};
use crate::ctxt::Ctxt;
use crate::valid;

pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let parsed = Input::from_syn(input, &cx);
    if let Some(parsed) = &parsed {
        valid::across_fields(parsed, &cx);
    }
    match (cx.check(), parsed) {
        (Ok(()), Some(parsed)) => expand(&parsed),
        (Err(e), parsed) => {
            let mut out = e.to_compile_error();
            out.extend(fallback(input, runtime(parsed.as_ref())));
            out
        }
        (Ok(()), None) => fallback(input, runtime(None)),
    }
}

/// The runtime crate's path: `crate = "..."`, else `::vault_config`.
fn runtime(input: Option<&Input>) -> TokenStream {
    match input.and_then(|i| i.krate.as_ref()) {
        Some(path) => quote!(#path),
        None => quote!(::vault_config),
    }
}

fn opt_str(lit: Option<&LitStr>) -> TokenStream {
    match lit {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    }
}

fn expand(input: &Input) -> TokenStream {
    let ident = input.ident;
    let krate = runtime(Some(input));
    let mount = opt_str(input.mount.as_ref());
    let prefix = opt_str(input.prefix.as_ref());
    let env_prefix = opt_str(input.env_prefix.as_ref());
    let mut body = TokenStream::new();
    for field in &input.fields {
        let field_name = field.ident.unraw().to_string();
        let key = &field.key;
        let ty = field.ty;
        match &field.kind {
            Kind::Plain => {}
            Kind::Nested => {
                body.extend(quote_spanned! {ty.span()=>
                    <#ty as #krate::__private::VaultConfig>::__describe(
                        &__scope.nested(#field_name, #key),
                        __out,
                    );
                });
            }
            Kind::Env(env_field) => {
                let env = &env_field.env;
                let has_default = env_field.default.is_some();
                let optional = field.optional;
                let json = env_field.json;
                let type_name = ty.to_token_stream().to_string().replace(' ', "");
                body.extend(quote! {
                    __out.field(&__scope, #krate::__private::FieldDecl {
                        field: #field_name,
                        key: #key,
                        path: "",
                        secret_key: "",
                        env: ::core::option::Option::Some(#env),
                        path_env: ::core::option::Option::None,
                        ttl_secs: ::core::option::Option::None,
                        version: ::core::option::Option::None,
                        has_default: #has_default,
                        optional: #optional,
                        type_name: #type_name,
                        dynamic: false,
                        env_only: true,
                        json: #json,
                        issue: ::core::option::Option::None,
                    });
                });
                if let Some(default) = &env_field.default {
                    body.extend(quote_spanned! {default.span()=>
                        __out.default_value(&__scope, #field_name, #key, &(#default));
                    });
                }
            }
            Kind::Vault(src) => {
                let path = &src.path;
                let secret_key = &src.key;
                let env = opt_str(src.env.as_ref());
                let path_env = opt_str(src.path_env.as_ref());
                let ttl = match src.ttl {
                    Some((secs, _)) => quote!(::core::option::Option::Some(#secs)),
                    None => quote!(::core::option::Option::None),
                };
                let version = match src.version {
                    Some(v) => quote!(::core::option::Option::Some(#v)),
                    None => quote!(::core::option::Option::None),
                };
                let has_default = src.default.is_some();
                let optional = field.optional;
                let dynamic = src.dynamic;
                let json = src.json;
                let type_name = ty.to_token_stream().to_string().replace(' ', "");
                let issue = match &src.issue {
                    Some(issue) => {
                        let common_name = &issue.common_name;
                        let empty = LitStr::new("", common_name.span());
                        let alt_names = issue.alt_names.as_ref().unwrap_or(&empty);
                        let ip_sans = issue.ip_sans.as_ref().unwrap_or(&empty);
                        // A compile error on the field's type unless it is an Identity.
                        body.extend(quote_spanned! {ty.span()=>
                            #krate::__private::pki_field::<#ty>();
                        });
                        quote!(::core::option::Option::Some(#krate::__private::IssueDecl {
                            common_name: #common_name,
                            alt_names: #alt_names,
                            ip_sans: #ip_sans,
                        }))
                    }
                    None => quote!(::core::option::Option::None),
                };
                body.extend(quote! {
                    __out.field(&__scope, #krate::__private::FieldDecl {
                        field: #field_name,
                        key: #key,
                        path: #path,
                        secret_key: #secret_key,
                        env: #env,
                        path_env: #path_env,
                        ttl_secs: #ttl,
                        version: #version,
                        has_default: #has_default,
                        optional: #optional,
                        type_name: #type_name,
                        dynamic: #dynamic,
                        env_only: false,
                        json: #json,
                        issue: #issue,
                    });
                });
                if let Some(default) = &src.default {
                    body.extend(quote_spanned! {default.span()=>
                        __out.default_value(&__scope, #field_name, #key, &(#default));
                    });
                }
            }
        }
    }
    quote! {
        #[automatically_derived]
        impl #krate::__private::VaultConfig for #ident {
            fn __describe(
                __scope: &#krate::__private::Scope,
                __out: &mut #krate::__private::Description,
            ) {
                let __scope = __scope.with_attrs(#mount, #prefix, #env_prefix);
                #body
            }

            fn __type_name() -> &'static str {
                ::core::stringify!(#ident)
            }
        }
    }
}

/// After an error: an impl that keeps the rest of the user's code free of
/// follow-on "VaultConfig is not implemented" errors.
fn fallback(input: &DeriveInput, krate: TokenStream) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::__private::VaultConfig for #ident #ty_generics #where_clause {
            fn __describe(
                _: &#krate::__private::Scope,
                _: &mut #krate::__private::Description,
            ) {
            }

            fn __type_name() -> &'static str {
                ::core::stringify!(#ident)
            }
        }
    }
}
