//! The command table: every command form a client may send, with the states it
//! is valid in, whether untagged EXPUNGE may follow it, what literals framing
//! lets through for it and its grammar entry.
//!
//! Framing (`connection.rs`), parsing (`parse_command`), the state check and the
//! EXPUNGE rule of the session and the metric labels are all read from this one
//! table, so a new command is one entry here plus its parser and handler; a form
//! that is missing here is unknown everywhere at once instead of half-known.

use super::parse::{PResult, Parser};
use super::types::CommandBody;

/// The RFC 9051 §3 states a command is valid in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Any state (CAPABILITY, NOOP, LOGOUT, ID).
    Any,
    /// Before authentication only (LOGIN, AUTHENTICATE, STARTTLS).
    NotAuthenticated,
    /// Authenticated with no mailbox selected (ENABLE, RFC 5161 §3.1).
    AuthenticatedOnly,
    /// Authenticated or Selected (RFC 9051 §6.3).
    Authenticated,
    /// Selected only (RFC 9051 §6.4).
    Selected,
}

/// The session states, as the table sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    NotAuthenticated,
    Authenticated,
    Selected,
}

impl States {
    pub fn allow(self, state: StateKind) -> bool {
        match self {
            States::Any => true,
            States::NotAuthenticated => state == StateKind::NotAuthenticated,
            States::AuthenticatedOnly => state == StateKind::Authenticated,
            States::Authenticated => state != StateKind::NotAuthenticated,
            States::Selected => state == StateKind::Selected,
        }
    }
}

/// What literals framing accepts in a command (RFC 9051 §4.3, RFC 7888).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literals {
    /// The command takes no arguments, so no literal.
    None,
    /// Strings up to the line limit (`[limits] max_line_length`).
    Strings,
    /// Messages up to `[limits] max_message_size` (APPEND).
    Messages,
}

