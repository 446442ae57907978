//! [`Severity`]: how bad one problem, alert or finding is. The one definition used by the
//! node agent, analytics, the notifier, the AI diagnosis and the API types.
//!
//! Spelling: lowercase (`info`, `warning`, `critical`), as in AlertRule `spec.severity` and
//! every status field of the API; the PascalCase spelling written by earlier versions of
//! the wire types (`Info`, `Warning`, `Critical`) is accepted when reading.
//! [`Severity::serialize_pascal`] writes that spelling where a format keeps it.
//!
//! Order: `Info < Warning < Critical` (`max()` is the worst). `Default` is `Info`; a field
//! that defaults otherwise says so itself (AlertRule `spec.severity` defaults to `warning`).

/// How bad something is, from least to most severe.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    #[default]
    #[serde(alias = "Info")]
    Info,
    /// Needs attention soon.
    #[serde(alias = "Warning")]
    Warning,
    /// Needs attention now.
    #[serde(alias = "Critical")]
    Critical,
}

impl Severity {
    /// The lowercase name, as serialized: `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The PascalCase name: `Info`, `Warning`, `Critical`.
    pub fn as_pascal_str(self) -> &'static str {
        match self {
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Critical => "Critical",
        }
    }

    /// Parses `info`, `warning` or `critical` in any case, ignoring surrounding whitespace;
    /// `None` for anything else.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => None,
        }
    }

    /// `serialize_with` helper writing the PascalCase name ([`Severity::as_pascal_str`]),
    /// for formats that keep that spelling.
    ///
    /// # Errors
    /// The serializer's error.
    pub fn serialize_pascal<S: serde::Serializer>(s: &Severity, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.as_pascal_str())
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_out_both_spellings_in() {
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            let json = serde_json::to_string(&s).expect("serialize");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            let lower: Severity = serde_json::from_str(&json).expect("lowercase");
            let pascal: Severity =
                serde_json::from_str(&format!("\"{}\"", s.as_pascal_str())).expect("PascalCase");
            assert_eq!((lower, pascal), (s, s));
        }
        assert!(serde_json::from_str::<Severity>("\"CRITICAL\"").is_err());
    }

    #[test]
    fn ordered_least_to_most_severe() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(Severity::default(), Severity::Info);
    }

    #[test]
    fn parse_is_lenient_about_case_and_space() {
        assert_eq!(Severity::parse(" Critical "), Some(Severity::Critical));
        assert_eq!(Severity::parse("WARNING"), Some(Severity::Warning));
        assert_eq!(Severity::parse("info"), Some(Severity::Info));
        assert_eq!(Severity::parse("fatal"), None);
    }
}
