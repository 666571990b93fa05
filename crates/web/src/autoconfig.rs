//! Client autoconfiguration, built from the configured host name and the ports that
//! listen:
//!
//! - Thunderbird's autoconfig (`clientConfig` version 1.1), at
//!   `/.well-known/autoconfig/mail/config-v1.1.xml` and `/mail/config-v1.1.xml`
//!   (the `autoconfig.DOMAIN` host), both with `?emailaddress=`;
//! - Outlook's POX autodiscover, `POST /autodiscover/autodiscover.xml`;
//! - an Apple configuration profile (`.mobileconfig`) for the signed-in portal user.
//!
//! Implicit TLS comes first where both are offered (RFC 8314 §3). Everything that
//! goes into XML is escaped.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mailroom_config::Config;
use serde::Deserialize;

use crate::portal::Signed;
use crate::state::AppState;

/// Largest autodiscover request read (they are a few hundred bytes).
const MAX_AUTODISCOVER_REQUEST: usize = 16 * 1024;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(thunderbird))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Imap,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Security {
    /// TLS from the first byte (RFC 8314).
    Implicit,
    StartTls,
}

/// One listening server a client can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub protocol: Protocol,
    pub port: u16,
    pub security: Security,
}

impl Server {
    pub fn label(&self) -> &'static str {
        match self.protocol {
            Protocol::Imap => "Incoming (IMAP)",
            Protocol::Smtp => "Outgoing (SMTP)",
        }
    }

    pub fn security_label(&self) -> &'static str {
        match self.security {
            Security::Implicit => "SSL/TLS",
            Security::StartTls => "STARTTLS",
        }
    }

    /// Thunderbird's `socketType`.
    fn socket_type(&self) -> &'static str {
        match self.security {
            Security::Implicit => "SSL",
            Security::StartTls => "STARTTLS",
        }
    }
}

/// Where clients connect: the host name and the listening IMAP and submission
/// servers, implicit TLS first.
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub hostname: String,
    pub servers: Vec<Server>,
}

impl ClientSettings {
    pub fn from_config(config: &Config) -> ClientSettings {
        let mut servers = Vec::new();
        let mut add = |protocol, listen: &mailroom_config::Listen, security| {
            if let Some(addr) = listen.0.first() {
                servers.push(Server {
                    protocol,
                    port: addr.port(),
                    security,
                });
            }
        };
        add(Protocol::Imap, &config.imaps.listen, Security::Implicit);
        add(Protocol::Imap, &config.imap.listen, Security::StartTls);
        add(
            Protocol::Smtp,
            &config.submissions.listen,
            Security::Implicit,
        );
        add(
            Protocol::Smtp,
            &config.submission.listen,
            Security::StartTls,
        );
        ClientSettings {
            hostname: config.hostname.clone(),
            servers,
        }
    }

    fn first(&self, protocol: Protocol) -> Option<&Server> {
        self.servers.iter().find(|s| s.protocol == protocol)
    }
}

/// Escapes text for XML content and attribute values.
pub(crate) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn not_found(why: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{why}\n")).into_response()
}

#[derive(Deserialize)]
pub(crate) struct AutoconfigQuery {
    emailaddress: Option<String>,
}

