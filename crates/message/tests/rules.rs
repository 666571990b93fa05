//! One test per rule of RFC 9051 §6.4.5 / §7.5.2 that the crate implements.

use mailroom_message::{Section, SectionText, SentDate, UnknownCte, binary, section, summarize};

fn sec(part: &[u32], text: Option<SectionText>) -> Section {
    Section {
        part: part.to_vec(),
        text,
    }
}

fn get(raw: &[u8], part: &[u32], text: Option<SectionText>) -> Option<String> {
    section(raw, &sec(part, text)).map(|b| String::from_utf8(b).expect("utf-8 in tests"))
}

const SIMPLE: &[u8] = b"From: Joe <joe@example.com>\r\nSubject: Hi\r\n\tthere\r\nTo: a@b.test\r\n\r\nHello\r\nWorld\r\n";

const NESTED: &[u8] = b"From: a@b.test\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
part one\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
Content-Description: forwarded\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
\r\n\
inner text\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>inner html</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: single\r\n\
\r\n\
single body\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8=\r\n\
--outer--\r\n\
epilogue\r\n";

#[test]
fn non_multipart_part_one_is_the_body() {
    assert_eq!(
        get(SIMPLE, &[1], None).as_deref(),
        Some("Hello\r\nWorld\r\n")
    );
    assert_eq!(get(SIMPLE, &[2], None), None);
    assert_eq!(get(SIMPLE, &[1, 1], None), None);
    assert_eq!(get(SIMPLE, &[0], None), None);
}

#[test]
fn whole_message_header_and_text() {
    assert_eq!(section(SIMPLE, &sec(&[], None)).as_deref(), Some(SIMPLE));
    assert_eq!(
        get(SIMPLE, &[], Some(SectionText::Header)).as_deref(),
        Some("From: Joe <joe@example.com>\r\nSubject: Hi\r\n\tthere\r\nTo: a@b.test\r\n\r\n")
    );
    assert_eq!(
        get(SIMPLE, &[], Some(SectionText::Text)).as_deref(),
        Some("Hello\r\nWorld\r\n")
    );
    assert_eq!(get(SIMPLE, &[], Some(SectionText::Mime)), None);
}

#[test]
fn header_fields_keep_folding_order_and_blank_line() {
    let fields = |f: &[&str], not| SectionText::HeaderFields {
        fields: f.iter().map(|s| s.to_string()).collect(),
        not,
    };
    assert_eq!(
        get(SIMPLE, &[], Some(fields(&["to", "SUBJECT"], false))).as_deref(),
        Some("Subject: Hi\r\n\tthere\r\nTo: a@b.test\r\n\r\n")
    );
    assert_eq!(
        get(SIMPLE, &[], Some(fields(&["subject"], true))).as_deref(),
        Some("From: Joe <joe@example.com>\r\nTo: a@b.test\r\n\r\n")
    );
    assert_eq!(
        get(SIMPLE, &[], Some(fields(&["x-none"], false))).as_deref(),
        Some("\r\n")
    );
    // On an encapsulated message.
    assert_eq!(
        get(NESTED, &[3], Some(fields(&["subject"], false))).as_deref(),
        Some("Subject: single\r\n\r\n")
    );
    // Not on a part that is not message/rfc822.
    assert_eq!(get(NESTED, &[1], Some(fields(&["subject"], false))), None);
}

