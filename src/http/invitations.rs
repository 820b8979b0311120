//! Invitations (`POST /v1/users/invite`, `/v1/invitations…`). Tokens are single-use, expire,
//! are stored only as keyed digests, and are mailed when SMTP is configured, else shown once to
//! the inviter.

use super::extract::{ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use super::respond::{Created, NoStore};
use super::sessions::User;
use crate::app::AppState;
use crate::auth::{session, Caller, Permission};
use crate::db::invitations::{self as db, InvitationRow, NewInvitation};
use crate::db::{users, CreatedBy};
use crate::domain::changes::{self, Author};
use crate::domain::entity::EntityView;
use crate::domain::grants;
use crate::domain::members::Member;
use crate::domain::quotas::{self, Counted};
use crate::domain::roles::{self, StoreRoles};
use crate::domain::validate::{self, Errors};
use crate::domain::EntityType;
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::{StoreId, UserId};
use crate::middleware::origin;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// An invitation is good for this long.
const INVITATION_DAYS: i64 = 7;
/// What a token that opens no invitation is told.
const NO_OPEN_INVITATION: &str =
    "no open invitation has this token: it was used, revoked or expired, or never made";

/// The routes that act in a store (behind a key or a session).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite))
        .routes(routes!(list_invitations))
        .routes(routes!(revoke_invitation))
}

/// The route that needs no credentials: accepting.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(accept_invitation))
}

/// A new single-use token (an invitation's, a password reset's): `prefix` and 43 random
/// letters and digits.
pub(super) fn new_token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
    )
}

/// Whether `token` has the shape [`new_token`] gives, so that no other is looked up.
pub(super) fn well_formed(token: &str, prefix: &str) -> bool {
    token
        .strip_prefix(prefix)
        .is_some_and(|r| r.len() == 43 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "teammate@example.com", "roles": ["operator"], "permissions": []}))]
