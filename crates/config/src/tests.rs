#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error, whose size is not ours to choose.

use super::*;
use figment::Jail;

#[test]
fn defaults_are_loopback_and_unprivileged() {
    Jail::expect_with(|_jail| {
        let c = Config::load(None).expect("defaults load");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.imap.listen.0, vec!["127.0.0.1:1143".parse().unwrap()]);
        assert_eq!(c.smtp.listen.0, vec!["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(
            c.submission.listen.0,
            vec!["127.0.0.1:2587".parse().unwrap()]
        );
        assert_eq!(c.http.listen.0, vec!["127.0.0.1:8025".parse().unwrap()]);
        assert!(c.lmtp.listen.is_off());
        assert_eq!(c.store.synchronous, Synchronous::Full);
        assert!(
            c.plaintext_auth_allowed(),
            "loopback-only default allows plaintext"
        );
        Ok(())
    });
}

#[test]
fn file_then_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "m.toml",
            r#"
            hostname = "mail.example.org"
            data_dir = "/var/lib/mailroom"
            [imap]
            listen = ["0.0.0.0:143", "[::]:143"]
            [limits]
            max_message_size = "10M"
            "#,
        )?;
        jail.set_env("MAILROOM_IMAP__LISTEN", "127.0.0.1:9143");
        jail.set_env("MAILROOM_LIMITS__MAX_CONNECTIONS", "7");
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(c.hostname, "mail.example.org");
        assert_eq!(c.imap.listen.0, vec!["127.0.0.1:9143".parse().unwrap()]);
        assert_eq!(c.limits.max_message_size, ByteSize(10 << 20));
        assert_eq!(c.limits.max_connections, 7);
        Ok(())
    });
}

#[test]
fn default_file_in_working_directory() {
    Jail::expect_with(|jail| {
        jail.create_file("mailroom.toml", "hostname = \"from-default-file\"\n")?;
        assert_eq!(
            Config::load(None).expect("loads").hostname,
            "from-default-file"
        );
        Ok(())
    });
}

#[test]
fn empty_list_turns_a_listener_off() {
    Jail::expect_with(|jail| {
        jail.create_file("m.toml", "[smtp]\nlisten = []\n")?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert!(c.smtp.listen.is_off());
        Ok(())
    });
}

#[test]
fn unknown_key_names_key_and_file() {
    Jail::expect_with(|jail| {
        jail.create_file("m.toml", "[imap]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n")?;
        let err = Config::load(Some(Path::new("m.toml")))
            .expect_err("unknown key refused")
            .to_string();
        assert!(err.contains("lisen"), "{err}");
        assert!(err.contains("m.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn bad_value_from_environment_names_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("MAILROOM_SMTP__LISTEN", "not-an-address");
        let err = Config::load(None)
            .expect_err("bad address refused")
            .to_string();
        assert!(err.contains("MAILROOM_SMTP__LISTEN"), "{err}");
        assert!(err.contains("not-an-address"), "{err}");
        Ok(())
    });
}

#[test]
fn bad_size_and_missing_file() {
    Jail::expect_with(|jail| {
        jail.create_file("m.toml", "[limits]\nmax_message_size = \"12 parsecs\"\n")?;
        let err = Config::load(Some(Path::new("m.toml")))
            .expect_err("bad size")
            .to_string();
        assert!(err.contains("limits.max_message_size"), "{err}");
        let err = Config::load(Some(Path::new("nope.toml")))
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("nope.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn secrets_are_masked_when_shown() {
    Jail::expect_with(|jail| {
        jail.set_env("MAILROOM_HTTP__ADMIN_TOKEN", "hunter2");
        let c = Config::load(None).expect("loads");
        assert_eq!(c.http.admin_token, Some(Secret("hunter2".into())));
        let shown = c.to_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("********"), "{shown}");
        assert!(!format!("{c:?}").contains("hunter2"));
        Ok(())
    });
}

#[test]
fn plaintext_default_follows_listeners() {
    Jail::expect_with(|jail| {
        jail.set_env("MAILROOM_IMAP__LISTEN", "0.0.0.0:143");
        assert!(!Config::load(None).expect("loads").plaintext_auth_allowed());
        jail.set_env("MAILROOM_AUTH__ALLOW_PLAINTEXT", "true");
        assert!(Config::load(None).expect("loads").plaintext_auth_allowed());
        Ok(())
    });
}

#[test]
fn sizes_parse() {
    assert_eq!(ByteSize::parse("1024").unwrap(), ByteSize(1024));
    assert_eq!(ByteSize::parse("64K").unwrap(), ByteSize(65536));
    assert_eq!(ByteSize::parse("25 MiB").unwrap(), ByteSize(25 << 20));
    assert!(ByteSize::parse("x").is_err());
    assert!(ByteSize::parse("99999999999999G").is_err());
    assert_eq!(ByteSize(25 << 20).to_string(), "25M");
}

#[test]
fn shown_configuration_loads_back() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).expect("loads");
        jail.create_file("round.toml", &c.to_toml())?;
        let again = Config::load(Some(Path::new("round.toml"))).expect("shown config loads back");
        assert_eq!(c, again);
        Ok(())
    });
}

