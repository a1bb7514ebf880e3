//! Pure types and rules: no I/O, no async, no SQL, no HTTP.

pub mod access;
pub mod account;
pub mod catalog;
pub mod code;
pub mod fee;
pub mod import;
pub mod invoice;
pub mod ledger;
pub mod money;
pub mod parent_link;
pub mod period;
pub mod provider;
pub mod pseudonym;
pub mod text;
pub mod time;
pub mod vietqr;
pub mod words;
