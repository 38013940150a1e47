//! The error collector, after serde_derive's `internals/ctxt.rs`: every stage
//! reports into one [`Ctxt`], so a single expansion shows all the mistakes at
//! once instead of only the first.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use proc_macro2::Span;
use quote::ToTokens;

/// Errors collected across the input, reported together by [`Ctxt::check`].
///
/// Dropping a `Ctxt` whose errors were never checked panics: an error pushed
/// and then forgotten would let invalid input expand silently.
pub struct Ctxt {
    /// `None` once [`check`](Self::check) has taken the errors.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// An error pointing at `obj`'s tokens.
    pub fn error_spanned_by<A: ToTokens, T: Display>(&self, obj: A, msg: T) {
        self.syn_error(syn::Error::new_spanned(obj.into_token_stream(), msg));
    }

    /// An error at `span`.
    pub fn error_at<T: Display>(&self, span: Span, msg: T) {
        self.syn_error(syn::Error::new(span, msg));
    }

    /// An error built elsewhere (e.g. by syn's parser).
    pub fn syn_error(&self, err: syn::Error) {
        match self.errors.borrow_mut().as_mut() {
            Some(errors) => errors.push(err),
            None => panic!("vault-config-derive: an error reported after Ctxt::check"),
        }
    }

    /// All the errors, combined in the order they were reported.
    pub fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().unwrap_or_default();
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for rest in errors {
            combined.combine(rest);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !thread::panicking() && self.errors.borrow().is_some() {
            panic!("vault-config-derive: a Ctxt was dropped without checking its errors");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_combines_in_order() {
        let cx = Ctxt::new();
        cx.error_at(Span::call_site(), "first");
        cx.syn_error(syn::Error::new(Span::call_site(), "second"));
        let messages: Vec<String> = cx
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn check_without_errors_is_ok() {
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "without checking its errors")]
    fn unchecked_drop_panics() {
        let _cx = Ctxt::new();
    }
}