#[test]
fn bootstrap_account_needs_user_and_password() {
    Jail::expect_with(|jail| {
        jail.set_env("MAILROOM_BOOTSTRAP__USER", "alice@example.org");
        let err = Config::load(None)
            .expect_err("user without password")
            .to_string();
        assert!(err.contains("bootstrap.password"), "{err}");
        jail.set_env("MAILROOM_BOOTSTRAP__PASSWORD", "pw");
        let c = Config::load(None).expect("loads");
        assert_eq!(c.bootstrap.user.as_deref(), Some("alice@example.org"));
        assert!(!c.to_toml().contains("\"pw\""));
        Ok(())
    });
}

#[test]
fn relay_and_queue_keys() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).expect("defaults load");
        assert_eq!(c.relay.host, None);
        assert_eq!(c.relay.tls, RelayTls::Starttls);
        assert_eq!(c.queue.retry_after, Duration::from_secs(300));
        assert_eq!(c.queue.max_retry_interval, Duration::from_secs(4 * 3600));
        assert_eq!(c.queue.expire_after, Duration::from_secs(5 * 86400));
        jail.create_file(
            "m.toml",
            r#"
            [relay]
            host = "smtp.example.net"
            port = 2525
            tls = "implicit"
            username = "u"
            password = "secret-pw"
            [queue]
            retry_after = "1s"
            max_retry_interval = "10s"
            expire_after = "1h"
            "#,
        )?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(c.relay.host.as_deref(), Some("smtp.example.net"));
        assert_eq!(c.relay.port, Some(2525));
        assert_eq!(c.relay.tls, RelayTls::Implicit);
        assert_eq!(c.relay.password, Some(Secret("secret-pw".into())));
        assert!(!c.to_toml().contains("secret-pw"));
        assert_eq!(c.queue.retry_after, Duration::from_secs(1));
        jail.set_env("MAILROOM_RELAY__TLS", "none");
        jail.set_env("MAILROOM_RELAY__USERNAME", "");
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(c.relay.tls, RelayTls::None);
        jail.set_env("MAILROOM_QUEUE__RETRY_AFTER", "1d");
        let err = Config::load(Some(Path::new("m.toml")))
            .expect_err("retry_after > max")
            .to_string();
        assert!(err.contains("queue.retry_after"), "{err}");
        Ok(())
    });
}

#[test]
fn mta_sts_outbound_and_https_keys() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).expect("defaults load");
        assert!(c.relay.mta_sts, "MTA-STS is honoured by default");
        assert_eq!(c.relay.mta_sts_timeout, Duration::from_secs(60));
        assert_eq!(c.relay.tls_ca, None);
        assert!(c.http.tls_listen.is_off(), "HTTPS is off by default");
        jail.create_file(
            "m.toml",
            r#"
            [relay]
            mta_sts = false
            mta_sts_timeout = "5s"
            tls_ca = "/etc/ssl/private-ca.pem"
            [http]
            tls_listen = "0.0.0.0:443"
            "#,
        )?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert!(!c.relay.mta_sts);
        assert_eq!(c.relay.mta_sts_timeout, Duration::from_secs(5));
        assert_eq!(
            c.relay.tls_ca,
            Some(PathBuf::from("/etc/ssl/private-ca.pem"))
        );
        assert_eq!(c.http.tls_listen.0, vec!["0.0.0.0:443".parse().unwrap()]);
        jail.set_env("MAILROOM_RELAY__MTA_STS_TIMEOUT", "0s");
        let err = Config::load(Some(Path::new("m.toml")))
            .expect_err("a zero timeout")
            .to_string();
        assert!(err.contains("relay.mta_sts_timeout"), "{err}");
        Ok(())
    });
}

