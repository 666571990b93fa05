//! `[mta_sts]`: the MTA-STS policy (RFC 8461) this server publishes for its domains
//! at `https://mta-sts.<domain>/.well-known/mta-sts.txt`, and the `_mta-sts` TXT
//! record's `id` that tells senders when it changed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The policy mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MtaStsMode {
    /// Senders report failures (TLS-RPT) but deliver anyway: the safe start.
    #[default]
    Testing,
    /// Senders deliver only over TLS with a valid certificate to a listed MX.
    Enforce,
    /// No policy: published to withdraw a previous one.
    None,
}

impl MtaStsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Testing => "testing",
            MtaStsMode::Enforce => "enforce",
            MtaStsMode::None => "none",
        }
    }
}

/// The longest `max_age` RFC 8461 §3.2 allows: 31557600 seconds (a year).
pub const MAX_AGE_LIMIT: Duration = Duration::from_secs(31_557_600);

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtaStsConfig {
    /// `testing` (default), `enforce` or `none`.
    pub mode: MtaStsMode,
    /// How long senders may cache the policy (default a week).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The MX host names the policy allows (`*.example.org` wildcards allowed);
    /// empty means the server's `hostname`.
    pub mx: Vec<String>,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        MtaStsConfig {
            mode: MtaStsMode::Testing,
            max_age: Duration::from_secs(7 * 24 * 60 * 60),
            mx: Vec::new(),
        }
    }
}

impl MtaStsConfig {
    /// The policy file (RFC 8461 §3.2): `key: value` lines ending in CRLF.
    pub fn policy(&self, hostname: &str) -> String {
        let mut out = format!("version: STSv1\r\nmode: {}\r\n", self.mode.as_str());
        if self.mx.is_empty() {
            out.push_str(&format!("mx: {}\r\n", hostname.trim_end_matches('.')));
        } else {
            for mx in &self.mx {
                out.push_str(&format!("mx: {}\r\n", mx.trim().trim_end_matches('.')));
            }
        }
        out.push_str(&format!("max_age: {}\r\n", self.max_age.as_secs()));
        out
    }

    /// The `id=` of the `_mta-sts` TXT record (RFC 8461 §3.1: 1 to 32 letters and
    /// digits): derived from the policy text, so it changes exactly when the policy
    /// does and senders fetch the new one.
    pub fn policy_id(&self, hostname: &str) -> String {
        // FNV-1a: stable across versions and platforms; this is change detection,
        // not security.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.policy(hostname).bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    /// Checks the keys: `max_age` within RFC 8461's limit, MX patterns non-empty.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.max_age > MAX_AGE_LIMIT {
            return Err(format!(
                "`mta_sts.max_age` must be at most {} seconds (a year, RFC 8461 §3.2)",
                MAX_AGE_LIMIT.as_secs()
            ));
        }
        if let Some(bad) = self.mx.iter().find(|m| {
            let m = m.trim();
            m.is_empty() || m.contains(char::is_whitespace)
        }) {
            return Err(format!("`mta_sts.mx` entry {bad:?} is not a host name"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error

    use std::path::Path;

    use super::*;
    use crate::Config;
    use figment::Jail;

    #[test]
    fn default_policy_is_testing_for_the_hostname() {
        Jail::expect_with(|jail| {
            jail.create_file("m.toml", "hostname = \"mx.example.org\"\n")?;
            let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
            assert_eq!(c.mta_sts.mode, MtaStsMode::Testing);
            assert_eq!(
                c.mta_sts.policy(&c.hostname),
                "version: STSv1\r\nmode: testing\r\nmx: mx.example.org\r\nmax_age: 604800\r\n"
            );
            Ok(())
        });
    }

    #[test]
    fn mode_max_age_and_mx_are_configurable() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "m.toml",
                "hostname = \"mx.example.org\"\n[mta_sts]\nmode = \"enforce\"\nmax_age = \"30days\"\nmx = [\"mx1.example.org\", \"*.backup.example.org\"]\n",
            )?;
            let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
            let policy = c.mta_sts.policy(&c.hostname);
            assert_eq!(
                policy,
                "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.backup.example.org\r\nmax_age: 2592000\r\n"
            );
            jail.set_env("MAILROOM_MTA_STS__MODE", "none");
            let none = Config::load(Some(Path::new("m.toml"))).expect("loads");
            assert_eq!(none.mta_sts.mode, MtaStsMode::None);
            // The id follows the policy.
            assert_ne!(
                c.mta_sts.policy_id(&c.hostname),
                none.mta_sts.policy_id(&none.hostname)
            );
            let id = c.mta_sts.policy_id(&c.hostname);
            assert!((1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(id, c.mta_sts.policy_id(&c.hostname), "stable");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused() {
        Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[mta_sts]\nmode = \"strict\"\n")?;
            let error = Config::load(Some(Path::new("a.toml")))
                .expect_err("unknown mode")
                .to_string();
            assert!(error.contains("mta_sts.mode"), "{error}");
            jail.create_file("b.toml", "[mta_sts]\nmax_age = \"400days\"\n")?;
            let error = Config::load(Some(Path::new("b.toml")))
                .expect_err("too long")
                .to_string();
            assert!(error.contains("31557600"), "{error}");
            Ok(())
        });
    }
}
