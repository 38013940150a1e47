//! Rules across fields.

use std::collections::HashMap;

use crate::ast::{Input, Kind};
use crate::attr::Errors;

/// No two fields of one struct may map the same `path#key`.
pub fn check(input: &Input, errors: &mut Errors) {
    let mut seen: HashMap<(String, String), &syn::Ident> = HashMap::new();
    for field in &input.fields {
        if let Kind::Vault(src) = &field.kind {
            let id = (src.path.trim_matches('/').to_owned(), src.key.clone());
            if let Some(first) = seen.get(&id) {
                errors.push(syn::Error::new(
                    src.span,
                    format!(
                        "`{}#{}` is already mapped to field `{first}`; each Vault key fills one field",
                        id.0, id.1
                    ),
                ));
            } else {
                seen.insert(id, field.ident);
            }
        }
    }
}
