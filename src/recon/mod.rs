//! The matching engine: transfer notifications in, allocation decisions out. Pure: no I/O, no
//! clock, no randomness, and the same input always gives the same decision.
//!
//! - [`memo`]: a memo reduced to the parent's words (diacritics, case and bank wrapping removed);
//! - [`codes`]: payment codes in a memo, valid or mistyped;
//! - [`names`]: students' names and classes in a memo;
//! - [`period`]: the months a memo names;
//! - [`amounts`]: the amounts a memo states (siblings' shares);
//! - [`engine`]: the per-school [`Index`] and [`decide`].

pub mod amounts;
pub mod codes;
pub mod duplicates;
pub mod engine;
pub mod memo;
pub mod names;
pub mod period;
pub mod statement;

pub use engine::{
    decide, Decision, Evidence, Incoming, Index, OpenInvoice, ReviewReason, Strength, Suggestion,
};
