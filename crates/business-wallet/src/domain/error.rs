//! [`DomainError`]: why an operation of the domain did not happen, in the domain's own terms.
//! The API and the UI turn it into their answer with the one `From` of the API error type; the
//! domain itself knows nothing of HTTP.

use serde_json::Value;

use crate::channels::webhook::request::InvalidField;

/// Why a domain operation did not happen. Nothing was written when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input is malformed or breaks a field rule.
    #[error("{message}")]
    Invalid {
        /// What is wrong, for a person.
        message: String,
        /// Where in the input, when known (`{"field": ...}`).
        details: Option<Value>,
    },
    /// Each field is fine on its own, but the combination is impossible.
    #[error("{message}")]
    Unprocessable {
        /// What is wrong, for a person.
        message: String,
        /// Where in the input, when known.
        details: Option<Value>,
    },
    /// The caller lacks the authority, or it is for another wallet.
    #[error("{0}")]
    Forbidden(String),
    /// No such wallet, identifier, channel or delivery.
    #[error("{0}")]
    NotFound(String),
    /// The thing is not in a state that allows the operation.
    #[error("{0}")]
    Conflict(String),
    /// Another channel already has that name.
    #[error("{0}")]
    Duplicate(String),
    /// The store failed or cannot be reached.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    /// Something that should not fail did; the cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The errors of one input's fields, collected so that all are reported at once.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<DomainError>);

impl FieldErrors {
    /// The value, or `None` with the error kept.
    pub fn take<T>(&mut self, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.0.push(err);
                None
            }
        }
    }

    /// Keeps an error.
    pub fn push(&mut self, err: DomainError) {
        self.0.push(err);
    }

    /// The one error to answer with: a single error as it is; several as one [`DomainError::Invalid`]
    /// whose message joins theirs and whose details name the first field (`field`) and list
    /// every one (`errors: [{field, message}]`).
    pub fn into_error(mut self) -> DomainError {
        if self.0.len() <= 1 {
            return self
                .0
                .pop()
                .unwrap_or_else(|| DomainError::internal(anyhow::anyhow!("no field error was collected")));
        }
        let field_of = |err: &DomainError| match err {
            DomainError::Invalid { details, .. } | DomainError::Unprocessable { details, .. } => details
                .as_ref()
                .and_then(|d| d.get("field"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        };
        let errors: Vec<Value> = self
            .0
            .iter()
            .map(|err| serde_json::json!({ "field": field_of(err), "message": err.to_string() }))
            .collect();
        DomainError::Invalid {
            message: self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            details: Some(serde_json::json!({ "field": field_of(&self.0[0]), "errors": errors })),
        }
    }
}

impl From<InvalidField> for DomainError {
    fn from(err: InvalidField) -> Self {
        if err.impossible {
            DomainError::unprocessable(err.field, err.message)
        } else {
            DomainError::invalid_field(err.field, err.message)
        }
    }
}

impl DomainError {
    /// Malformed input, with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        DomainError::Invalid {
            message: message.into(),
            details: None,
        }
    }

    /// Malformed input in `field`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            message: format!("{field}: {}", message.into()),
            details: Some(serde_json::json!({ "field": field })),
        }
    }

    /// An impossible combination, named by `field`.
    pub fn unprocessable(field: &str, message: impl Into<String>) -> Self {
        DomainError::Unprocessable {
            message: format!("{field}: {}", message.into()),
            details: Some(serde_json::json!({ "field": field })),
        }
    }

    /// An unexpected failure.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        DomainError::Internal(err.into())
    }
}
