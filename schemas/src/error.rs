use arrow::error::ArrowError;

/// Who has to act on an error: the person who wrote the job or sent the data
/// (`User`), a system outside scorestream (`External`, often worth a retry), or
/// scorestream itself (`Internal`: a bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    User,
    External,
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation later may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, ErrorKind::External)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("field `{0}` is declared more than once")]
    DuplicateField(String),
    #[error("field name `{0}` is reserved for scorestream's own output columns")]
    ReservedField(String),
    #[error("field `{field}` has type {found}; event fields take {accepted}")]
    UnsupportedType {
        field: String,
        found: crate::ColumnType,
        accepted: String,
    },
    #[error("the event schema declares no fields")]
    Empty,
    #[error("internal error building Arrow data: {0}")]
    Arrow(#[from] ArrowError),
}

impl SchemaError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SchemaError::Arrow(_) => ErrorKind::Internal,
            _ => ErrorKind::User,
        }
    }
}
