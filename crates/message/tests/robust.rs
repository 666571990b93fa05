//! Nothing panics, whatever the input; and over the corpus, the sections
//! agree with the sizes BODYSTRUCTURE reports.

use std::path::Path;

use mailroom_message::{Section, SectionText, binary, section, summarize};
use proptest::prelude::*;

fn all_sections(path: Vec<u32>) -> Vec<Section> {
    let mut out = vec![Section {
        part: path.clone(),
        text: None,
    }];
    for text in [
        SectionText::Header,
        SectionText::Text,
        SectionText::Mime,
        SectionText::HeaderFields {
            fields: vec!["subject".into(), "from".into()],
            not: false,
        },
        SectionText::HeaderFields {
            fields: vec!["subject".into()],
            not: true,
        },
    ] {
        out.push(Section {
            part: path.clone(),
            text: Some(text),
        });
    }
    out
}

fn exercise(raw: &[u8]) {
    let s = summarize(raw);
    assert_eq!(s.size, raw.len() as u64);
    for path in [
        vec![],
        vec![1],
        vec![2],
        vec![1, 1],
        vec![2, 1],
        vec![1, 2, 3],
        vec![0],
    ] {
        for sec in all_sections(path.clone()) {
            let _ = section(raw, &sec);
        }
        let _ = binary(raw, &path);
    }
}

/// Byte soup biased towards MIME syntax, so that the parser's branches
/// (boundaries, folding, quoting, encodings) are reached.
fn mime_like() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"Content-Type: multipart/mixed; boundary=b\r\n"[..],
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: multipart/digest; boundary=\"c\"\r\n",
        b"Content-Type: text/plain; charset*0*=utf-8''a; charset*1=b\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"From: \"a\\\"b\" <@r:x@y>, G: c@d;\r\n",
        b"Subject: =?utf-8?q?x=41?= =?bad\r\n",
        b"\r\n",
        b"\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"--c\n",
        b" folded\r\n",
        b"(comment (nested) \\",
        b"=\r\n",
        b"=4",
        b"\"",
        b"<",
        b";",
        b"\xff\xfe\x00",
    ]);
    prop::collection::vec(
        prop_oneof![
            pieces.prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 0..8)
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&raw);
    }

    #[test]
    fn mime_like_bytes_never_panic(raw in mime_like()) {
        exercise(&raw);
    }
}

#[test]
fn deep_nesting_does_not_overflow() {
    let mut raw = Vec::new();
    for _ in 0..10_000 {
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    exercise(&raw);
    let mut raw = Vec::new();
    for i in 0..10_000 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    exercise(&raw);
}

/// Reads the sizes out of a BODY (non-extensible) structure and compares
/// them with section() for every part: the size field is the octet count
/// of BODY[part] (RFC 9051 §7.5.2 body-fld-octets).
#[test]
fn corpus_sections_match_body_sizes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/python-email");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("msg_") {
            continue;
        }
        let raw = std::fs::read(&path).expect("read");
        exercise(&raw);
        let s = summarize(&raw);
        let mut parts = Vec::new();
        collect_sizes(s.body.as_bytes(), &mut 0, &mut Vec::new(), &mut parts, true);
        assert!(!parts.is_empty(), "{name}: no parts in {}", s.body);
        for (path, size) in parts {
            let got = section(
                &raw,
                &Section {
                    part: path.clone(),
                    text: None,
                },
            );
            // A multipart without parts is reported with one empty
            // text/plain part (as Dovecot does) that has no section.
            let Some(got) = got else {
                assert_eq!(size, 0, "{name}: part {path:?} missing");
                continue;
            };
            assert_eq!(got.len(), size, "{name}: part {path:?}");
            n += 1;
        }
        // The whole message is header + text.
        let h = section(
            &raw,
            &Section {
                part: vec![],
                text: Some(SectionText::Header),
            },
        )
        .expect("header");
        let t = section(
            &raw,
            &Section {
                part: vec![],
                text: Some(SectionText::Text),
            },
        )
        .expect("text");
        assert_eq!(h.len() + t.len(), raw.len(), "{name}");
    }
    assert!(n > 100, "only {n} parts checked");
}

/// A tiny reader for the BODY grammar: collects (part path, octets) of
/// every non-multipart part. `root` is true for the top-level body.
fn collect_sizes(
    s: &[u8],
    i: &mut usize,
    path: &mut Vec<u32>,
    out: &mut Vec<(Vec<u32>, usize)>,
    root: bool,
) {
    assert_eq!(s[*i], b'(');
    *i += 1;
    if s[*i] == b'(' {
        // multipart: children then subtype.
        let mut n = 0;
        while s[*i] == b'(' {
            n += 1;
            path.push(n);
            collect_sizes(s, i, path, out, false);
            path.pop();
        }
        skip_to_close(s, i);
        return;
    }
    // single part: type subtype params id desc enc size ...
    let mut atoms = Vec::new();
    while atoms.len() < 7 {
        atoms.push(read_item(s, i));
    }
    let size: usize = String::from_utf8_lossy(&atoms[6]).parse().expect("size");
    let my_path = if root { vec![1] } else { path.clone() };
    out.push((my_path.clone(), size));
    let is_message = atoms[0].eq_ignore_ascii_case(b"\"message\"")
        && atoms[1].eq_ignore_ascii_case(b"\"rfc822\"");
    if is_message {
        read_item(s, i); // envelope
        skip_ws(s, i);
        let mut inner = my_path.clone();
        let start = out.len();
        collect_sizes(s, i, &mut inner, out, false);
        // A non-multipart encapsulated body is part N.1.
        if out.len() == start + 1 && out[start].0 == my_path {
            out[start].0.push(1);
        }
    }
    skip_to_close(s, i);
}

fn skip_ws(s: &[u8], i: &mut usize) {
    while s[*i] == b' ' {
        *i += 1;
    }
}

/// Reads one item (atom, quoted string, literal or parenthesised list).
fn read_item(s: &[u8], i: &mut usize) -> Vec<u8> {
    skip_ws(s, i);
    let start = *i;
    match s[*i] {
        b'"' => {
            *i += 1;
            while s[*i] != b'"' {
                if s[*i] == b'\\' {
                    *i += 1;
                }
                *i += 1;
            }
            *i += 1;
        }
        b'{' => {
            let close = s[*i..].iter().position(|&b| b == b'}').expect("}") + *i;
            let n: usize = std::str::from_utf8(&s[*i + 1..close])
                .expect("n")
                .parse()
                .expect("n");
            *i = close + 3 + n;
        }
        b'(' => {
            let mut depth = 0;
            loop {
                match s[*i] {
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            *i += 1;
                            break;
                        }
                    }
                    b'"' | b'{' => {
                        read_item(s, i);
                        continue;
                    }
                    _ => {}
                }
                *i += 1;
            }
        }
        _ => {
            while s[*i] != b' ' && s[*i] != b')' {
                *i += 1;
            }
        }
    }
    s[start..*i].to_vec()
}

fn skip_to_close(s: &[u8], i: &mut usize) {
    loop {
        skip_ws(s, i);
        if s[*i] == b')' {
            *i += 1;
            return;
        }
        read_item(s, i);
    }
}
