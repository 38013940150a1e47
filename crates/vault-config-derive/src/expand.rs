//! Code generation, through fully-qualified paths of `::vault_config::__private`.

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
        (Err(e), _) => {
            let mut out = e.to_compile_error();
            out.extend(fallback(input));
            out
        }
        (Ok(()), None) => fallback(input),
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
                    <#ty as ::vault_config::__private::VaultConfig>::__describe(
                        &__scope.nested(#field_name, #key),
                        __out,
                    );
                });
            }
            Kind::Vault(src) => {
                let path = &src.path;
                let secret_key = &src.key;
                let env = opt_str(src.env.as_ref());
                let version = match src.version {
                    Some(v) => quote!(::core::option::Option::Some(#v)),
                    None => quote!(::core::option::Option::None),
                };
                let has_default = src.default.is_some();
                let optional = field.optional;
                let dynamic = src.dynamic;
                let type_name = ty.to_token_stream().to_string().replace(' ', "");
                body.extend(quote! {
                    __out.field(&__scope, ::vault_config::__private::FieldDecl {
                        field: #field_name,
                        key: #key,
                        path: #path,
                        secret_key: #secret_key,
                        env: #env,
                        version: #version,
                        has_default: #has_default,
                        optional: #optional,
                        type_name: #type_name,
                        dynamic: #dynamic,
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
        impl ::vault_config::__private::VaultConfig for #ident {
            fn __describe(
                __scope: &::vault_config::__private::Scope,
                __out: &mut ::vault_config::__private::Description,
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
fn fallback(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::vault_config::__private::VaultConfig for #ident #ty_generics #where_clause {
            fn __describe(
                _: &::vault_config::__private::Scope,
                _: &mut ::vault_config::__private::Description,
            ) {
            }

            fn __type_name() -> &'static str {
                ::core::stringify!(#ident)
            }
        }
    }
}
