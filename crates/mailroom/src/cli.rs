//! The command line: `mailroom serve` and the management commands that work on the
//! same store, even while `serve` runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mailroom",
    version,
    about = "One binary that is both post office and carrier: SMTP in, SQLite store, IMAP out."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./mailroom.toml if present.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: every configured listener, on one store.
    Serve {
        /// Test mode (as `[test_mode] enabled = true`): accept every recipient, create
        /// accounts on first use, serve the test API. Never in production.
        #[arg(long)]
        test_mode: bool,
    },
    /// Local mail domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// User accounts (login = primary address).
    #[command(subcommand)]
    User(UserCommand),
    /// Further addresses delivering to an account; `@domain` is the catch-all.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// The outbound queue: mail waiting to be relayed.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Who may use a mailbox besides its owner (IMAP ACL, RFC 4314): shared and
    /// workgroup mailboxes.
    #[command(subcommand)]
    Acl(AclCommand),
    /// DKIM signing keys of the local domains (RFC 6376, RFC 8463).
    #[command(subcommand)]
    Dkim(crate::dns::DkimCommand),
    /// The DNS records a domain needs.
    #[command(subcommand)]
    Dns(crate::dns::DnsCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages: id, sender, recipients, attempts, next attempt, last error.
    List,
    /// Show one queued message in full (JSON), with its recipients' last responses.
    Show { id: i64 },
    /// Make a queued message due now (the relay worker picks it up at once).
    Retry { id: i64 },
    /// Remove a message from the queue without delivering it (no bounce is sent).
    Delete { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Show the access control list of ACCOUNT's MAILBOX (the owner has every right).
    List { account: String, mailbox: String },
    /// Grant IDENTIFIER (an account address, `anyone` or `authenticated`) RIGHTS on
    /// ACCOUNT's MAILBOX: letters of `lrswipkxtea` (`c` = `kx`, `d` = `et`); exactly
    /// these, or `+letters` to add and `-letters` to remove. Empty rights remove the
    /// entry.
    Set {
        account: String,
        mailbox: String,
        identifier: String,
        #[arg(allow_hyphen_values = true)]
        rights: String,
    },
    /// Remove IDENTIFIER's entry from ACCOUNT's MAILBOX.
    Delete {
        account: String,
        mailbox: String,
        identifier: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Receive mail for DOMAIN.
    Add { domain: String },
    /// List local domains.
    List,
    /// Delete DOMAIN with all its accounts and their mail.
    Del { domain: String },
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account with the default mailboxes; the domain must exist.
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List accounts.
    List,
    /// Delete an account with its mailboxes and mail.
    Del { address: String },
    /// Allow (`on`) or stop (`off`) an account sending as any address on submission
    /// (for administrators and system senders; others may send only as their own
    /// addresses and aliases).
    SendAsAny {
        address: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Make the account an administrator of the web portal (domains, accounts,
    /// aliases, the queue, server status), or stop it being one.
    Admin {
        address: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Show an account's storage use and quota, or set the quota: a size such as
    /// `500M` or `2G` (IMAP QUOTA reports it; APPEND, COPY and delivery beyond it
    /// are refused), or `none` for no limit.
    Quota {
        address: String,
        #[arg(value_parser = parse_quota)]
        size: Option<QuotaArg>,
    },
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS (`name@domain`, or `@domain` for a catch-all) to ACCOUNT.
    Add { alias: String, account: String },
    /// List aliases.
    List,
    /// Delete an alias.
    Del { alias: String },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, file, environment), secrets masked.
    Show,
}

/// The size argument of `user quota`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaArg {
    Unlimited,
    Bytes(u64),
}

fn parse_quota(text: &str) -> Result<QuotaArg, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(QuotaArg::Unlimited);
    }
    let size = mailroom_config::ByteSize::parse(text)?;
    if i64::try_from(size.0).is_err() {
        return Err(format!("{text:?} is too large"));
    }
    Ok(QuotaArg::Bytes(size.0))
}