#[test]
fn acme_is_off_by_default_with_lets_encrypt_and_tls_alpn() {
    Jail::expect_with(|_jail| {
        let c = Config::load(None).expect("defaults load");
        assert!(!c.acme.enabled);
        assert_eq!(c.acme.directory_url, LETS_ENCRYPT_DIRECTORY);
        assert_eq!(c.acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(c.acme.renew_before, Duration::from_secs(30 * 86400));
        assert_eq!(c.acme.directory_ca, None);
        assert_eq!(c.acme.names("localhost"), vec!["localhost".to_string()]);
        Ok(())
    });
}

#[test]
fn acme_keys_from_file_and_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "m.toml",
            r#"
            hostname = "mail.example.org"
            [acme]
            enabled = true
            directory_url = "https://localhost:14000/dir"
            contact = "admin@example.org"
            directory_ca = "/etc/pebble/ca.pem"
            challenge = "http-01"
            renew_before = "7d"
            "#,
        )?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert!(c.acme.enabled);
        assert_eq!(c.acme.contact, vec!["mailto:admin@example.org".to_string()]);
        assert_eq!(c.acme.challenge, AcmeChallenge::Http01);
        assert_eq!(c.acme.renew_before, Duration::from_secs(7 * 86400));
        assert_eq!(
            c.acme.directory_ca.as_deref(),
            Some(Path::new("/etc/pebble/ca.pem"))
        );
        assert_eq!(
            c.acme.names(&c.hostname),
            vec!["mail.example.org".to_string()],
            "the hostname when no domains are listed"
        );
        jail.set_env(
            "MAILROOM_ACME__DOMAINS",
            "mail.example.org, imap.example.org",
        );
        jail.set_env("MAILROOM_ACME__CHALLENGE", "tls-alpn-01");
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(
            c.acme.names(&c.hostname),
            vec!["mail.example.org".to_string(), "imap.example.org".into()]
        );
        assert_eq!(c.acme.challenge, AcmeChallenge::TlsAlpn01);
        // What `config show` prints loads back.
        jail.create_file("round.toml", &c.to_toml())?;
        assert_eq!(
            Config::load(Some(Path::new("round.toml"))).expect("round trip"),
            c
        );
        Ok(())
    });
}

#[test]
fn acme_mistakes_are_named() {
    let refused = |toml: &str| -> String {
        let mut err = String::new();
        Jail::expect_with(|jail| {
            jail.create_file("m.toml", toml)?;
            err = Config::load(Some(Path::new("m.toml")))
                .expect_err(toml)
                .to_string();
            Ok(())
        });
        err
    };
    let base = "hostname = \"mail.example.org\"\n[acme]\nenabled = true\n";
    let err = refused(&format!("{base}challenge = \"dns-01\"\n"));
    assert!(err.contains("acme.challenge"), "{err}");
    let err = refused(&format!("{base}contact = \"https://example.org\"\n"));
    assert!(err.contains("mailto:"), "{err}");
    let err = refused(&format!(
        "{base}directory_url = \"http://ca.example/dir\"\n"
    ));
    assert!(err.contains("https://"), "{err}");
    let err = refused("[acme]\nenabled = true\n");
    assert!(err.contains("\"localhost\""), "hostname localhost: {err}");
    let err = refused(&format!("{base}domains = [\"bad name.example\"]\n"));
    assert!(err.contains("acme.domains"), "{err}");
    let top = "hostname = \"mail.example.org\"\n";
    let acme = "[acme]\nenabled = true\n";
    let err = refused(&format!(
        "{top}[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n{acme}"
    ));
    assert!(err.contains("tls.cert"), "{err}");
    let err = refused(&format!(
        "{top}[imaps]\nlisten = []\n[submissions]\nlisten = []\n{acme}"
    ));
    assert!(err.contains("tls-alpn-01"), "{err}");
    let err = refused(&format!(
        "{top}[http]\nlisten = []\n{acme}challenge = \"http-01\"\n"
    ));
    assert!(err.contains("http"), "{err}");
    // HTTP-01 is plain HTTP: an HTTPS listener cannot answer it...
    let err = refused(&format!(
        "{top}[http]\nlisten = []\ntls_listen = \"0.0.0.0:443\"\n{acme}challenge = \"http-01\"\n"
    ));
    assert!(err.contains("plain"), "{err}");
    // ... but it answers TLS-ALPN-01 like imaps and submissions.
    Jail::expect_with(|jail| {
        jail.create_file(
            "m.toml",
            &format!(
                "{top}[imaps]\nlisten = []\n[submissions]\nlisten = []\n[http]\ntls_listen = \"0.0.0.0:443\"\n{acme}"
            ),
        )?;
        Config::load(Some(Path::new("m.toml"))).expect("tls-alpn-01 on the HTTPS listener");
        Ok(())
    });
}

