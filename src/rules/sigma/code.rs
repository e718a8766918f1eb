//! Every problem `lint --sigma`, `validate` and `test` can say about a Sigma rule file, one
//! code each: `SG000-broken` … `SG010-no-match-in-sample` (docs/sigma.md lists them).

/// A Sigma problem's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Not Sigma as the specification writes it (YAML, a missing key, an unknown modifier…).
    Broken,
    /// A field CloudTrail records do not have.
    UnknownField,
    /// A modifier on a field whose values it cannot apply to.
    ModifierType,
    /// A condition names a selection the detection does not have.
    NoSelection,
    /// Sigma that trailwatch does not evaluate.
    Unsupported,
    /// Not a CloudTrail rule.
    NotCloudTrail,
    /// A selection no condition uses.
    UnusedSelection,
    /// A field that occurs in none of the sample's records.
    NotInSample,
    /// A field that occurs only as arrays or objects where the rule compares text.
    ShapeInSample,
    /// A quoted value on a field holding JSON documents as strings.
    JsonString,
    /// A rule that matches none of the sample's records.
    NoMatchInSample,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Broken => "SG000-broken",
            Code::UnknownField => "SG001-unknown-field",
            Code::ModifierType => "SG002-modifier-type",
            Code::NoSelection => "SG003-no-selection",
            Code::Unsupported => "SG004-unsupported",
            Code::NotCloudTrail => "SG005-not-cloudtrail",
            Code::UnusedSelection => "SG006-unused-selection",
            Code::NotInSample => "SG007-not-in-sample",
            Code::ShapeInSample => "SG008-shape-in-sample",
            Code::JsonString => "SG009-json-string",
            Code::NoMatchInSample => "SG010-no-match-in-sample",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
