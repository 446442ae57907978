//! Validation the OpenAPI schema cannot express (parsing, cross-field rules), and the
//! duration parser. Pure functions; the controller turns the result into the `Accepted`
//! condition.

use std::fmt;

/// One problem with a spec, located by its JSON path (e.g. `spec.ping.timeout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, starting at `spec`.
    pub path: String,
    /// What is wrong and, where possible, what would be accepted.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one spec, in field order. Empty means valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// `Ok(())` when no problem was recorded, else `Err(self)`.
    ///
    /// # Errors
    /// When at least one problem was recorded.
    pub fn into_result(self) -> Result<(), Errors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Whether no problem was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Errors {
    /// `path: message; path: message` — suitable for a condition message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Parses a duration of the form `([0-9]+(\.[0-9]+)?(ms|s|m|h))+`, e.g. `1m30s`, `250ms`,
/// `1.5h` (the subset of Go's `time.ParseDuration` that the CRD schemas accept).
///
/// # Errors
/// A message saying what is wrong: empty text, a missing number or unit, an unknown unit,
/// or a value that overflows.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if text.is_empty() {
        return Err("empty duration: expected e.g. 30s, 1m30s, 250ms, 1.5h".into());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &text[start..i];
        let valid_number = !number.is_empty()
            && !number.starts_with('.')
            && !number.ends_with('.')
            && number.matches('.').count() <= 1;
        if !valid_number {
            return Err(format!(
                "invalid duration {text:?}: expected a number before each unit (e.g. 1m30s)"
            ));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: bad number {number:?}"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let seconds_per_unit = match &text[unit_start..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit after {number} (use ms, s, m or h)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        total += value * seconds_per_unit;
    }
    std::time::Duration::try_from_secs_f64(total)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        for (text, needle) in [
            ("", "empty"),
            ("10", "missing unit"),
            ("10d", "unknown unit \"d\""),
            ("m", "expected a number"),
            ("1..5s", "expected a number"),
            (".5s", "expected a number"),
            ("1e3s", "unknown unit \"e\""),
            ("-1s", "expected a number"),
            ("1 s", "missing unit"),
        ] {
            let e = parse_duration(text).expect_err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn errors_display_joins_paths() {
        let mut e = Errors::default();
        e.push("spec.a", "bad");
        e.push("spec.b", "worse");
        assert_eq!(e.to_string(), "spec.a: bad; spec.b: worse");
        assert!(e.into_result().is_err());
        assert!(Errors::default().into_result().is_ok());
    }
}