/// The domain of `address` when it is one of ours.
async fn local_domain(state: &AppState, address: &str) -> Result<Option<String>, Response> {
    let Some((local, domain)) = address.trim().rsplit_once('@') else {
        return Ok(None);
    };
    if local.is_empty() {
        return Ok(None);
    }
    match state.store.is_local_domain(domain).await {
        Ok(true) => Ok(Some(domain.to_lowercase())),
        Ok(false) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "autoconfig: store failure");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// Thunderbird autoconfig: one `emailProvider` for the address's domain (or, with no
/// address, for every local domain).
async fn thunderbird(
    State(state): State<AppState>,
    Query(query): Query<AutoconfigQuery>,
) -> Response {
    let domains = match &query.emailaddress {
        Some(address) => match local_domain(&state, address).await {
            Ok(Some(domain)) => vec![domain],
            Ok(None) => return not_found("no mail domain of this server has that address"),
            Err(response) => return response,
        },
        None => match state.store.list_domains().await {
            Ok(domains) => domains.into_iter().map(|d| d.name).collect(),
            Err(e) => {
                tracing::error!(error = %e, "autoconfig: store failure");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
    };
    let settings = ClientSettings::from_config(&state.config);
    xml_response(StatusCode::OK, thunderbird_xml(&settings, &domains))
}

pub(crate) fn thunderbird_xml(settings: &ClientSettings, domains: &[String]) -> String {
    let id = domains.first().unwrap_or(&settings.hostname);
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n",
    );
    xml += &format!("  <emailProvider id=\"{}\">\n", xml_escape(id));
    for domain in domains {
        xml += &format!("    <domain>{}</domain>\n", xml_escape(domain));
    }
    xml += &format!(
        "    <displayName>{} mail</displayName>\n    <displayShortName>{}</displayShortName>\n",
        xml_escape(id),
        xml_escape(id)
    );
    for server in &settings.servers {
        let (element, kind) = match server.protocol {
            Protocol::Imap => ("incomingServer", "imap"),
            Protocol::Smtp => ("outgoingServer", "smtp"),
        };
        xml += &format!(
            "    <{element} type=\"{kind}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      <socketType>{}</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </{element}>\n",
            xml_escape(&settings.hostname),
            server.port,
            server.socket_type(),
        );
    }
    xml += "  </emailProvider>\n</clientConfig>\n";
    xml
}

/// The text of the first `<EMailAddress>` element of an autodiscover request.
fn requested_address(body: &str) -> Option<&str> {
    let start = body.find("<EMailAddress>")? + "<EMailAddress>".len();
    let end = body[start..].find("</EMailAddress>")? + start;
    Some(body[start..end].trim())
}

/// Outlook POX autodiscover ([MS-OXDSCLI]): IMAP and SMTP settings for the address.
async fn autodiscover(State(state): State<AppState>, body: Bytes) -> Response {
    if body.len() > MAX_AUTODISCOVER_REQUEST {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response();
    }
    let Some(address) = std::str::from_utf8(&body)
        .ok()
        .and_then(requested_address)
        .map(str::to_string)
    else {
        return (
            StatusCode::BAD_REQUEST,
            "send an autodiscover request with <EMailAddress>\n",
        )
            .into_response();
    };
    match local_domain(&state, &address).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found("no mail domain of this server has that address"),
        Err(response) => return response,
    }
    let settings = ClientSettings::from_config(&state.config);
    xml_response(StatusCode::OK, autodiscover_xml(&settings, &address))
}

pub(crate) fn autodiscover_xml(settings: &ClientSettings, address: &str) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    for protocol in [Protocol::Imap, Protocol::Smtp] {
        let Some(server) = settings.first(protocol) else {
            continue;
        };
        let (kind, encryption) = match (protocol, server.security) {
            (Protocol::Imap, Security::Implicit) => ("IMAP", "SSL"),
            (Protocol::Imap, Security::StartTls) => ("IMAP", "TLS"),
            (Protocol::Smtp, Security::Implicit) => ("SMTP", "SSL"),
            (Protocol::Smtp, Security::StartTls) => ("SMTP", "TLS"),
        };
        xml += &format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>\n        <DomainRequired>off</DomainRequired>\n        <LoginName>{}</LoginName>\n        <SPA>off</SPA>\n        <SSL>on</SSL>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            xml_escape(&settings.hostname),
            server.port,
            xml_escape(address),
        );
    }
    xml += "    </Account>\n  </Response>\n</Autodiscover>\n";
    xml
}

/// The SRV records that let clients find the servers of `domain` (RFC 6186 §3,
/// `_submissions` of RFC 8314 §5.1), in zone-file form; implicit TLS gets the
/// lower (preferred) priority, as RFC 8314 §5.1 advises.
pub(crate) fn srv_records(settings: &ClientSettings, domain: &str) -> Vec<String> {
    settings
        .servers
        .iter()
        .map(|server| {
            let (service, priority) = match (server.protocol, server.security) {
                (Protocol::Imap, Security::Implicit) => ("_imaps", 0),
                (Protocol::Imap, Security::StartTls) => ("_imap", 10),
                (Protocol::Smtp, Security::Implicit) => ("_submissions", 0),
                (Protocol::Smtp, Security::StartTls) => ("_submission", 10),
            };
            format!(
                "{service}._tcp.{domain}. 3600 IN SRV {priority} 1 {} {}.",
                server.port,
                settings.hostname.trim_end_matches('.')
            )
        })
        .collect()
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b).to_uppercase();
    format!(
        "{}-{}-4{}-A{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An Apple configuration profile with one IMAP account for the signed-in user.
pub(crate) async fn mobileconfig(
    State(state): State<AppState>,
    Signed(session, _): Signed,
) -> Response {
    let settings = ClientSettings::from_config(&state.config);
    let body = mobileconfig_plist(&settings, &session.account.address);
    let mut response = (
        [(header::CONTENT_TYPE, "application/x-apple-aspen-config")],
        body,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"mailroom.mobileconfig\""),
    );
    response
}

