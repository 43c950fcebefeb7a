//! The vocabulary of a delivery's life: [`DeliveryState`] and [`AttemptOutcome`], the closed
//! sets of values stored as TEXT in `integration_delivery.state` and
//! `integration_delivery_attempt.outcome` (their spellings are written here and nowhere else;
//! the store binds and decodes the enums), and [`Resolution`], what an attempt decides for its
//! delivery and the state that follows.

use std::time::Duration;

use serde::Serialize;

/// Text that is none of the spellings of a closed set of stored values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    /// Which set, e.g. `delivery state`.
    pub what: &'static str,
    /// The text that was read.
    pub value: String,
}

/// Declares a closed set of values stored as TEXT: the enum, the one spelling of each variant
/// (`as_str`, [`FromStr`](std::str::FromStr), `Display`, JSON), every variant in declaration
/// order (`ALL`), and how sqlx binds and decodes it on every backend (as the spelling's text,
/// so the stored values are exactly those written here).
macro_rules! stored_text {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and shown) spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            /// The value spelled exactly `text` (letter case included).
            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        what: $what,
                        value: text.to_string(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&'r str as sqlx::Decode<'r, DB>>::decode(value)?.parse()?)
            }
        }
    };
}

stored_text! {
    /// The state of a delivery (`integration_delivery.state`).
    pub enum DeliveryState ("delivery state") {
        /// Waiting for its first attempt or, between retries, for the next one.
        Pending = "PENDING",
        /// Leased by a dispatcher: an attempt is under way (or its dispatcher died and the
        /// lease has yet to end).
        Delivering = "DELIVERING",
        /// The receiver accepted it.
        Delivered = "DELIVERED",
        /// Rejected, or out of attempts: waits for an operator to replay or dismiss it.
        Failed = "FAILED",
        /// Failed and put aside by an operator; kept by the retention job.
        Dismissed = "DISMISSED",
    }
}

impl DeliveryState {
    /// The default filter of the log: everything that still needs attention or is under way.
    pub const ACTIVE: &'static [DeliveryState] =
        &[DeliveryState::Pending, DeliveryState::Delivering, DeliveryState::Failed];
}

stored_text! {
    /// How one attempt ended (`integration_delivery_attempt.outcome`, and the `outcome` label
    /// of the attempts metric): the kind of a channel's [`Outcome`](crate::channels::Outcome).
    pub enum AttemptOutcome ("attempt outcome") {
        /// The receiver accepted the event.
        Delivered = "DELIVERED",
        /// A failure that may go away by sending again later.
        Retryable = "RETRYABLE",
        /// A failure that sending again will not mend.
        Rejected = "REJECTED",
    }
}

/// What an attempt decides for its delivery (see [`crate::dispatch::retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Done.
    Delivered,
    /// Attempted again after this delay.
    Retry {
        /// From when the outcome is stored.
        delay: Duration,
    },
    /// Given up; an operator may replay it.
    Failed,
}

impl Resolution {
    /// The delivery's state once the resolution is stored.
    pub fn state(self) -> DeliveryState {
        match self {
            Resolution::Delivered => DeliveryState::Delivered,
            Resolution::Retry { .. } => DeliveryState::Pending,
            Resolution::Failed => DeliveryState::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_value_reads_back_from_its_spelling_and_nothing_else_does() {
        for state in DeliveryState::ALL {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(*state));
            assert_eq!(state.to_string(), state.as_str());
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        for outcome in AttemptOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<AttemptOutcome>(), Ok(*outcome));
        }
        let lower = DeliveryState::Pending.as_str().to_ascii_lowercase();
        assert_eq!(
            lower.parse::<DeliveryState>().unwrap_err().to_string(),
            format!("unknown delivery state `{lower}`")
        );
        assert!("active".parse::<DeliveryState>().is_err());
        assert!(DeliveryState::ACTIVE.iter().all(|s| DeliveryState::ALL.contains(s)));
    }

    #[test]
    fn each_resolution_leads_to_its_state() {
        let retry = Resolution::Retry {
            delay: Duration::from_secs(1),
        };
        assert_eq!(Resolution::Delivered.state(), DeliveryState::Delivered);
        assert_eq!(retry.state(), DeliveryState::Pending);
        assert_eq!(Resolution::Failed.state(), DeliveryState::Failed);
    }
}
