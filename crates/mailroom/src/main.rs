//! mailroom: the binary. Parses the command line, loads the configuration, and either
//! runs the server (`serve`) or a management command against the same store.

mod cli;
mod dns;
mod serve;

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use mailroom_config::Config;
use mailroom_store::{Rights, RightsOp, Store, StoreOptions};

use cli::{
    AclCommand, AliasCommand, Cli, Command, ConfigCommand, DomainCommand, PasswordSource,
    QueueCommand, QuotaArg, UserCommand,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mailroom: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailroom: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailroom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> Result<()> {
    match command {
        Command::Serve { test_mode } => {
            let mut config = config;
            config.test_mode.enabled |= test_mode;
            serve::serve(config).await
        }
        Command::Dkim(cmd) => dns::dkim(cmd, &open_store(&config).await?).await,
        Command::Dns(cmd) => dns::dns(cmd, &config, &open_store(&config).await?).await,
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Command::Domain(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                DomainCommand::Add { domain } => {
                    let d = store.add_domain(&domain).await?;
                    println!("added domain {}", d.name);
                }
                DomainCommand::List => {
                    for d in store.list_domains().await? {
                        println!("{}", d.name);
                    }
                }
                DomainCommand::Del { domain } => {
                    store.delete_domain(&domain).await?;
                    println!("deleted domain {domain}");
                }
            }
            Ok(())
        }
        Command::User(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                UserCommand::Add { address, password } => {
                    let password = read_password(&password, &address)?;
                    let a = store.create_account(&address, &password).await?;
                    println!("added user {}", a.address);
                }
                UserCommand::List => {
                    for a in store.list_accounts().await? {
                        println!("{}", a.address);
                    }
                }
                UserCommand::Del { address } => {
                    store.delete_account(&address).await?;
                    println!("deleted user {address}");
                }
                UserCommand::SendAsAny { address, state } => {
                    store.set_send_as_any(&address, state == "on").await?;
                    println!("{address} may send as any address: {state}");
                }
                UserCommand::Admin { address, state } => {
                    store.set_admin(&address, state == "on").await?;
                    println!("{address} is a portal administrator: {state}");
                }
                UserCommand::Quota { address, size } => {
                    let Some(account) = store.account(&address).await? else {
                        bail!("account {address:?} does not exist");
                    };
                    if let Some(size) = size {
                        let bytes = match size {
                            QuotaArg::Unlimited => None,
                            QuotaArg::Bytes(n) => Some(i64::try_from(n)?),
                        };
                        store.set_quota(&account.address, bytes).await?;
                    }
                    let usage = store.quota_usage(account.id).await?;
                    let used = mailroom_config::ByteSize(usage.used_bytes);
                    match usage.limit_bytes {
                        Some(limit) => println!(
                            "{}: {} bytes used of {} ({}, {:.1}%)",
                            account.address,
                            usage.used_bytes,
                            limit,
                            mailroom_config::ByteSize(limit),
                            100.0 * usage.used_bytes as f64 / limit.max(1) as f64
                        ),
                        None => println!(
                            "{}: {} bytes used ({used}), no quota",
                            account.address, usage.used_bytes
                        ),
                    }
                }
                UserCommand::Passwd { address, password } => {
                    if store.account(&address).await?.is_none() {
                        bail!("account {address:?} does not exist");
                    }
                    let password = read_password(&password, &address)?;
                    store.set_password(&address, &password).await?;
                    println!("password of {address} changed");
                }
            }
            Ok(())
        }
        Command::Queue(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                QueueCommand::List => {
                    let entries = store.queue_list().await?;
                    if entries.is_empty() {
                        println!("the queue is empty");
                    }
                    for e in entries {
                        let rcpts: Vec<&str> =
                            e.recipients.iter().map(|r| r.address.as_str()).collect();
                        println!(
                            "{}\t<{}>\t{}\t{} bytes\t{} attempts\tnext {}\t{}",
                            e.id,
                            e.sender,
                            rcpts.join(","),
                            e.size,
                            e.attempts,
                            when(e.next_attempt),
                            e.last_error.as_deref().unwrap_or("-")
                        );
                    }
                }
                QueueCommand::Show { id } => {
                    let entry = store
                        .queue_get(id)
                        .await?
                        .with_context(|| format!("queue entry {id} does not exist"))?;
                    println!("{}", serde_json::to_string_pretty(&entry)?);
                }
                QueueCommand::Retry { id } => {
                    store.queue_retry(id).await?;
                    println!("queue entry {id} is due now");
                }
                QueueCommand::Delete { id } => {
                    store.queue_delete(id).await?;
                    println!("deleted queue entry {id}");
                }
            }
            Ok(())
        }
        Command::Alias(cmd) => {
            let store = open_store(&config).await?;
            match cmd {
                AliasCommand::Add { alias, account } => {
                    let a = store.add_alias(&alias, &account).await?;
                    println!("added alias {} -> {}", a.address, a.account);
                }
                AliasCommand::List => {
                    for a in store.list_aliases().await? {
                        println!("{} -> {}", a.address, a.account);
                    }
                }
                AliasCommand::Del { alias } => {
                    store.delete_alias(&alias).await?;
                    println!("deleted alias {alias}");
                }
            }
            Ok(())
        }
        Command::Acl(cmd) => {
            let store = open_store(&config).await?;
            acl(&store, cmd).await
        }
    }
}

