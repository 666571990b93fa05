//! Compares our ENVELOPE, BODYSTRUCTURE and BODY with what Dovecot 2.3.19
//! answered for the same messages (tests/data/dovecot/*.fetch, produced by
//! tests/interop/dovecot/oracle.py at the workspace root).
//!
//! The corpus is converted to CRLF first, as the oracle script did before
//! APPEND: Dovecot counts sizes as if bare LFs were CRLF, we count the
//! octets we store and serve.

use std::path::Path;

use mailroom_message::summarize;

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

/// Messages where we knowingly differ from Dovecot; see the reasons in
/// `known_difference`.
fn known_difference(_name: &str, _item: &str) -> Option<&'static str> {
    None
}

#[test]
fn matches_dovecot() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut names: Vec<_> = std::fs::read_dir(data.join("python-email"))
        .expect("corpus")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("msg_"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 48);
    let mut failures = Vec::new();
    for name in &names {
        let raw = crlf(&std::fs::read(data.join("python-email").join(name)).expect("msg"));
        let exp = expected(&data.join("dovecot").join(name.replace(".txt", ".fetch")));
        let got = summarize(&raw);
        for (item, g, e) in [
            ("ENVELOPE", &got.envelope, &exp.envelope),
            ("BODYSTRUCTURE", &got.body_structure, &exp.body_structure),
            ("BODY", &got.body, &exp.body),
        ] {
            if g != e && known_difference(name, item).is_none() {
                failures.push(format!("{name} {item}\n  dovecot: {e}\n  ours:    {g}"));
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
