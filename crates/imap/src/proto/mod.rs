//! The IMAP grammar, apart from I/O and session logic: command types, the parser,
//! response encoding and modified UTF-7 mailbox names.

pub mod encode;
pub mod parse;
pub mod types;
pub mod utf7;

pub use parse::{ParseError, parse_command};
pub use types::*;