#[test]
fn dns_and_inbound_defaults() {
    Jail::expect_with(|_jail| {
        let c = Config::load(None).expect("defaults load");
        assert!(
            c.dns.nameservers.is_empty(),
            "default: the system's resolv.conf"
        );
        assert_eq!(c.dns.timeout, Duration::from_secs(5));
        assert!(c.inbound.verify);
        assert!(!c.inbound.verify_lmtp);
        assert!(c.inbound.dmarc_enforce);
        assert!(!c.inbound.spf_enforce);
        Ok(())
    });
}

#[test]
fn dns_nameservers_from_file_and_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "m.toml",
            r#"
            [dns]
            nameservers = ["127.0.0.1:5353", "192.0.2.53", "[2001:db8::53]:53"]
            timeout = "2s"
            [inbound]
            dmarc_enforce = false
            spf_enforce = true
            "#,
        )?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(
            c.dns.nameservers,
            vec![
                "127.0.0.1:5353".parse().unwrap(),
                "192.0.2.53:53".parse().unwrap(),
                "[2001:db8::53]:53".parse().unwrap(),
            ]
        );
        assert_eq!(c.dns.timeout, Duration::from_secs(2));
        assert!(!c.inbound.dmarc_enforce);
        assert!(c.inbound.spf_enforce);
        jail.set_env("MAILROOM_DNS__NAMESERVERS", "127.0.0.2:53, 127.0.0.3");
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(
            c.dns.nameservers,
            vec![
                "127.0.0.2:53".parse().unwrap(),
                "127.0.0.3:53".parse().unwrap()
            ]
        );
        Ok(())
    });
}

#[test]
fn dns_bad_nameserver_names_the_key() {
    Jail::expect_with(|jail| {
        jail.create_file("m.toml", "[dns]\nnameservers = [\"ns1.example.org\"]\n")?;
        let err = Config::load(Some(Path::new("m.toml")))
            .expect_err("a host name is not a name server address")
            .to_string();
        assert!(err.contains("dns.nameservers"), "{err}");
        assert!(err.contains("ns1.example.org"), "{err}");
        jail.create_file("z.toml", "[dns]\ntimeout = \"0s\"\n")?;
        let err = Config::load(Some(Path::new("z.toml")))
            .expect_err("zero timeout")
            .to_string();
        assert!(err.contains("dns.timeout"), "{err}");
        Ok(())
    });
}

#[test]
fn spam_section_defaults_file_environment_and_masking() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).expect("defaults load");
        assert_eq!(c.spam.rspamd_url, None, "no scanning unless configured");
        assert_eq!(c.spam.controller_url, None);
        assert_eq!(c.spam.timeout, Duration::from_secs(10));
        assert_eq!(c.spam.max_size, ByteSize(50 << 20));
        jail.create_file(
            "m.toml",
            r#"
            [spam]
            rspamd_url = "http://127.0.0.1:11333"
            controller_url = "http://127.0.0.1:11334/"
            password = "learn-secret"
            timeout = "2s"
            max_size = "5M"
            "#,
        )?;
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(c.spam.rspamd_url.as_deref(), Some("http://127.0.0.1:11333"));
        assert_eq!(
            c.spam.controller_url.as_deref(),
            Some("http://127.0.0.1:11334/")
        );
        assert_eq!(c.spam.password, Some(Secret("learn-secret".into())));
        assert_eq!(c.spam.timeout, Duration::from_secs(2));
        assert_eq!(c.spam.max_size, ByteSize(5 << 20));
        let shown = c.to_toml();
        assert!(shown.contains("[spam]"), "{shown}");
        assert!(!shown.contains("learn-secret"), "the password is masked");
        // The container wires the scanner through the environment.
        jail.set_env("MAILROOM_SPAM__RSPAMD_URL", "http://rspamd:11333");
        let c = Config::load(Some(Path::new("m.toml"))).expect("loads");
        assert_eq!(c.spam.rspamd_url.as_deref(), Some("http://rspamd:11333"));
        Ok(())
    });
}

