//! feerecon: school-fee payments in Vietnam, reconciled to the đồng, with cash on an equal
//! footing and every transaction fee itemised.

pub mod audit;
pub mod checkpoint;
pub mod config;
pub mod coverage;
pub mod domain;
pub mod error;
pub mod http;
pub mod plan;
pub mod providers;
pub mod pull;
pub mod recon;
pub mod retention;
pub mod sealer;
pub mod store;

pub use http::{app, AppState};
