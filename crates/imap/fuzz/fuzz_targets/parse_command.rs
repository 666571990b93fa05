//! Any bytes: the parser must answer Ok or Err, never panic, and whatever it
//! accepts must survive the response encoder and parse back (strings, sets).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailroom_imap::proto::{CommandBody, encode, parse_command};

fuzz_target!(|data: &[u8]| {
    let Ok(command) = parse_command(data) else { return };
    if let CommandBody::Login { user, password } = command.body {
        let again = format!(
            "a LOGIN {} {}",
            String::from_utf8_lossy(&encode::string(user.as_bytes())),
            String::from_utf8_lossy(&encode::string(password.as_bytes()))
        );
        let parsed = parse_command(again.as_bytes()).map(|c| c.body);
        assert_eq!(parsed, Ok(CommandBody::Login { user, password }));
    }
});
