//! Recording a change to an entity: its audit entry and, for published entities, its outbox row,
//! both in the caller's transaction, both from the entity's view before and after. Domain events
//! are recorded here too.

use super::entity::{Action, EntityView};
use super::events::EventType;
use crate::audit::{self, Actor};
use crate::auth::Caller;
use crate::db::outbox;
use crate::ids::StoreId;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Who makes a change, in which store: an API caller, or the server acting on telemetry.
#[derive(Debug, Clone)]
pub struct Author {
    pub store_id: StoreId,
    pub actor: Actor,
}

impl Author {
    pub fn telemetry(store_id: StoreId) -> Author {
        Author {
            store_id,
            actor: Actor::telemetry(),
        }
    }
}

impl From<&Caller> for Author {
    fn from(caller: &Caller) -> Author {
        Author {
            store_id: caller.store_id,
            actor: Actor::caller(caller),
        }
    }
}

impl From<&Author> for Author {
    fn from(author: &Author) -> Author {
        author.clone()
    }
}

/// The audit log's word for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
    /// An API key's secret was replaced.
    Roll,
    /// A person signed in (entity: the user).
    SignIn,
    /// A sign-in to a known account failed: a wrong password. Sign-ins refused while the
    /// account or address is throttled are not recorded (each would write to every store of
    /// the account: a flood of guesses must not become a flood of writes); they are counted in
    /// `printfarm_sign_ins_total`.
    SignInFailed,
}

impl utoipa::PartialSchema for Verb {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::string_enum_schema(Verb::ALL.map(Verb::as_str), "The kind of change.")
    }
}

impl utoipa::ToSchema for Verb {
    fn name() -> std::borrow::Cow<'static, str> {
        "AuditAction".into()
    }
}

impl Verb {
    pub const ALL: [Verb; 6] = [
        Verb::Create,
        Verb::Update,
        Verb::Delete,
        Verb::Roll,
        Verb::SignIn,
        Verb::SignInFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
            Verb::Roll => "roll",
            Verb::SignIn => "sign_in",
            Verb::SignInFailed => "sign_in_failed",
        }
    }

    /// The change it makes to the entity; sign-ins change nothing (they are only audited).
    fn action(self) -> Option<Action> {
        match self {
            Verb::Create => Some(Action::Insert),
            Verb::Update | Verb::Roll => Some(Action::Update),
            Verb::Delete => Some(Action::Delete),
            Verb::SignIn | Verb::SignInFailed => None,
        }
    }
}

pub async fn created<E: EntityView>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    after: &E,
) -> sqlx::Result<()> {
    record::<E, E>(tx, author, Verb::Create, None, Some(after)).await
}

pub async fn updated<E: EntityView>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    before: &E,
    after: &E,
) -> sqlx::Result<()> {
    record::<E, E>(tx, author, Verb::Update, Some(before), Some(after)).await
}

pub async fn deleted<E: EntityView>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    before: &E,
) -> sqlx::Result<()> {
    record::<E, E>(tx, author, Verb::Delete, Some(before), None).await
}

/// Records the audit entry and, if the entity's changes are published, the outbox row
/// (`<entity>.created|updated|deleted`). `before` and `after` are views of the same entity (one
/// may show more, e.g. a key with its new secret, which the audit redacts).
pub async fn record<B: EntityView, A: EntityView>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    verb: Verb,
    before: Option<&B>,
    after: Option<&A>,
) -> sqlx::Result<()> {
    let author = author.into();
    let Some(id) = after.map(A::id).or(before.map(B::id)) else {
        return Ok(());
    };
    let before = before.and_then(|v| serde_json::to_value(v).ok());
    let after = after.and_then(|v| serde_json::to_value(v).ok());
    let changes = audit::changes(before.as_ref(), after.as_ref());
    let entity = A::TYPE.as_str();
    audit::record(
        &mut *tx,
        author.store_id,
        &author.actor,
        verb.as_str(),
        entity,
        id,
        changes.clone(),
    )
    .await?;
    let Some(action) = verb.action() else {
        return Ok(());
    };
    if let Some(event) = EventType::change(A::TYPE, action) {
        outbox::insert_change(
            &mut *tx,
            author.store_id,
            outbox::Change {
                event_type: event.as_str(),
                entity_type: entity,
                entity_id: id,
                action: action.as_str(),
                entity: after.or(before).unwrap_or(Value::Null),
                changes,
            },
        )
        .await?;
    }
    Ok(())
}

/// Records a domain event about an entity (its entity change is recorded separately); `body` is
/// what the event carries as that entity.
pub async fn event<T: Serialize>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    event: EventType,
    entity_id: Uuid,
    body: &T,
) -> sqlx::Result<()> {
    let body = serde_json::to_value(body).unwrap_or(Value::Null);
    outbox::insert_event(
        &mut *tx,
        author.into().store_id,
        event.as_str(),
        event.entity_type().as_str(),
        entity_id,
        body,
    )
    .await?;
    Ok(())
}