#[test]
fn spam_urls_must_be_plain_http() {
    Jail::expect_with(|jail| {
        for bad in [
            "https://127.0.0.1:11333",
            "127.0.0.1:11333",
            "http://",
            "http:///checkv2",
        ] {
            jail.set_env("MAILROOM_SPAM__RSPAMD_URL", bad);
            let err = Config::load(None).expect_err(bad).to_string();
            assert!(err.contains("spam.rspamd_url"), "{bad}: {err}");
        }
        jail.set_env("MAILROOM_SPAM__RSPAMD_URL", "http://localhost:11333");
        jail.set_env("MAILROOM_SPAM__CONTROLLER_URL", "ftp://x");
        let err = Config::load(None).expect_err("ftp").to_string();
        assert!(err.contains("spam.controller_url"), "{err}");
        jail.set_env("MAILROOM_SPAM__CONTROLLER_URL", "http://localhost:11334");
        jail.set_env("MAILROOM_SPAM__TIMEOUT", "0s");
        let err = Config::load(None).expect_err("zero timeout").to_string();
        assert!(err.contains("spam.timeout"), "{err}");
        Ok(())
    });
}

#[test]
fn saml_is_off_by_default_and_its_keys_load() {
    Jail::expect_with(|jail| {
        let c = Config::load(None).expect("defaults load");
        assert!(!c.saml.enabled());
        assert!(!c.saml.password_off_for("example.org"));
        jail.create_file(
            "mailroom.toml",
            r#"
            [saml]
            idp_metadata = "idp.xml"
            idp_name = "Example SSO"
            base_url = "https://mail.example.org/"
            domains = ["Example.ORG"]
            jit_domains = "example.org, other.example"
            admin_attribute = "groups"
            admin_values = ["mail-admins"]
            clock_skew = "2m"
            "#,
        )?;
        let c = Config::load(None).expect("loads");
        assert!(c.saml.enabled());
        assert_eq!(c.saml.domains, ["example.org"]);
        assert_eq!(c.saml.jit_domains, ["example.org", "other.example"]);
        assert!(c.saml.password_off_for("EXAMPLE.org"));
        assert!(!c.saml.password_off_for("other.example"));
        assert_eq!(
            c.saml.acs_url().as_deref(),
            Some("https://mail.example.org/saml/acs")
        );
        assert_eq!(
            c.saml.sp_entity_id().as_deref(),
            Some("https://mail.example.org/saml/metadata")
        );
        assert_eq!(c.saml.clock_skew, Duration::from_secs(120));
        jail.set_env("MAILROOM_SAML__ALLOW_PASSWORD", "true");
        let c = Config::load(None).expect("loads");
        assert!(!c.saml.password_off_for("example.org"));
        Ok(())
    });
}

#[test]
fn saml_mistakes_are_named() {
    Jail::expect_with(|jail| {
        jail.set_env("MAILROOM_SAML__IDP_METADATA", "idp.xml");
        let err = Config::load(None).expect_err("no base_url").to_string();
        assert!(err.contains("saml.base_url"), "{err}");
        jail.set_env("MAILROOM_SAML__BASE_URL", "mail.example.org");
        let err = Config::load(None).expect_err("not a URL").to_string();
        assert!(err.contains("saml.base_url"), "{err}");
        jail.set_env("MAILROOM_SAML__BASE_URL", "https://mail.example.org");
        Config::load(None).expect("loads");
        for (key, value, named) in [
            (
                "MAILROOM_SAML__DOMAINS",
                "alice@example.org",
                "saml.domains",
            ),
            (
                "MAILROOM_SAML__ADMIN_ATTRIBUTE",
                "groups",
                "saml.admin_values",
            ),
            ("MAILROOM_SAML__CLOCK_SKEW", "1h", "saml.clock_skew"),
            ("MAILROOM_SAML__REQUEST_TTL", "0s", "saml.request_ttl"),
            (
                "MAILROOM_SAML__REPLAY_CACHE_SIZE",
                "0",
                "saml.replay_cache_size",
            ),
            (
                "MAILROOM_SAML__MAX_RESPONSE_SIZE",
                "1K",
                "saml.max_response_size",
            ),
        ] {
            jail.set_env(key, value);
            let err = Config::load(None).expect_err(key).to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
            jail.clear_env();
            jail.set_env("MAILROOM_SAML__IDP_METADATA", "idp.xml");
            jail.set_env("MAILROOM_SAML__BASE_URL", "https://mail.example.org");
        }
        Ok(())
    });
}
