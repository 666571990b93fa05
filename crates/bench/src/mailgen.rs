//! Deterministic synthetic mail: realistic header blocks (Received chain, DKIM,
//! Message-ID, threading, lists) and varied body text, so every message differs and
//! the store parses, hashes and indexes what it would in production. The same seed
//! and index always give the same bytes, on every platform and version (the
//! generator is a SplitMix64 written here, not a library RNG whose stream may change).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// SplitMix64: tiny, fast, and with a stream fixed by its definition.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
    "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë", "José",
    "Ingrid", "Søren", "Amélie",
];
const LAST: &[&str] = &[
    "Smith",
    "Jones",
    "Garcia",
    "Müller",
    "Rossi",
    "Dubois",
    "Novak",
    "Kowalski",
    "Tanaka",
    "Okafor",
    "Hansen",
    "Silva",
    "Nguyen",
    "O'Brien",
    "Lindqvist",
    "Papadopoulos",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "example.org",
    "mail.example.co.uk",
    "lists.example.edu",
    "corp.example",
];
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "meeting",
    "report",
    "quarter",
    "budget",
    "deadline",
    "server",
    "invoice",
    "schedule",
    "project",
    "review",
    "release",
    "customer",
    "network",
    "database",
    "backup",
    "migration",
    "ticket",
    "deployment",
    "agenda",
    "proposal",
    "contract",
    "shipment",
    "warehouse",
    "forecast",
    "analysis",
    "feedback",
    "question",
    "answer",
    "update",
    "attached",
    "please",
    "thanks",
    "regards",
    "tomorrow",
    "yesterday",
    "morning",
    "afternoon",
    "evening",
    "weekend",
    "office",
    "remote",
    "team",
    "manager",
    "engineer",
    "design",
    "draft",
    "final",
    "version",
    "change",
    "request",
    "approval",
    "urgent",
    "minor",
    "major",
    "issue",
    "fix",
    "patch",
    "test",
    "result",
    "failure",
    "success",
    "latency",
    "throughput",
    "capacity",
    "storage",
    "mailbox",
    "message",
    "delivery",
    "protocol",
    "café",
    "naïve",
    "façade",
    "Grüße",
    "résumé",
    "Zürich",
    "São",
    "Paulo",
    "smörgåsbord",
    "über",
    "coöperate",
    "piñata",
    "jalapeño",
    "garçon",
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "labore",
    "dolore",
    "magna",
    "aliqua",
    "veniam",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "commodo",
    "consequat",
];
const SUBJECT_PREFIX: &[&str] = &["", "", "", "Re: ", "Re: ", "Fwd: ", "[ops] ", "AW: "];
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// 2026-01-01T00:00:00Z: messages are dated from here on, one about a minute apart.
const EPOCH: i64 = 1_767_225_600;

/// What a generated message looks like from outside.
#[derive(Debug, Clone)]
pub struct MessageSpec<'a> {
    /// The envelope recipient, also put in `To:`.
    pub to: &'a str,
    /// Approximate total size in bytes (headers included); the body is filled to it.
    pub size: usize,
    /// Extra header fields prepended verbatim, e.g. `("X-Marker", "17")`.
    pub extra_headers: &'a [(&'a str, String)],
}

