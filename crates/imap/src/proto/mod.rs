//! The IMAP grammar, apart from I/O and session logic: the command table, command
//! types, the parser, responses as values with their encoder, and modified UTF-7
//! mailbox names. `client` (tests only) reads responses back as a client would,
//! for the round-trip properties.

#[cfg(test)]
pub mod client;
pub mod commands;
pub mod encode;
pub mod parse;
pub mod response;
pub mod types;
pub mod untagged;
pub mod utf7;

pub use parse::{ParseError, parse_command};
pub use types::*;

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::types::{CommandBody, Rights, RightsOp, SeqNumber, SequenceSet};
    use super::{encode, parse_command, utf7};

    proptest! {
        /// Arbitrary bytes never panic the parser.
        #[test]
        fn parser_never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_command(&input);
        }

        /// Arbitrary commands built from valid pieces never panic either.
        #[test]
        fn token_soup_never_panics(tokens in proptest::collection::vec(prop_oneof![
            Just("a1"), Just(" "), Just("UID"), Just("FETCH"), Just("SEARCH"), Just("STORE"), Just("LIST"), Just("APPEND"),
            Just("("), Just(")"), Just("["), Just("]"), Just("<"), Just(">"), Just("{3}\r\nabc"), Just("~{2+}\r\nab"),
            Just("\""), Just("1:*"), Just("$"), Just("BODY.PEEK"), Just("HEADER.FIELDS"), Just("OR"), Just("NOT"),
            Just("RETURN"), Just("*"), Just("%"), Just("\\Seen"), Just("1-Jan-2020"), Just("{99}\r\n"), Just("."),
            Just("SELECT"), Just("QRESYNC"), Just("CHANGEDSINCE"), Just("VANISHED"), Just("7"), Just("1:3,9"),
        ], 0..40)) {
            let _ = parse_command(tokens.concat().as_bytes());
        }

        /// Any string the encoder emits parses back to the same string.
        #[test]
        fn encoded_strings_parse_back(s in "[ -~\t\r\n]{0,80}") {
            let cmd = format!("a LOGIN {} x", String::from_utf8_lossy(&encode::string(s.as_bytes())));
            let parsed = parse_command(cmd.as_bytes());
            prop_assert_eq!(parsed.map(|c| c.body), Ok(CommandBody::Login { user: s, password: "x".into() }));
        }

        /// Sequence sets the encoder emits (ESEARCH ALL, COPYUID) parse back to the same numbers.
        #[test]
        fn sequence_sets_round_trip(mut numbers in proptest::collection::vec(1u32..10_000, 1..50)) {
            numbers.sort_unstable();
            numbers.dedup();
            let text = encode::sequence_set(&numbers);
            let cmd = format!("a UID FETCH {text} UID");
            let Ok(c) = parse_command(cmd.as_bytes()) else { return Err(TestCaseError::fail(cmd)) };
            let CommandBody::Fetch { set, .. } = c.body else { return Err(TestCaseError::fail("not FETCH")) };
            let back: Vec<u32> = set.numbers(u32::MAX).into_iter().flat_map(|(a, b)| a..=b).collect();
            prop_assert_eq!(back, numbers);
            prop_assert!(matches!(set, SequenceSet::Ranges(r) if r.iter().all(|(a, _)| *a != SeqNumber::Largest)));
        }

        /// SETACL with any identifier and rights the encoder writes parses back to
        /// the same values, and the letters a response shows mean the same rights.
        #[test]
        fn acl_values_round_trip(identifier in "[ -~]{1,40}", bits in 0u16..(1 << 11), op in 0u8..3) {
            let rights = Rights::parse(&Rights::ALL.letters().chars().enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0).map(|(_, c)| c).collect::<String>())
                .map_err(|c| TestCaseError::fail(c.to_string()))?;
            let (prefix, want) = match op { 0 => ("", RightsOp::Replace), 1 => ("+", RightsOp::Add), _ => ("-", RightsOp::Remove) };
            let cmd = format!("a SETACL INBOX {} {}", encode::astring(&identifier), encode::astring(&format!("{prefix}{}", rights.letters())));
            let parsed = parse_command(cmd.as_bytes()).map(|c| c.body);
            prop_assert_eq!(parsed, Ok(CommandBody::SetAcl { mailbox: "INBOX".into(), identifier, op: want, rights }));
            // The response form adds only c/d (whose expansion covers the rights).
            let shown = encode::rights(rights);
            let back = Rights::parse(shown.trim_matches('"')).map_err(|c| TestCaseError::fail(c.to_string()))?;
            prop_assert!(back.contains(rights));
            prop_assert_eq!(shown.trim_matches('"').replace(['c', 'd'], ""), rights.letters());
        }

        /// A QRESYNC select parameter whose UID sets the encoder wrote parses back to
        /// the same UIDs and pairs; VANISHED writes the same set.
        #[test]
        fn qresync_parameter_round_trips(
            mut uids in proptest::collection::vec(1u32..100_000, 1..60),
            validity in 1u32..,
            modseq in 0u64..=(i64::MAX as u64),
            sample in 1usize..10,
        ) {
            uids.sort_unstable();
            uids.dedup();
            let k = sample.min(uids.len());
            let seqs: Vec<u32> = (1..=k as u32).collect();
            let cmd = format!(
                "a SELECT INBOX (QRESYNC ({validity} {modseq} {} ({} {})))",
                encode::sequence_set(&uids),
                encode::sequence_set(&seqs),
                encode::sequence_set(&uids[..k]),
            );
            let Ok(c) = parse_command(cmd.as_bytes()) else { return Err(TestCaseError::fail(cmd)) };
            let CommandBody::Select { qresync: Some(q), .. } = c.body else { return Err(TestCaseError::fail("no QRESYNC")) };
            prop_assert_eq!((q.uid_validity, q.modseq), (validity, modseq));
            let known: Vec<u32> = q.known_uids.clone().unwrap_or_default().into_iter().flat_map(|(a, b)| a..=b).collect();
            prop_assert_eq!(&known, &uids);
            prop_assert!(uids.iter().all(|&u| q.knows(u)));
            prop_assert!(uids.iter().all(|&u| uids.contains(&(u + 1)) || !q.knows(u + 1)));
            let pairs: Vec<(u32, u32)> = q.seq_match_pairs().collect();
            prop_assert_eq!(pairs, seqs.iter().copied().zip(uids[..k].iter().copied()).collect::<Vec<_>>());
            let mut out = Vec::new();
            super::untagged::Untagged::Vanished { earlier: true, uids: uids.clone() }.encode(&mut out);
            prop_assert_eq!(out, format!("* VANISHED (EARLIER) {}\r\n", encode::sequence_set(&uids)).into_bytes());
        }

        /// Modified UTF-7 round-trips every name.
        #[test]
        fn utf7_round_trips(name in "\\PC{0,30}") {
            prop_assert_eq!(utf7::decode(&utf7::encode(&name)), Some(name));
        }
    }
}
