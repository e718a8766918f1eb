//! Errors as one log line, for every layer (sources, sinks, the organization read): an
//! error's chain of causes, and (for SDK errors) `aws::describe`'s code, message and request id.

/// An error and its causes on one line (many errors' Display is only the top of the chain).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    if let Some(rest) = causes(e) {
        message.push_str(": ");
        message.push_str(&rest);
    }
    message
}

/// The causes of an error without the error itself, on one line, or `None` when it has none:
/// for errors whose own Display may hold a secret (reqwest's includes the URL).
pub fn causes(e: &dyn std::error::Error) -> Option<String> {
    let mut parts = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    (!parts.is_empty()).then(|| parts.join(": "))
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn the_chain_and_the_causes_on_one_line() {
        let e = E(
            "top https://secret",
            Some(Box::new(E("io", Some(Box::new(E("refused", None)))))),
        );
        assert_eq!(super::chain(&e), "top https://secret: io: refused");
        assert_eq!(super::causes(&e).as_deref(), Some("io: refused"));
        assert_eq!(super::causes(&E("alone", None)), None);
    }
}
