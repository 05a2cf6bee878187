//! The score columns of a batch that shadows or a canary also scored: per
//! row, the model that answers for it, and every other model's score in
//! `shadow_scores`, so a comparison needs no second pass.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Array, Float32Builder, ListBuilder, StringBuilder, StructBuilder,
};
use scorestream_schemas::shadow_score_fields;

use super::operator::shadow_entry_field;

/// The score columns of a batch scored by more than one model, row by row.
pub(super) struct MixedColumns {
    score: Vec<f32>,
    names: StringBuilder,
    versions: StringBuilder,
    others: ListBuilder<StructBuilder>,
}

impl MixedColumns {
    pub(super) fn new(n: usize) -> Self {
        Self {
            score: Vec::with_capacity(n),
            names: StringBuilder::with_capacity(n, n * 8),
            versions: StringBuilder::with_capacity(n, n * 2),
            others: ListBuilder::with_capacity(
                StructBuilder::from_fields(shadow_score_fields(), n),
                n,
            )
            .with_field(Arc::new(shadow_entry_field())),
        }
    }

    /// The row's score: the model that answers for it.
    pub(super) fn answer(&mut self, (name, version): (&str, &str), s: f32) {
        self.score.push(s);
        self.names.append_value(name);
        self.versions.append_value(version);
    }

    /// Another model's score of the row, kept in `shadow_scores`.
    pub(super) fn also(&mut self, (name, version): (&str, &str), s: f32) {
        let entry = self.others.values();
        if let Some(b) = entry.field_builder::<StringBuilder>(0) {
            b.append_value(name);
        }
        if let Some(b) = entry.field_builder::<StringBuilder>(1) {
            b.append_value(version);
        }
        if let Some(b) = entry.field_builder::<Float32Builder>(2) {
            b.append_value(s);
        }
        entry.append(true);
    }

    pub(super) fn end_row(&mut self) {
        self.others.append(true);
    }

    pub(super) fn finish(mut self, scored_at: ArrayRef) -> Vec<ArrayRef> {
        vec![
            Arc::new(Float32Array::from(self.score)) as ArrayRef,
            Arc::new(self.names.finish()),
            Arc::new(self.versions.finish()),
            scored_at,
            Arc::new(self.others.finish()),
        ]
    }
}
