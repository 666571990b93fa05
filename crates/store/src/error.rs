//! Errors of the store API. Protocol crates map them to protocol answers
//! (`NO [NONEXISTENT]`, `550 5.1.1`, `451 4.3.0`...), so each case says what went wrong
//! in terms a user of the store can act on.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} {name:?} does not exist")]
    NotFound { what: Entity, name: String },
    #[error("{what} {name:?} already exists")]
    AlreadyExists { what: &'static str, name: String },
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// A permanent refusal: trying again will not help (IMAP `NO [CANNOT]`).
    #[error("{0}")]
    Cannot(String),
    /// A transient fault, such as a transaction that could not be committed:
    /// the same request may succeed later (IMAP `NO [UNAVAILABLE]`, SMTP
    /// `451 4.3.0`; RFC 5530 §3 keeps `[CANNOT]` for permanent failures).
    #[error("{0}; try again later")]
    Unavailable(String),
    /// DELETE of a \\Noselect mailbox that still has inferiors (IMAP `NO [HASCHILDREN]`).
    #[error("{0} has inferior mailboxes and is already \\Noselect")]
    HasChildren(String),
    #[error("over quota")]
    OverQuota,
    #[error("password hashing failed: {0}")]
    Password(String),
    #[error("the store is shutting down")]
    Closed,
}

/// What a [`StoreError::NotFound`] did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Account,
    Alias,
    /// A DKIM signing key of a domain (its selector).
    DkimKey,
    /// An app password of an account (the portal's).
    AppPassword,
    Domain,
    /// The INBOX of an account (which every account has).
    Inbox,
    Mailbox,
    Message,
    /// The stored octets of a message.
    MessageContent,
    QueuedMessage,
    Subscription,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Account => "account",
            Entity::Alias => "alias",
            Entity::AppPassword => "app password",
            Entity::DkimKey => "DKIM key",
            Entity::Domain => "domain",
            Entity::Inbox => "INBOX of account",
            Entity::Mailbox => "mailbox",
            Entity::Message => "message",
            Entity::MessageContent => "message content",
            Entity::QueuedMessage => "queued message",
            Entity::Subscription => "subscription",
        })
    }
}

impl StoreError {
    pub(crate) fn not_found(what: Entity, name: impl Into<String>) -> Self {
        StoreError::NotFound {
            what,
            name: name.into(),
        }
    }
    pub(crate) fn exists(what: &'static str, name: impl Into<String>) -> Self {
        StoreError::AlreadyExists {
            what,
            name: name.into(),
        }
    }
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