#[test]
fn multipart_numbering() {
    assert_eq!(get(NESTED, &[1], None).as_deref(), Some("part one"));
    assert_eq!(
        get(NESTED, &[1], Some(SectionText::Mime)).as_deref(),
        Some("Content-Type: text/plain; charset=utf-8\r\n\r\n")
    );
    // message/rfc822 with a multipart body: 2.1 and 2.2 are its parts.
    assert_eq!(get(NESTED, &[2, 1], None).as_deref(), Some("inner text"));
    assert_eq!(
        get(NESTED, &[2, 2], None).as_deref(),
        Some("<p>inner html</p>")
    );
    assert_eq!(
        get(NESTED, &[2, 2], Some(SectionText::Mime)).as_deref(),
        Some("Content-Type: text/html\r\n\r\n")
    );
    assert_eq!(get(NESTED, &[2, 3], None), None);
    assert_eq!(
        get(NESTED, &[2], Some(SectionText::Header)).as_deref(),
        Some("Subject: inner\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n")
    );
    let text = get(NESTED, &[2], Some(SectionText::Text)).expect("2.TEXT");
    assert!(
        text.starts_with("--inner\r\n") && text.ends_with("--inner--\r\n"),
        "{text:?}"
    );
    // BODY[2] is the whole encapsulated message.
    let whole = get(NESTED, &[2], None).expect("2");
    assert!(whole.starts_with("Subject: inner\r\n") && whole.ends_with("--inner--\r\n"));
    // message/rfc822 with a non-multipart body: 3.1 is that body.
    assert_eq!(get(NESTED, &[3, 1], None).as_deref(), Some("single body"));
    assert_eq!(get(NESTED, &[3, 2], None), None);
    assert_eq!(
        get(NESTED, &[3], Some(SectionText::Text)).as_deref(),
        Some("single body")
    );
    // HEADER/TEXT are only for message/rfc822 parts.
    assert_eq!(get(NESTED, &[1], Some(SectionText::Header)), None);
    assert_eq!(get(NESTED, &[1], Some(SectionText::Text)), None);
    assert_eq!(get(NESTED, &[5], None), None);
}

#[test]
fn binary_undoes_transfer_encoding() {
    assert_eq!(binary(NESTED, &[4]), Ok(Some(b"hello".to_vec())));
    assert_eq!(binary(NESTED, &[1]), Ok(Some(b"part one".to_vec())));
    assert_eq!(binary(NESTED, &[9]), Ok(None));
    let qp = b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n";
    assert_eq!(
        binary(qp, &[1]),
        Ok(Some("café au lait\r\n".as_bytes().to_vec()))
    );
    let uu = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n";
    assert_eq!(binary(uu, &[1]), Err(UnknownCte));
    assert!(!UnknownCte.to_string().is_empty());
}

#[test]
fn envelope_raw_strings_and_defaults() {
    let raw = b"Date: Fri, 4 May 2001\r\n 14:05:44 -0400\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\n\
From: =?utf-8?q?J=C3=B6rg?= <j@x.test>\r\n\
To: Friends: a@x.test, \"B. Good\" <b@y.test>;, c@z.test\r\n\
Message-ID: <id@x.test>\r\n\
In-Reply-To:\r\n\
\r\n";
    let s = summarize(raw);
    assert_eq!(
        s.envelope,
        "(\"Fri, 4 May 2001 14:05:44 -0400\" \"=?utf-8?q?caf=C3=A9?=\" \
((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.test\")) \
((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.test\")) \
((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x.test\")) \
((NIL NIL \"Friends\" NIL)(NIL NIL \"a\" \"x.test\")(\"B. Good\" NIL \"b\" \"y.test\")(NIL NIL NIL NIL)(NIL NIL \"c\" \"z.test\")) \
NIL NIL \"\" \"<id@x.test>\")"
    );
    // Decoded values are for SEARCH.
    assert_eq!(s.headers[1], ("subject".to_string(), "café".to_string()));
    assert_eq!(s.headers[2].1, "Jörg <j@x.test>");
    assert_eq!(
        s.sent_date,
        Some(SentDate {
            unix: 988_999_544,
            offset_minutes: -240
        })
    );
}