/// One command form.
#[derive(Debug)]
pub struct CommandSpec {
    /// The name as clients write it, `UID ` included; also the name in logs and
    /// the `command` label of metrics.
    pub name: &'static str,
    pub states: States,
    /// Whether untagged EXPUNGE may be sent when it ends. Not after a command
    /// that addresses messages by sequence number (FETCH, STORE, SEARCH, COPY,
    /// MOVE, SORT, THREAD): the client could not tell which messages its
    /// numbers meant (RFC 9051 §7.5.1).
    pub expunge: bool,
    pub literals: Literals,
    /// The grammar of the arguments, after the name.
    pub parse: fn(&mut Parser<'_>) -> PResult<CommandBody>,
}

impl PartialEq for CommandSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CommandSpec {}

/// Shorthand for the table.
const fn spec(
    name: &'static str,
    states: States,
    expunge: bool,
    literals: Literals,
    parse: fn(&mut Parser<'_>) -> PResult<CommandBody>,
) -> CommandSpec {
    CommandSpec {
        name,
        states,
        expunge,
        literals,
        parse,
    }
}

use Literals::{Messages, Strings};
use States::{Any, Authenticated, AuthenticatedOnly, NotAuthenticated, Selected};

/// Every command form we understand.
pub const COMMANDS: &[CommandSpec] = &[
    // Any state (RFC 9051 §6.1).
    spec("CAPABILITY", Any, true, Literals::None, |_| {
        Ok(CommandBody::Capability)
    }),
    spec("NOOP", Any, true, Literals::None, |_| Ok(CommandBody::Noop)),
    spec("LOGOUT", Any, true, Literals::None, |_| {
        Ok(CommandBody::Logout)
    }),
    spec("ID", Any, true, Strings, |p| p.id()),
    // Not authenticated (RFC 9051 §6.2).
    spec("STARTTLS", NotAuthenticated, true, Literals::None, |_| {
        Ok(CommandBody::StartTls)
    }),
    spec("LOGIN", NotAuthenticated, true, Strings, |p| p.login()),
    spec("AUTHENTICATE", NotAuthenticated, true, Strings, |p| {
        p.authenticate()
    }),
    // Authenticated (RFC 9051 §6.3).
    spec("ENABLE", AuthenticatedOnly, true, Strings, |p| p.enable()),
    spec("NAMESPACE", Authenticated, true, Literals::None, |_| {
        Ok(CommandBody::Namespace)
    }),
    spec("SELECT", Authenticated, true, Strings, |p| p.select(false)),
    spec("EXAMINE", Authenticated, true, Strings, |p| p.select(true)),
    spec("CREATE", Authenticated, true, Strings, |p| p.create()),
    spec("DELETE", Authenticated, true, Strings, |p| p.delete()),
    spec("RENAME", Authenticated, true, Strings, |p| p.rename()),
    spec("SUBSCRIBE", Authenticated, true, Strings, |p| {
        p.subscribe(true)
    }),
    spec("UNSUBSCRIBE", Authenticated, true, Strings, |p| {
        p.subscribe(false)
    }),
    spec("LIST", Authenticated, true, Strings, |p| p.list()),
    spec("LSUB", Authenticated, true, Strings, |p| p.lsub()),
    spec("STATUS", Authenticated, true, Strings, |p| p.status()),
    spec("APPEND", Authenticated, true, Messages, |p| p.append()),
    spec("IDLE", Authenticated, true, Literals::None, |_| {
        Ok(CommandBody::Idle)
    }),
    // ACL (RFC 4314 §3).
    spec("SETACL", Authenticated, true, Strings, |p| p.set_acl()),
    spec("DELETEACL", Authenticated, true, Strings, |p| {
        p.delete_acl()
    }),
    spec("GETACL", Authenticated, true, Strings, |p| p.get_acl()),
    spec("LISTRIGHTS", Authenticated, true, Strings, |p| {
        p.list_rights()
    }),
    spec("MYRIGHTS", Authenticated, true, Strings, |p| p.my_rights()),
    // QUOTA (RFC 9208 §4.1).
    spec("GETQUOTA", Authenticated, true, Strings, |p| p.get_quota()),
    spec("GETQUOTAROOT", Authenticated, true, Strings, |p| {
        p.get_quota_root()
    }),
    spec("SETQUOTA", Authenticated, true, Strings, |p| p.set_quota()),
    // Selected (RFC 9051 §6.4).
    spec("CHECK", Selected, true, Literals::None, |_| {
        Ok(CommandBody::Check)
    }),
    spec("CLOSE", Selected, true, Literals::None, |_| {
        Ok(CommandBody::Close)
    }),
    spec("UNSELECT", Selected, true, Literals::None, |_| {
        Ok(CommandBody::Unselect)
    }),
    spec("EXPUNGE", Selected, true, Literals::None, |_| {
        Ok(CommandBody::Expunge { uids: None })
    }),
    spec("UID EXPUNGE", Selected, true, Strings, |p| p.uid_expunge()),
    spec("SEARCH", Selected, false, Strings, |p| p.search(false)),
    spec("UID SEARCH", Selected, true, Strings, |p| p.search(true)),
    spec("FETCH", Selected, false, Strings, |p| p.fetch(false)),
    spec("UID FETCH", Selected, true, Strings, |p| p.fetch(true)),
    spec("STORE", Selected, false, Strings, |p| p.store(false)),
    spec("UID STORE", Selected, true, Strings, |p| p.store(true)),
    spec("COPY", Selected, false, Strings, |p| p.copy(false, false)),
    spec("UID COPY", Selected, true, Strings, |p| p.copy(true, false)),
    spec("MOVE", Selected, false, Strings, |p| p.copy(false, true)),
    spec("UID MOVE", Selected, true, Strings, |p| p.copy(true, true)),
    // SORT and THREAD (RFC 5256).
    spec("SORT", Selected, false, Strings, |p| p.sort(false)),
    spec("UID SORT", Selected, true, Strings, |p| p.sort(true)),
    spec("THREAD", Selected, false, Strings, |p| p.thread(false)),
    spec("UID THREAD", Selected, true, Strings, |p| p.thread(true)),
];

/// The table entry of a command name (`UID` forms as `UID FETCH`), any case.
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The entry for a name and, when it is `UID`, the word after it.
pub fn find_words(first: &str, second: Option<&str>) -> Option<&'static CommandSpec> {
    if first.eq_ignore_ascii_case("UID") {
        let sub = second?;
        COMMANDS.iter().find(|c| {
            c.name
                .strip_prefix("UID ")
                .is_some_and(|n| n.eq_ignore_ascii_case(sub))
        })
    } else {
        find(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_upper_case() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert_eq!(c.name, c.name.to_ascii_uppercase());
            assert!(
                COMMANDS[i + 1..].iter().all(|d| d.name != c.name),
                "{} twice",
                c.name
            );
        }
    }

    #[test]
    fn uid_forms_never_forbid_expunge() {
        for c in COMMANDS.iter().filter(|c| c.name.starts_with("UID ")) {
            assert!(c.expunge, "{}", c.name);
            // Its sequence-number form exists, except UID EXPUNGE whose plain
            // form takes no set.
            assert!(find(&c.name[4..]).is_some(), "{}", c.name);
        }
    }

    #[test]
    fn lookup() {
        assert_eq!(
            find_words("uid", Some("fetch")).map(|c| c.name),
            Some("UID FETCH")
        );
        assert_eq!(find_words("getacl", None).map(|c| c.name), Some("GETACL"));
        assert!(find_words("UID", Some("NOOP")).is_none());
        assert!(find_words("UID", None).is_none());
        assert!(find("FROB").is_none());
    }
}
