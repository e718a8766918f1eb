//! The filter-pattern parser must not panic, overflow its stack or blow up on any input;
//! a parsed pattern must print to text that parses back to the same pattern, and linting
//! and matching it must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch::filter::{lint::lint, Pattern};

const EVENT: &str = r#"{"eventVersion":"1.08","eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com","awsRegion":"us-east-1","readOnly":false,"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"},"resources":[{"ARN":"a","type":"AWS::IAM::Role"}],"requestParameters":{"n":5,"x":null}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = lint(text);
    if let Ok(p) = Pattern::parse(text) {
        let printed = p.to_string();
        let again = Pattern::parse(&printed).expect("a printed pattern parses");
        assert_eq!(again, p, "round trip through {printed:?}");
        let _ = p.matches_message(EVENT);
        let _ = p.matches_message(text);
    }
});
