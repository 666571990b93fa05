//! The pieces responses are written with: atom, quoted string or literal for
//! each value (RFC 9051 §4.3; literal8 too, in `write_literal` only), dates,
//! rights, sequence sets and thread trees. `untagged.rs` and `response.rs` put
//! them together.

use mailroom_store::Rights;

use crate::threading::Threads;

/// Is `s` a valid atom (RFC 9051 §9 ATOM-CHAR)?
fn is_atom(s: &str) -> bool {
    !s.is_empty()
        && !s.eq_ignore_ascii_case("NIL")
        && s.bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b))
}

/// Can `s` be sent as a quoted string? (No CR, LF or NUL; 8-bit only when the
/// client accepts UTF-8, which the caller decides.)
fn quotable(s: &[u8]) -> bool {
    s.len() < 1024 && !s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// A string as a quoted string if possible, else a literal.
pub fn string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

/// Appends `s` as a quoted string or a literal.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if quotable(s) && s.is_ascii() {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        write_literal(out, s);
    }
}

/// Appends a literal `{n}` CRLF octets; `~{n}` (literal8) when it contains NUL.
pub fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    if s.contains(&0) {
        out.push(b'~');
    }
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// An astring as text (atom when possible), for places that need a `String`.
pub fn astring(s: &str) -> String {
    if is_atom(s) {
        s.to_string()
    } else {
        String::from_utf8_lossy(&string(s.as_bytes())).into_owned()
    }
}

/// A mailbox name as the session shows it: always quoted (as Dovecot does),
/// a literal only when quoting is impossible. `utf8` allows 8-bit in the quotes.
pub fn write_mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    let wire = if utf8 {
        name.to_string()
    } else {
        super::utf7::encode(name)
    };
    if quotable(wire.as_bytes()) && (utf8 || wire.is_ascii()) {
        out.push(b'"');
        for b in wire.bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        write_literal(out, wire.as_bytes());
    }
}

/// Rights as ACL, LISTRIGHTS and MYRIGHTS responses show them (RFC 4314 §3.6-3.8):
/// an astring of the letters, with the legacy `c`/`d` added (§2.1.1); `""` for none.
pub fn rights(rights: Rights) -> String {
    astring(&rights.imap())
}

/// INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"`.
pub fn internal_date(unix: i64, offset_minutes: i32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let offset =
        time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(time::UtcOffset::UTC);
    let dt = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let abs = offset_minutes.unsigned_abs();
    format!(
        "\"{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
        dt.day(),
        MONTHS[dt.month() as usize - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        sign,
        abs / 60,
        abs % 60
    )
}

/// Numbers as a compact sequence set of ascending runs in the order given
/// (`1:3,7`, or `5,1:2` for ESORT, RFC 5267 §3.2); empty for none.
pub fn sequence_set(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && end.checked_add(1) == Some(numbers[i + 1]) {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The THREAD response's data (§5): `(1 2 (3)(4 5))(6)`... for the threads.
pub fn threads(threads: &Threads) -> String {
    enum Step {
        Members(usize),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack: Vec<Step> = Vec::new();
    for &t in threads.roots.iter().rev() {
        stack.push(Step::Text(")"));
        stack.push(Step::Members(t));
        stack.push(Step::Text("("));
    }
    while let Some(step) = stack.pop() {
        let n = match step {
            Step::Text(s) => {
                out.push_str(s);
                continue;
            }
            Step::Members(n) => n,
        };
        let Some((number, children)) = threads.nodes.get(n) else {
            continue;
        };
        if let Some(number) = number {
            out.push_str(&number.to_string());
            if !children.is_empty() {
                out.push(' ');
            }
        }
        match children.as_slice() {
            [] => {}
            [only] => stack.push(Step::Members(*only)),
            many => {
                for &c in many.iter().rev() {
                    stack.push(Step::Text(")"));
                    stack.push(Step::Members(c));
                    stack.push(Step::Text("("));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_choose_their_form() {
        assert_eq!(string(b"abc"), b"\"abc\"");
        assert_eq!(string(b"a\"b\\"), b"\"a\\\"b\\\\\"");
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(string("ä".as_bytes()), "{2}\r\nä".as_bytes());
        assert_eq!(string(b"a\0"), b"~{2}\r\na\0");
        assert_eq!(astring("From"), "From");
        assert_eq!(astring("NIL"), "\"NIL\"");
        assert_eq!(astring("a b"), "\"a b\"");
        let mut out = Vec::new();
        write_mailbox(&mut out, "Entwürfe", false);
        assert_eq!(out, b"\"Entw&APw-rfe\"");
        out.clear();
        write_mailbox(&mut out, "Entwürfe", true);
        assert_eq!(out, "\"Entwürfe\"".as_bytes());
    }

    #[test]
    fn rights_as_shown() {
        assert_eq!(rights(Rights::ALL), "lrswipkxteacd");
        assert_eq!(rights(Rights::NONE), "\"\"");
    }

    #[test]
    fn dates_and_sets() {
        assert_eq!(
            internal_date(837596665, -420),
            "\"17-Jul-1996 02:44:25 -0700\""
        );
        assert_eq!(internal_date(0, 0), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(sequence_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(sequence_set(&[]), "");
    }

    #[test]
    fn encoded_strings_parse_back() {
        for s in [
            "",
            "abc",
            "with space",
            "quote\"back\\",
            "line\r\nbreak",
            "NIL",
            "ümlaut",
            "{5}",
        ] {
            let cmd = format!(
                "a LOGIN {} x",
                String::from_utf8_lossy(&string(s.as_bytes()))
            );
            match super::super::parse::parse_command(cmd.as_bytes()) {
                Ok(c) => assert_eq!(
                    c.body,
                    super::super::types::CommandBody::Login {
                        user: s.into(),
                        password: "x".into()
                    }
                ),
                Err(e) => panic!("{s:?}: {e:?}"),
            }
        }
    }
}