#[test]
fn sender_and_reply_to_default_to_from_and_absent_fields_are_nil() {
    let s = summarize(b"From: a@x.test\r\nSender: s@x.test\r\n\r\n");
    assert_eq!(
        s.envelope,
        "(NIL NIL ((NIL NIL \"a\" \"x.test\")) ((NIL NIL \"s\" \"x.test\")) ((NIL NIL \"a\" \"x.test\")) NIL NIL NIL NIL NIL)"
    );
    let s = summarize(b"");
    assert_eq!(s.envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    assert_eq!(
        s.body_structure,
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
    );
    assert_eq!(
        s.body,
        "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
    );
    assert_eq!(s.size, 0);
    assert_eq!(section(b"", &sec(&[1], None)), Some(Vec::new()));
}

#[test]
fn eight_bit_headers_become_literals() {
    let s = summarize("Subject: café\r\nFrom: José <j@x.test>\r\n\r\n".as_bytes());
    assert!(s.envelope.contains("{5}\r\ncafé"), "{}", s.envelope);
    assert!(
        s.envelope.contains("(({5}\r\nJosé NIL \"j\" \"x.test\"))"),
        "{}",
        s.envelope
    );
}

#[test]
fn bodystructure_fields() {
    let s = summarize(NESTED);
    assert_eq!(
        s.body_structure,
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL)\
(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 160 \
(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) \
((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0 NIL NIL NIL NIL)\
(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 0 NIL NIL NIL NIL) \
\"alternative\" (\"boundary\" \"inner\") NIL NIL NIL) 11 NIL NIL NIL NIL)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30 (NIL \"single\" NIL NIL NIL NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL)\
(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 8 NIL NIL NIL NIL) \
\"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"
    );
    assert_eq!(
        s.body,
        "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 8 0)\
(\"message\" \"rfc822\" NIL NIL \"forwarded\" \"7bit\" 160 \
(NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) \
((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 0)\
(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 0) \"alternative\") 11)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 30 (NIL \"single\" NIL NIL NIL NIL NIL NIL NIL NIL) \
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 11 0) 2)\
(\"application\" \"octet-stream\" NIL NIL NIL \"base64\" 8) \"mixed\")"
    );
    assert_eq!(s.text, "part one\ninner text\ninner html\nsingle body");
}

#[test]
fn extension_data_disposition_language_location() {
    let raw = b"Content-Type: image/png; name=\"a b.png\"\r\n\
Content-ID: <img1@x.test>\r\n\
Content-Disposition: attachment; filename=\"a b.png\"\r\n\
Content-Language: en, de\r\n\
Content-Location: http://x.test/a.png\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
\r\n\
xx";
    assert_eq!(
        summarize(raw).body_structure,
        "(\"image\" \"png\" (\"name\" \"a b.png\") \"<img1@x.test>\" NIL \"7bit\" 2 \
\"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"a b.png\")) (\"en\" \"de\") \
\"http://x.test/a.png\")"
    );
}

#[test]
fn bare_lf_and_missing_final_boundary() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\n--b\nContent-Type: text/plain\n\nlast line";
    let s = summarize(raw);
    assert_eq!(
        s.body,
        "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)\
(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 9 0) \"mixed\")"
    );
    assert_eq!(get(raw, &[1], None).as_deref(), Some("one\ntwo"));
    assert_eq!(get(raw, &[2], None).as_deref(), Some("last line"));
    assert_eq!(
        get(raw, &[2], Some(SectionText::Mime)).as_deref(),
        Some("Content-Type: text/plain\n\n")
    );
}

#[test]
fn outer_boundary_ends_unterminated_inner_multipart() {
    let raw = b"Content-Type: multipart/mixed; boundary=out\r\n\r\n\
--out\r\nContent-Type: multipart/alternative; boundary=out-in\r\n\r\n\
--out-in\r\n\r\nA\r\n\
--out\r\n\r\nB\r\n--out--\r\n";
    assert_eq!(get(raw, &[1, 1], None).as_deref(), Some("A"));
    assert_eq!(get(raw, &[2], None).as_deref(), Some("B"));
    assert_eq!(get(raw, &[3], None), None);
}

#[test]
fn header_without_body_and_no_blank_line() {
    let raw = b"Subject: only a header\r\n";
    let s = summarize(raw);
    assert!(s.body.contains("\"7bit\" 0 0"), "{}", s.body);
    assert_eq!(
        get(raw, &[], Some(SectionText::Header)).as_deref(),
        Some("Subject: only a header\r\n")
    );
    assert_eq!(get(raw, &[], Some(SectionText::Text)).as_deref(), Some(""));
}

#[test]
fn multipart_digest_defaults_to_message_rfc822() {
    let raw = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nbody\r\n--d--\r\n";
    let s = summarize(raw);
    assert!(
        s.body
            .starts_with("((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 20 (NIL \"one\""),
        "{}",
        s.body
    );
    assert_eq!(get(raw, &[1, 1], None).as_deref(), Some("body"));
}

#[test]
fn search_text_decodes_transfer_encoding_charset_and_html() {
    let raw = b"Content-Type: multipart/alternative; boundary=x\r\n\r\n\
--x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n\
--x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+Ym9sZDwvYj4=\r\n\
--x\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n--x--\r\n";
    let s = summarize(raw);
    assert_eq!(s.text, "café\nbold");
}
