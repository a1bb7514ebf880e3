//! Plans: what a write becomes, decided in pure code. The store loads a snapshot of what the
//! decision needs, a function here returns the plan (what to write, which exceptions to open,
//! what each caller is told), and the store writes it in one transaction. Nothing here reads a
//! clock, a database or the network, so every plan is tested without one.
//!
//! - [`intake`]: a batch of payments (the cash desk, hand entries, notifications, statement and
//!   pulled lines): duplicates, conflicts, allocations (given, or decided by the engine), fee
//!   lines, reviews;
//! - [`fees`]: the fee lines of a cashless payment;
//! - [`queue`]: the review queue's vocabulary;
//! - [`statement`]: the three-way check of a bank statement's credits against notifications.

pub mod fees;
pub mod intake;
pub mod queue;
pub mod statement;
