//! Integration tests through the HTTP API, each on SQLite and PostgreSQL.

mod helpers;

mod access;
mod accounts;
mod audit;
mod basics;
mod cli;
mod corpus;
mod database;
mod import;
mod intake;
mod invariant;
mod invoices;
mod isolation;
mod ledger;
mod openapi;
mod parents;
mod privacy;
mod pulls;
mod recon;
mod reports;
mod roles;
mod sessions;
mod webhooks;