/// `mailroom acl ...`: the same store API the IMAP ACL commands use.
async fn acl(store: &Store, cmd: AclCommand) -> Result<()> {
    let (account, mailbox) = match &cmd {
        AclCommand::List { account, mailbox }
        | AclCommand::Set {
            account, mailbox, ..
        }
        | AclCommand::Delete {
            account, mailbox, ..
        } => (account, mailbox),
    };
    let Some(owner) = store.account(account).await? else {
        bail!("no account {account}");
    };
    let Some(mb) = store.mailbox(owner.id, mailbox).await? else {
        bail!("{account} has no mailbox {mailbox}");
    };
    match cmd {
        AclCommand::List { .. } => {
            println!("{} {} (owner)", owner.address, Rights::ALL);
            for entry in store.acl(mb.id).await? {
                println!("{} {}", entry.identifier, entry.rights);
            }
        }
        AclCommand::Set {
            identifier, rights, ..
        } => {
            let (op, letters) = match rights.as_bytes().first() {
                Some(b'+') => (RightsOp::Add, &rights[1..]),
                Some(b'-') => (RightsOp::Remove, &rights[1..]),
                _ => (RightsOp::Replace, rights.as_str()),
            };
            let letters = Rights::parse(letters).map_err(|c| {
                anyhow::anyhow!(
                    "{c:?} is not a right; rights are letters of lrswipkxtea (and c, d)"
                )
            })?;
            let now = store.set_acl(mb.id, &identifier, op, letters).await?;
            println!(
                "{identifier} has {} on {}'s {}",
                display(now),
                owner.address,
                mb.name
            );
        }
        AclCommand::Delete { identifier, .. } => {
            if store.delete_acl(mb.id, &identifier).await? {
                println!("deleted {identifier} from {}'s {}", owner.address, mb.name);
            } else {
                println!(
                    "{identifier} had no entry on {}'s {}",
                    owner.address, mb.name
                );
            }
        }
    }
    Ok(())
}

/// Rights for people: the letters, or `no rights`.
fn display(rights: Rights) -> String {
    if rights.is_empty() {
        "no rights".into()
    } else {
        rights.letters()
    }
}

/// Opens the store the configuration names.
pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    let mut options = StoreOptions::new(&config.data_dir);
    options.synchronous = match config.store.synchronous {
        mailroom_config::Synchronous::Full => mailroom_store::Synchronous::Full,
        mailroom_config::Synchronous::Normal => mailroom_store::Synchronous::Normal,
    };
    Store::open(&options)
        .await
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))
}

/// A password from standard input (`--password-stdin`) or typed at a prompt; never
/// from the command line, where other users of the machine could read it.
fn read_password(source: &PasswordSource, address: &str) -> Result<String> {
    let password = if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {address}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        bail!("no password: use --password-stdin, or run in a terminal to be prompted");
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// A Unix time as RFC 3339 UTC, for humans reading the queue.
fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
