//! Compares our ENVELOPE, BODYSTRUCTURE and BODY with what Dovecot 2.3.19
//! answered for the same messages (tests/data/dovecot/*.fetch, produced by
//! tests/interop/dovecot/oracle.py at the workspace root).
//!
//! The corpus is converted to CRLF first, as the oracle script did before
//! APPEND: Dovecot counts sizes as if bare LFs were CRLF, we count the
//! octets we store and serve.

use std::path::Path;

use mailroom_message::{Section, SectionText, section, summarize};

fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 20);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

struct Expected {
    envelope: String,
    body_structure: String,
    body: String,
}

fn expected(path: &Path) -> Expected {
    let text = String::from_utf8(std::fs::read(path).expect("read .fetch")).expect("utf-8");
    let text = text.strip_prefix("ENVELOPE ").expect("ENVELOPE first");
    let (envelope, rest) = text.split_once("\nBODYSTRUCTURE ").expect("BODYSTRUCTURE");
    let (body_structure, body) = rest.split_once("\nBODY ").expect("BODY");
    Expected {
        envelope: envelope.to_string(),
        body_structure: body_structure.to_string(),
        body: body.trim_end_matches('\n').to_string(),
    }
}

/// Where we knowingly differ from Dovecot, and why.
fn known_difference(name: &str, item: &str) -> Option<&'static str> {
    match (name, item) {
        // `z*=...` after `y*3=...`: Dovecot 2.3's rfc2231_parse does not
        // reset the index between parameters, so it reports "z*3*". We
        // report the parameter as written, "z*".
        ("params.eml", "BODYSTRUCTURE" | "BODY") => Some("Dovecot RFC 2231 index bug"),
        _ => None,
    }
}

fn corpus(dir: &str) -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let mut names: Vec<_> = std::fs::read_dir(data)
        .expect("corpus")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "SOURCE.txt")
        .collect();
    names.sort();
    names
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(s, _)| s)
}

fn compare_structures(corpus_dir: &str, expected_dir: &str) -> Vec<String> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut failures = Vec::new();
    for name in corpus(corpus_dir) {
        let raw = crlf(&std::fs::read(data.join(corpus_dir).join(&name)).expect("msg"));
        let exp = expected(
            &data
                .join(expected_dir)
                .join(format!("{}.fetch", stem(&name))),
        );
        let got = summarize(&raw);
        for (item, g, e) in [
            ("ENVELOPE", &got.envelope, &exp.envelope),
            ("BODYSTRUCTURE", &got.body_structure, &exp.body_structure),
            ("BODY", &got.body, &exp.body),
        ] {
            if g != e && known_difference(&name, item).is_none() {
                failures.push(format!("{name} {item}\n  dovecot: {e}\n  ours:    {g}"));
            }
        }
    }
    failures
}

#[test]
fn python_email_corpus_matches_dovecot() {
    assert_eq!(corpus("python-email").len(), 48);
    let failures = compare_structures("python-email", "dovecot");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn synthetic_corpus_matches_dovecot() {
    let failures = compare_structures("synthetic", "dovecot-synthetic");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// "2.1.MIME" -> Section.
fn parse_section(spec: &str) -> Section {
    let mut part = Vec::new();
    let mut rest = spec;
    while let Some((head, tail)) = rest.split_once('.').or(Some((rest, ""))) {
        match head.parse::<u32>() {
            Ok(n) => {
                part.push(n);
                rest = tail;
                if tail.is_empty() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let text = match rest {
        "" => None,
        "HEADER" => Some(SectionText::Header),
        "TEXT" => Some(SectionText::Text),
        "MIME" => Some(SectionText::Mime),
        other => {
            let (kind, list) = other.split_once(' ').expect("field list");
            let fields = list
                .trim_matches(|c| c == '(' || c == ')')
                .split(' ')
                .map(str::to_string)
                .collect();
            Some(SectionText::HeaderFields {
                fields,
                not: kind.ends_with(".NOT"),
            })
        }
    };
    Section { part, text }
}

#[test]
fn synthetic_sections_match_dovecot() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut failures = Vec::new();
    for name in corpus("synthetic") {
        let raw = crlf(&std::fs::read(data.join("synthetic").join(&name)).expect("msg"));
        let file = std::fs::read(
            data.join("dovecot-synthetic")
                .join(format!("{}.sections", stem(&name))),
        )
        .expect("sections");
        let mut i = 0;
        while i < file.len() {
            let nl = file[i..].iter().position(|&b| b == b'\n').expect("nl") + i;
            let line = std::str::from_utf8(&file[i..nl]).expect("utf-8");
            let (spec, len) = line.split_once('\t').expect("tab");
            let len: i64 = len.parse().expect("len");
            let value = (len >= 0).then(|| file[nl + 1..nl + 1 + len as usize].to_vec());
            i = nl + 1 + len.max(0) as usize + 1;
            let got = section(&raw, &parse_section(spec));
            // Dovecot answers "" where the part does not exist; we answer
            // None and let the IMAP layer decide.
            let got_cmp = got.clone().unwrap_or_default();
            let exp_cmp = value.clone().unwrap_or_default();
            if got_cmp != exp_cmp && known_difference(&name, spec).is_none() {
                failures.push(format!(
                    "{name} BODY[{spec}]\n  dovecot: {:?}\n  ours:    {:?}",
                    value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    got.map(|v| String::from_utf8_lossy(&v).into_owned())
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
