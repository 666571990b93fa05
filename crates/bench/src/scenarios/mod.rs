//! One module per scenario. Each has clap `Args`, an async `run` returning a
//! serialisable report that implements [`crate::report::Outcome`], and a line in
//! `main.rs`'s `Scenario` enum.

pub mod imap;
pub mod imap_idle;
pub mod smtp_deliver;
pub mod store_deliver;
pub mod store_size;
pub mod tls;