pub struct Invite {
    #[schema(schema_with = crate::domain::validate::email_schema)]
    pub email: String,
    #[serde(default)]
    #[schema(value_type = Vec<crate::auth::RoleId>)]
    pub roles: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<crate::auth::Permission>)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: Uuid,
    pub store_id: StoreId,
    pub email: String,
    /// What the new member will hold.
    #[schema(value_type = Vec<crate::auth::RoleId>)]
    pub roles: Vec<String>,
    #[schema(value_type = Vec<crate::auth::Permission>)]
    pub permissions: Vec<String>,
    pub invited_by_key_id: Option<Uuid>,
    pub invited_by_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<InvitationRow> for Invitation {
    fn from(r: InvitationRow) -> Self {
        Invitation {
            id: r.id,
            store_id: r.store_id,
            email: r.email,
            roles: r.roles,
            permissions: r.permissions,
            invited_by_key_id: r.invited_by_key_id,
            invited_by_user_id: r.invited_by_user_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

impl EntityView for Invitation {
    const TYPE: EntityType = EntityType::Invitation;
    fn id(&self) -> Uuid {
        self.id
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationCreated {
    #[serde(flatten)]
    pub invitation: Invitation,
    /// Whether it was mailed to `email` (SMTP configured).
    pub emailed: bool,
    /// The token to pass on, shown this once, when it was not mailed.
    pub token: Option<String>,
}

/// An invitation accepted. `name` (your name) and `password` make a new account; signed in
/// as the invited email instead, leave them out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "pfi_3mQ8cXkR2vN7pL0aZ5tY1wE9sD4fG6hJ8kL2mN4bV7c", "name": "Sam Teammate", "password": "a long passphrase of mine"}))]
pub struct AcceptInvitation {
    /// The invitation's token (from the mail, or from whoever invited you).
    #[schema(min_length = 1, max_length = 100)]
    pub token: String,
    #[schema(schema_with = validate::optional_name_200)]
    pub name: Option<String>,
    /// Your password (10–200 characters), for a new account.
    #[schema(min_length = 10, max_length = 200)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedInvitation {
    pub user: User,
    /// The membership the invitation made.
    pub member: Member,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct InvitationPath {
    /// The invitation's id.
    pub id: Uuid,
}

/// Invite someone to the store: they become a member with these roles and permissions when
/// they accept.
///
/// Required permission: `user.invite`. You can invite only with permissions you hold, and not
/// with a key limited to some addresses or that expires (`403 privilege_escalation`). The
/// token is mailed to them when SMTP is configured (`PF_SMTP_URL`); otherwise it is in this
/// answer, once, to pass on. It works once, within 7 days. Someone already a member is `409`;
/// so is a store with 1,000 members and open invitations together (`limit_reached`).
#[utoipa::path(post, path = "/v1/users/invite", tag = "Users and sessions", request_body = Invite,
    responses(
        (status = 201, description = "Invited", body = InvitationCreated,
            headers(("location" = String, description = "The invitation's URL"))),
        (status = 409, description = "Already a member, an invitation to this email is already open, or the store has 1,000 members and open invitations (`limit_reached`)", body = Problem, content_type = "application/problem+json")))]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<Invite>,
) -> ApiResult<Response> {
    caller.require(Permission::UserInvite)?;
    let store_roles = StoreRoles::load(&state.pool, caller.store_id).await?;
    let mut e = Errors::default();
    let email = e.email("/email", &body.email);
    if !e.found_at("/email") && !crate::mail::is_address(&email) {
        e.add(
            "/email",
            "invalid_value",
            "must be an email address mail can be sent to",
        );
    }
    let roles = store_roles.check(&mut e, "/roles", &body.roles);
    let direct = e.permissions("/permissions", &body.permissions);
    e.finish()?;
    caller.ensure_can_grant(store_roles.effective(false, &roles, &direct))?;
    caller.ensure_unrestricted("invite members")?;
    if let Some(user) = users::by_email(&state.pool, &email).await? {
        if users::membership_in(&state.pool, caller.store_id, user.id)
            .await?
            .is_some()
        {
            return Err(ApiError::Conflict(
                "someone with this email is already a member".to_owned(),
            ));
        }
    }
    let token = new_token("pfi_");
    let now = state.now();
    let mut tx = state.pool.begin().await?;
    let room = quotas::ensure_room_for_one(&mut tx, caller.store_id, Counted::Seats(now)).await;
    // Checked under the seats' lock (held even when the store is full), so two invitations to
    // one email cannot both be made: a second would take a second seat and leave two tokens
    // that each make the same member. Before the limit, which the open one already counts in.
    if let Some(open) = db::open_for_email(&mut *tx, caller.store_id, &email, now).await? {
        // Its id only for who may list invitations.
        let which = if caller.permissions.contains(Permission::UserView) {
            format!(
                " ({}); revoke it with DELETE /v1/invitations/{} to invite again",
                open.id, open.id
            )
        } else {
            String::new()
        };
        return Err(ApiError::Conflict(format!(
            "an invitation to this email is already open{which}"
        )));
    }
    room?;
    let row = db::insert(
        &mut *tx,
        NewInvitation {
            store_id: caller.store_id,
            email: &email,
            roles: &roles,
            permissions: &direct,
            digest: &state.verifier.pepper.digest(&token),
            invited_by: CreatedBy::from(&caller),
            now,
            expires_at: now + chrono::Duration::days(INVITATION_DAYS),
        },
    )
    .await?;
    let granted = roles::granted_now(
        &mut tx,
        caller.store_id,
        false,
        &row.roles,
        &row.permissions,
    );
    caller.ensure_can_grant(granted.await?)?;
    let invitation = Invitation::from(row);
    changes::created(&mut tx, &caller, &invitation).await?;
    tx.commit().await?;
    // Mailed after the commit (no transaction held across SMTP); one that cannot be mailed is
    // revoked again, so that no invitation nobody was told of stays open. In a task of its own,
    // so that a request cut short (its timeout, the client gone) still revokes it.
    let emailed = match state.mailer.clone() {
        Some(mailer) => {
            let body = invitation_mail(&state, &caller.store_name, &token);
            let subject = format!("You are invited to {}", caller.store_name);
            let (state, author, id) = (state.clone(), Author::from(&caller), invitation.id);
            let to = email.clone();
            let mailed = tokio::spawn(async move {
                let Err(error) = mailer.send(&to, &subject, body).await else {
                    return Ok(true);
                };
                tracing::warn!(error = format!("{error:#}"), "invitation not mailed");
                // Recorded as a revocation is, so the audit log and subscribers that saw it
                // made see it go.
                let mut tx = state.pool.begin().await?;
                if let Some(row) = db::revoke(&mut *tx, author.store_id, id, now).await? {
                    changes::deleted(&mut tx, author, &Invitation::from(row)).await?;
                }
                tx.commit().await?;
                Ok::<bool, sqlx::Error>(false)
            });
            match mailed.await {
                Ok(Ok(true)) => true,
                Ok(Ok(false)) => return Err(ApiError::ServiceUnavailable),
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => return Err(ApiError::ServiceUnavailable),
            }
        }
        None => false,
    };
    let location = format!("/v1/invitations/{}", invitation.id);
    let created = InvitationCreated {
        invitation,
        emailed,
        token: (!emailed).then_some(token),
    };
    Ok(NoStore(Created::answer(location, created)).into_response())
}

fn invitation_mail(state: &AppState, store: &str, token: &str) -> String {
    let how = match &state.config.public_url {
        Some(url) => format!("Accept it here: {url}/accept-invitation?token={token}\n"),
        None => String::new(),
    };
    format!(
        "You are invited to join {store} on printfarm.\n\n{how}\
         Your invitation token: {token}\n\n\
         To accept with the API: POST /v1/invitations/accept with \
         {{\"token\": \"{token}\", \"name\": \"Your Name\", \"password\": \"...\"}}\n\
         It works once, within {INVITATION_DAYS} days.\n"
    )
}

/// The store's open invitations.
///
/// Required permission: `user.view`. Accepted, revoked and expired ones are not listed. Filter
/// with the `field.op` query parameters; sort by `email`, `expiresAt` or `createdAt` (newest
/// first by default).
#[utoipa::path(get, path = "/v1/invitations", tag = "Users and sessions",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((email|expiresAt|createdAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The open invitations", body = Vec<Invitation>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_invitations(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::UserView)?;
    let (list, rows, total) = paging::fetch_within::<InvitationRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &db::LIST,
        db::open_at(state.now()),
    )
    .await?;
    Ok(Page::new(rows, Invitation::from, "/v1/invitations", &list, total).into_response())
}

/// The name a new account is made with, checked with its password (a new account needs both).
fn new_account_name(body: &AcceptInvitation) -> ApiResult<String> {
    let mut e = Errors::default();
    let name = match &body.name {
        Some(name) => e.name("/name", name, 200),
        None => {
            e.add("/name", "required", "a new account needs a name");
            String::new()
        }
    };
    match &body.password {
        Some(password) => e.new_password("/password", password),
        None => e.add("/password", "required", "a new account needs a password"),
    }
    e.finish()?;
    Ok(name)
}

/// Revoke an open invitation: its token stops working.
///
/// Required permission: `user.invite`, and holding everything the invitation grants.
#[utoipa::path(delete, path = "/v1/invitations/{id}", tag = "Users and sessions",
    params(InvitationPath),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<InvitationPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::UserInvite)?;
    let mut tx = state.pool.begin().await?;
    let row = db::revoke(&mut *tx, caller.store_id, path.id, state.now())
        .await?
        .ok_or(ApiError::NotFound)?;
    // As with a member: only who holds all an invitation grants may undo it (rolled back if not).
    let grants = StoreRoles::load(&mut *tx, caller.store_id)
        .await?
        .effective(false, &row.roles, &row.permissions);
    caller.ensure_can_control(grants, "this invitation")?;
    changes::deleted(&mut tx, &caller, &Invitation::from(row)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation: a new account (give `name` and `password`), or, for someone who
/// already has one, the membership added to it (be signed in as that account).
///
/// Needs no credentials, only the token; with the session cookie of the invited account, a
/// change needs this site's `Origin`. Then sign in (`POST /v1/auth/login`). An invitation is
/// honoured only as far as whoever made it may still grant it: after they were demoted or
/// removed, or their key narrowed or revoked, it is `409` (ask for a new one).
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "Users and sessions", security(()),
    request_body = AcceptInvitation,
    responses(
        (status = 201, description = "Accepted: a member of the store", body = AcceptedInvitation),
        (status = 403, description = "A session sent from a page of another site", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No open invitation has this token (used, revoked, expired or never made)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An account with the invited email exists: sign in as it and accept again; already a member; or the inviter may no longer grant what it asks for", body = Problem, content_type = "application/problem+json")))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: Option<axum::Extension<crate::middleware::ClientIp>>,
    ApiJson(body): ApiJson<AcceptInvitation>,
) -> ApiResult<Response> {
    let ip: IpAddr = ip.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0 .0);
    let now = state.now();
    if !well_formed(&body.token, "pfi_") {
        return Err(ApiError::TokenNotFound(NO_OPEN_INVITATION));
    }
    let digest = state.verifier.pepper.digest(&body.token);
    let open = db::open_by_digest(&state.pool, &digest, now)
        .await?
        .ok_or(ApiError::TokenNotFound(NO_OPEN_INVITATION))?;
    let signed_in = match session::presented(&headers) {
        Some(token) => {
            if !origin::trusted(&headers, &state.config.cors_origins) {
                return Err(ApiError::CrossOrigin);
            }
            let settings = &state.config.sessions;
            match session::find(&state.pool, &state.verifier.pepper, token, now, settings).await {
                Ok(row) => Some(row.user_id),
                // A cookie left from a session that has ended is no one's: accepted as if
                // signed out, rather than refused until the browser drops the cookie.
                Err(ApiError::InvalidSession) => None,
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let existing = users::by_email(&state.pool, &open.email).await?;
    let mut tx = state.pool.begin().await?;
    let user = match existing {
        Some(user) if signed_in == Some(user.id) => user,
        Some(_) => {
            return Err(ApiError::Conflict(
                "an account with this email exists: sign in as it and accept again".to_owned(),
            ))
        }
        None => {
            let name = new_account_name(&body)?;
            let hash = state
                .passwords
                .hash(body.password.as_deref().unwrap_or_default())
                .await
                .map_err(|_| ApiError::ServiceUnavailable)?;
            let inserted = users::insert(
                &mut *tx,
                users::NewUser {
                    id: UserId::new(),
                    email: &open.email,
                    name: &name,
                    password_hash: &hash,
                },
            )
            .await;
            match inserted {
                Ok(user) => user,
                Err(e) if crate::db::is_unique_violation(&e) => {
                    return Err(ApiError::Conflict(
                        "an account with this email was just made: sign in as it and accept again"
                            .to_owned(),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    // Single use: whoever takes it first; a second acceptance finds nothing.
    let invitation = db::accept(&mut *tx, &digest, user.id, now)
        .await?
        .ok_or(ApiError::TokenNotFound(NO_OPEN_INVITATION))?;
    let store = invitation.store_id;
    let added = users::add_membership(
        &mut *tx,
        users::NewMembership {
            store_id: invitation.store_id,
            user_id: user.id,
            owner: false,
            roles: &invitation.roles,
            permissions: &invitation.permissions,
        },
    )
    .await;
    if let Err(e) = &added {
        if crate::db::is_unique_violation(e) {
            return Err(ApiError::Conflict("you are already a member".to_owned()));
        }
    }
    added?;
    // Checked only now: the new membership's trigger has taken the store's share lock on its
    // roles, so a role changed meanwhile is seen as it now is (as every other grant checks).
    let (by_key, by_user) = (invitation.invited_by_key_id, invitation.invited_by_user_id);
    let may = grants::inviter_may_grant(&mut tx, store, by_key, by_user, now).await?;
    let wanted = StoreRoles::load(&mut *tx, store).await?.effective(
        false,
        &invitation.roles,
        &invitation.permissions,
    );
    if !may.is_superset_of(wanted) {
        return Err(ApiError::Conflict(
            "whoever made this invitation may no longer grant what it asks for: ask for a new one"
                .to_owned(),
        ));
    }
    let member: Member = users::member(&mut *tx, invitation.store_id, user.id, false)
        .await?
        .map(Member::from)
        .ok_or(ApiError::NotFound)?;
    let author = Author {
        store_id: invitation.store_id,
        actor: crate::audit::Actor::user(user.id, ip),
    };
    changes::created(&mut tx, author, &member).await?;
    tx.commit().await?;
    // A member back after being removed: the keys they made hold their grant again (other
    // replicas hear it from the membership's trigger).
    state.verifier.cache.invalidate_store(store);
    Ok((
        StatusCode::CREATED,
        Json(AcceptedInvitation {
            user: user.into(),
            member,
        }),
    )
        .into_response())
}