pub(crate) fn mobileconfig_plist(settings: &ClientSettings, address: &str) -> String {
    let host = xml_escape(&settings.hostname);
    let user = xml_escape(address);
    let reverse: String = settings
        .hostname
        .split('.')
        .rev()
        .collect::<Vec<_>>()
        .join(".");
    let identifier = xml_escape(&format!("{reverse}.mailroom"));
    let server = |protocol| {
        settings
            .first(protocol)
            .map(|s| (s.port, s.security == Security::Implicit))
    };
    let mut account = String::new();
    if let Some((port, ssl)) = server(Protocol::Imap) {
        account += &format!(
            "<key>IncomingMailServerHostName</key><string>{host}</string>\n<key>IncomingMailServerPortNumber</key><integer>{port}</integer>\n<key>IncomingMailServerUseSSL</key><{ssl}/>\n<key>IncomingMailServerUsername</key><string>{user}</string>\n<key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>\n"
        );
    }
    if let Some((port, ssl)) = server(Protocol::Smtp) {
        account += &format!(
            "<key>OutgoingMailServerHostName</key><string>{host}</string>\n<key>OutgoingMailServerPortNumber</key><integer>{port}</integer>\n<key>OutgoingMailServerUseSSL</key><{ssl}/>\n<key>OutgoingMailServerUsername</key><string>{user}</string>\n<key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>\n<key>OutgoingPasswordSameAsIncomingPassword</key><true/>\n"
        );
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
<key>PayloadContent</key>
<array>
<dict>
<key>EmailAccountDescription</key><string>{user}</string>
<key>EmailAccountName</key><string>{user}</string>
<key>EmailAccountType</key><string>EmailTypeIMAP</string>
<key>EmailAddress</key><string>{user}</string>
{account}<key>PayloadDescription</key><string>Mail account {user}</string>
<key>PayloadDisplayName</key><string>{user}</string>
<key>PayloadIdentifier</key><string>{identifier}.account</string>
<key>PayloadType</key><string>com.apple.mail.managed</string>
<key>PayloadUUID</key><string>{}</string>
<key>PayloadVersion</key><integer>1</integer>
</dict>
</array>
<key>PayloadDescription</key><string>Mail settings for {user} on {host}</string>
<key>PayloadDisplayName</key><string>{host} mail</string>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadRemovalDisallowed</key><false/>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>{}</string>
<key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        uuid(),
        uuid()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings::from_config(&Config {
            hostname: "mail.<x>&.org".into(),
            ..Config::default()
        })
    }

    #[test]
    fn everything_in_xml_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
        let xml = thunderbird_xml(&settings(), &["ex<ample.org".into()]);
        assert!(
            xml.contains("<hostname>mail.&lt;x&gt;&amp;.org</hostname>"),
            "{xml}"
        );
        assert!(xml.contains("<domain>ex&lt;ample.org</domain>"), "{xml}");
        let xml = autodiscover_xml(&settings(), "a&b@example.org");
        assert!(
            xml.contains("<LoginName>a&amp;b@example.org</LoginName>"),
            "{xml}"
        );
        let plist = mobileconfig_plist(&settings(), "a<b@example.org");
        assert!(plist.contains("<string>a&lt;b@example.org</string>"));
        assert!(!plist.contains("a<b@"));
    }

    #[test]
    fn the_default_ports_in_preference_order() {
        let s = ClientSettings::from_config(&Config::default());
        let ports: Vec<_> = s
            .servers
            .iter()
            .map(|s| (s.port, s.socket_type()))
            .collect();
        assert_eq!(
            ports,
            [
                (1993, "SSL"),
                (1143, "STARTTLS"),
                (2465, "SSL"),
                (2587, "STARTTLS")
            ]
        );
    }

    #[test]
    fn srv_records_follow_the_listening_ports() {
        let records = srv_records(
            &ClientSettings::from_config(&Config::default()),
            "example.org",
        );
        assert_eq!(
            records,
            [
                "_imaps._tcp.example.org. 3600 IN SRV 0 1 1993 localhost.",
                "_imap._tcp.example.org. 3600 IN SRV 10 1 1143 localhost.",
                "_submissions._tcp.example.org. 3600 IN SRV 0 1 2465 localhost.",
                "_submission._tcp.example.org. 3600 IN SRV 10 1 2587 localhost.",
            ]
        );
    }

    #[test]
    fn autodiscover_requests_name_the_address() {
        let body = "<?xml version=\"1.0\"?><Autodiscover><Request><EMailAddress> a@b.org </EMailAddress><AcceptableResponseSchema>x</AcceptableResponseSchema></Request></Autodiscover>";
        assert_eq!(requested_address(body), Some("a@b.org"));
        assert_eq!(requested_address("<EMailAddress>x"), None);
    }
}
