//! Derived code that must compile, and what it produces: hygiene under no
//! prelude and under local items that shadow the names generated code uses.
//! Compiled as part of the suite rather than by trybuild, so the compile-fail
//! suite only has to `cargo check`.

#[no_implicit_prelude]
mod no_implicit_prelude;
mod renamed_crate;
mod shadowed_names;
