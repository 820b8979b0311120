//! Typed ids: a `StoreId` cannot be passed where an `ApiKeyId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            sqlx::Type, utoipa::ToSchema,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A store (tenant).
    StoreId
);
typed_id!(
    /// The row id of an API key (not the public `keyId` prefix of the key itself).
    ApiKeyId
);
typed_id!(
    /// A printer.
    PrinterId
);
typed_id!(
    /// A print job.
    PrintJobId
);
typed_id!(
    /// An order.
    OrderId
);
typed_id!(
    /// A command recorded for a printer.
    CommandId
);
typed_id!(
    /// A user (a person who signs in).
    UserId
);
typed_id!(
    /// A sign-in session.
    SessionId
);
