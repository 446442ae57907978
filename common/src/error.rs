//! Error formatting shared by every component.

/// The message of `err` and all its sources, joined by `": "`.
///
/// reqwest's, hyper's and lettre's own `Display` stop at the outermost error ("error sending
/// request for url …"), which hides the cause an operator needs: "dns error", "Connection
/// refused (os error 111)", a TLS alert. A source whose text the chain already contains is
/// skipped, so wrappers that repeat their cause do not print it twice.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(&'static str, Option<std::io::Error>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrap {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn joins_sources_and_skips_repeats() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Wrap("error sending request", Some(refused));
        assert_eq!(error_chain(&e), "error sending request: refused");
        let repeat = Wrap("connect: refused", Some(std::io::Error::other("refused")));
        assert_eq!(error_chain(&repeat), "connect: refused");
        assert_eq!(error_chain(&Wrap("alone", None)), "alone");
    }
}
