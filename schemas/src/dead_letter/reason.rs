//! Why an event was dead-lettered, as a code from a small closed set: safe as
//! a metric label, a Parquet column to filter on and a header to route on,
//! next to the free-text reason a person reads.

use super::DeadLetterStage;

/// What was wrong with a dead-lettered event. Each code belongs to one
/// stage; the set is closed so dashboards and alerts can name every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// Not valid JSON, or an empty message.
    InvalidJson,
    /// Valid JSON, but not one object.
    NotAnObject,
    /// A required field is absent or null.
    MissingField,
    /// A field's value has the wrong type or does not fit it (an int64
    /// overflow, an unparseable timestamp).
    WrongType,
    /// Larger than the job's `max_message_bytes`.
    Oversized,
    /// The feature store has no features for the event's key, or no value
    /// for a feature, under `on_missing = "dead_letter"`.
    FeatureMissing,
    /// A feature's value is older than its `max_age`, under
    /// `on_stale = "dead_letter"`.
    FeatureStale,
    /// Reserved for the schema registry: the schema a message names could
    /// not be fetched. Nothing produces it yet.
    SchemaUnavailable,
}

impl ReasonCode {
    /// Every code, in declaration order: `code as usize` indexes it.
    pub const ALL: [ReasonCode; 8] = [
        ReasonCode::InvalidJson,
        ReasonCode::NotAnObject,
        ReasonCode::MissingField,
        ReasonCode::WrongType,
        ReasonCode::Oversized,
        ReasonCode::FeatureMissing,
        ReasonCode::FeatureStale,
        ReasonCode::SchemaUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InvalidJson => "invalid_json",
            ReasonCode::NotAnObject => "not_an_object",
            ReasonCode::MissingField => "missing_field",
            ReasonCode::WrongType => "wrong_type",
            ReasonCode::Oversized => "oversized",
            ReasonCode::FeatureMissing => "feature_missing",
            ReasonCode::FeatureStale => "feature_stale",
            ReasonCode::SchemaUnavailable => "schema_unavailable",
        }
    }

    /// The code named `s`, or an error listing every code.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|c| c.as_str()).collect();
                format!(
                    "unknown reason code `{s}`; expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// The stage that produces this code.
    pub fn stage(self) -> DeadLetterStage {
        match self {
            ReasonCode::InvalidJson => DeadLetterStage::Parse,
            ReasonCode::NotAnObject
            | ReasonCode::MissingField
            | ReasonCode::WrongType
            | ReasonCode::SchemaUnavailable => DeadLetterStage::Schema,
            ReasonCode::Oversized => DeadLetterStage::Oversized,
            ReasonCode::FeatureMissing | ReasonCode::FeatureStale => DeadLetterStage::Features,
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dead letters counted by stage and reason code: a fixed array, so a
/// commit's counts cost no allocation and add up in constant time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeadLetterCounts {
    n: [[usize; ReasonCode::ALL.len()]; DeadLetterStage::ALL.len()],
}

impl DeadLetterCounts {
    pub fn add(&mut self, stage: DeadLetterStage, code: ReasonCode) {
        self.n[stage as usize][code as usize] += 1;
    }

    pub fn absorb(&mut self, other: &DeadLetterCounts) {
        for (to, from) in self.n.iter_mut().zip(&other.n) {
            to.iter_mut().zip(from).for_each(|(t, f)| *t += f);
        }
    }

    /// Every (stage, code) pair with a count above zero.
    pub fn iter(&self) -> impl Iterator<Item = (DeadLetterStage, ReasonCode, usize)> + '_ {
        DeadLetterStage::ALL.into_iter().flat_map(move |s| {
            ReasonCode::ALL
                .into_iter()
                .map(move |c| (s, c, self.n[s as usize][c as usize]))
                .filter(|&(_, _, n)| n > 0)
        })
    }

    pub fn of_stage(&self, stage: DeadLetterStage) -> usize {
        self.n[stage as usize].iter().sum()
    }

    pub fn total(&self) -> usize {
        self.n.iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_indexed_by_their_discriminant_and_parse_back() {
        for (i, c) in ReasonCode::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c}");
            assert_eq!(ReasonCode::parse(c.as_str()), Ok(*c));
        }
        let err = ReasonCode::parse("bogus").expect_err("unknown");
        assert!(
            err.contains("invalid_json") && err.contains("bogus"),
            "{err}"
        );
    }

    #[test]
    fn counts_add_up_by_stage_and_code() {
        let mut a = DeadLetterCounts::default();
        a.add(DeadLetterStage::Parse, ReasonCode::InvalidJson);
        a.add(DeadLetterStage::Schema, ReasonCode::WrongType);
        let mut b = DeadLetterCounts::default();
        b.add(DeadLetterStage::Schema, ReasonCode::WrongType);
        a.absorb(&b);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![
                (DeadLetterStage::Parse, ReasonCode::InvalidJson, 1),
                (DeadLetterStage::Schema, ReasonCode::WrongType, 2)
            ]
        );
        assert_eq!((a.of_stage(DeadLetterStage::Schema), a.total()), (2, 3));
    }
}