/// The `index`th message of the stream `seed`: same inputs, same bytes.
pub fn message(seed: u64, index: u64, spec: &MessageSpec<'_>) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    // Discard the first output so neighbouring indexes decorrelate fully.
    rng.next_u64();

    let first = rng.pick(FIRST);
    let last = rng.pick(LAST);
    let domain = rng.pick(DOMAINS);
    let local = format!(
        "{}.{}",
        ascii_fold(first).to_lowercase(),
        ascii_fold(last).to_lowercase()
    );
    let from_addr = format!("{local}@{domain}");
    let sent = EPOCH + index as i64 * 60 + rng.below(60) as i64;
    let received = sent + 1 + rng.below(5) as i64;
    let mx = rng.below(4) + 1;

    let mut h = String::with_capacity(2048);
    for (name, value) in spec.extra_headers {
        h.push_str(&format!("{name}: {value}\r\n"));
    }
    h.push_str(&format!("Return-Path: <{from_addr}>\r\n"));
    h.push_str(&format!(
        "Received: from mx{mx}.{domain} (mx{mx}.{domain} [192.0.2.{}])\r\n\tby mail.bench.example (mailroom) with ESMTPS id {}\r\n\tfor <{}>; {}\r\n",
        rng.below(250) + 1,
        hex(&mut rng, 16),
        spec.to,
        rfc2822(received),
    ));
    h.push_str(&format!(
        "Received: from [198.51.100.{}] (unknown [198.51.100.{0}])\r\n\tby mx{mx}.{domain} with ESMTPSA id {}; {}\r\n",
        rng.below(250) + 1,
        hex(&mut rng, 12),
        rfc2822(sent),
    ));
    h.push_str(&format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=s{};\r\n\th=from:to:subject:date:message-id; bh={}=;\r\n\tb={}\r\n\t {}\r\n\t {}\r\n\t {}==\r\n",
        2020 + rng.below(6),
        b64(&mut rng, 43),
        b64(&mut rng, 70),
        b64(&mut rng, 70),
        b64(&mut rng, 70),
        b64(&mut rng, 60),
    ));
    let message_id = format!("<{}.{index}@{domain}>", hex(&mut rng, 20));
    h.push_str(&format!("Message-ID: {message_id}\r\n"));
    h.push_str(&format!("Date: {}\r\n", rfc2822(sent)));
    h.push_str(&format!("From: \"{first} {last}\" <{from_addr}>\r\n"));
    h.push_str(&format!("To: {}\r\n", spec.to));
    if rng.chance(30) {
        h.push_str(&format!(
            "Cc: {} <{}@{}>\r\n",
            rng.pick(FIRST),
            ascii_fold(rng.pick(FIRST)).to_lowercase(),
            rng.pick(DOMAINS)
        ));
    }
    let prefix = rng.pick(SUBJECT_PREFIX);
    let count = 3 + rng.below(7);
    let subject = format!("{prefix}{}", capitalise(&words(&mut rng, count)));
    h.push_str(&format!("Subject: {subject}\r\n"));
    if subject.starts_with("Re:") {
        let parent = format!("<{}@{domain}>", hex(&mut rng, 24));
        h.push_str(&format!(
            "In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
        ));
    }
    if rng.chance(20) {
        h.push_str(&format!(
            "List-Id: {} <{}.lists.example.edu>\r\nList-Unsubscribe: <mailto:leave-{}@lists.example.edu>\r\nPrecedence: list\r\n",
            capitalise(rng.pick(WORDS)),
            ascii_fold(rng.pick(WORDS)).to_lowercase(),
            hex(&mut rng, 10),
        ));
    }
    h.push_str("MIME-Version: 1.0\r\n");

    let alternative = rng.chance(25);
    let budget = spec.size.saturating_sub(h.len() + 120).max(64);
    let mut out = h.into_bytes();
    if alternative {
        let boundary = format!("=_{}", hex(&mut rng, 24));
        let text = paragraphs(&mut rng, budget * 12 / 25);
        let html = html_of(&paragraphs(&mut rng, budget * 12 / 25));
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
    } else {
        let text = paragraphs(&mut rng, budget);
        out.extend_from_slice(
            format!(
                "Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}"
            )
            .as_bytes(),
        );
    }
    out
}

fn rfc2822(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|d| d.format(&Rfc2822).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 2026 00:00:00 +0000".into())
}

fn hex(rng: &mut SplitMix64, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
        .collect()
}

fn b64(rng: &mut SplitMix64, len: usize) -> String {
    (0..len)
        .map(|_| char::from(BASE64[rng.below(BASE64.len())]))
        .collect()
}

fn words(rng: &mut SplitMix64, count: usize) -> String {
    let mut s = String::new();
    for i in 0..count {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(rng.pick(WORDS));
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Replaces the few accented letters of the name lists, for addresses.
fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ë' => 'e',
            'é' => 'e',
            'ø' => 'o',
            'ü' => 'u',
            '\'' => '-',
            c => c,
        })
        .collect()
}

/// Sentences in paragraphs, lines wrapped before 76 columns, about `budget` bytes.
fn paragraphs(rng: &mut SplitMix64, budget: usize) -> String {
    let mut out = String::with_capacity(budget + 100);
    let mut line = String::new();
    while out.len() + line.len() < budget {
        let count = 4 + rng.below(14);
        let sentence = format!("{}.", capitalise(&words(rng, count)));
        for word in sentence.split(' ') {
            if !line.is_empty() && line.len() + 1 + word.len() > 72 {
                out.push_str(&line);
                out.push_str("\r\n");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if rng.chance(20) {
            out.push_str(&line);
            out.push_str("\r\n\r\n");
            line.clear();
        }
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

fn html_of(text: &str) -> String {
    let mut html = String::from("<html><body>\r\n");
    for paragraph in text.split("\r\n\r\n").filter(|p| !p.trim().is_empty()) {
        html.push_str("<p>");
        html.push_str(paragraph.trim_end());
        html.push_str("</p>\r\n");
    }
    html.push_str("</body></html>\r\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: usize) -> MessageSpec<'static> {
        MessageSpec {
            to: "user1@bench.example",
            size,
            extra_headers: &[],
        }
    }

    #[test]
    fn deterministic_and_distinct() {
        let a = message(1, 0, &spec(10_240));
        assert_eq!(a, message(1, 0, &spec(10_240)));
        assert_ne!(a, message(1, 1, &spec(10_240)));
        assert_ne!(a, message(2, 0, &spec(10_240)));
    }

    #[test]
    fn close_to_the_requested_size() {
        for index in 0..200 {
            let m = message(7, index, &spec(10_240));
            assert!(
                (9_400..=11_000).contains(&m.len()),
                "message {index} is {} bytes",
                m.len()
            );
            let text = String::from_utf8(m).expect("utf-8");
            assert!(text.contains("\r\n\r\n"), "header/body separator");
            assert!(!text.contains("\n\n"), "bare LF line breaks");
        }
    }

    #[test]
    fn extra_headers_come_first() {
        let extra = [("X-Marker", "42".to_string())];
        let m = message(
            3,
            9,
            &MessageSpec {
                to: "a@b.example",
                size: 2_000,
                extra_headers: &extra,
            },
        );
        assert!(m.starts_with(b"X-Marker: 42\r\n"));
    }
}
