//! Operator commands run from the `printfarm` binary: create stores and keys (including
//! managed keys the API cannot touch) and set rate-limit overrides. No HTTP involved.

use crate::audit::{self, Actor};
use crate::auth::digest::Pepper;
use crate::auth::issue::{issue, KeySpec};
use crate::auth::key_format::{self, KeyEnv};
use crate::config::Config;
use crate::db;
use crate::domain::changes::Verb;
use crate::domain::validate::Errors;
use crate::domain::{DomainError, EntityType};
use crate::ids::{StoreId, UserId};
use anyhow::{bail, Context};
use sqlx::PgPool;

/// Runs `work` on the database (migrated first unless turned off), then closes it, stopping
/// the embedded cluster if this command had to start it.
async fn with_database<T, Work, Done>(config: &Config, work: Work) -> anyhow::Result<T>
where
    Work: FnOnce(PgPool) -> Done,
    Done: std::future::Future<Output = anyhow::Result<T>>,
{
    let database = db::open(
        &config.database_url,
        config.embedded_db_dir.as_deref(),
        Default::default(),
    )
    .await?;
    let pool = database.pool.clone();
    let result = async move {
        if config.auto_migrate {
            db::migrate(&pool).await?;
        }
        work(pool).await
    }
    .await;
    database.close().await;
    result
}

fn pepper(config: &Config) -> anyhow::Result<Pepper> {
    config.check_secrets()?;
    Ok(Pepper::new(config.key_pepper.as_bytes()))
}

/// The same rules as the API's, reported as one message.
fn refuse_invalid(errors: Errors) -> anyhow::Result<()> {
    if let Err(DomainError::Invalid(problems)) = errors.finish() {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.message))
            .collect();
        bail!("{}", lines.join("; "));
    }
    Ok(())
}

/// The key just issued, printed once.
pub struct Issued {
    pub store_id: StoreId,
    pub key: String,
    pub key_id: String,
    /// The owner user `bootstrap --owner-email` made or found.
    pub owner: Option<OwnerIssued>,
}

pub struct OwnerIssued {
    pub email: String,
    /// The password, when one was generated (to print once).
    pub generated_password: Option<String>,
    /// A user who already had an account (and keeps their password).
    pub existing: bool,
}

/// The `--json` form: exactly `{"storeId": "...", "apiKey": "..."}`, in that order, then
/// `ownerEmail` (and `ownerPassword` when one was generated) with `--owner-email`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct IssuedJson<'a> {
    store_id: StoreId,
    api_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_password: Option<&'a str>,
}

pub fn issued_json(issued: &Issued) -> String {
    let owner = issued.owner.as_ref();
    serde_json::to_string(&IssuedJson {
        store_id: issued.store_id,
        api_key: &issued.key,
        owner_email: owner.map(|o| o.email.as_str()),
        owner_password: owner.and_then(|o| o.generated_password.as_deref()),
    })
    .unwrap_or_default()
}

pub fn print_issued(issued: &Issued, json: bool) {
    if json {
        println!("{}", issued_json(issued));
        return;
    }
    println!("store id: {}", issued.store_id);
    println!("key id:   {}", issued.key_id);
    println!("api key:  {}", issued.key);
    let Some(owner) = &issued.owner else {
        println!("Keep the key now: it is not stored and cannot be shown again.");
        return;
    };
    if owner.existing {
        println!(
            "owner:    {} (an existing user: their password is unchanged)",
            owner.email
        );
    } else {
        println!("owner:    {}", owner.email);
    }
    match &owner.generated_password {
        Some(password) => {
            println!("password: {password}");
            println!(
                "Keep the key and the password now: neither is stored nor can be shown again."
            );
        }
        None => println!("Keep the key now: it is not stored and cannot be shown again."),
    }
}

/// Asks the terminal for a password without echoing it; `None` when standard input is not a
/// terminal or the answer is empty (the caller then generates one).
pub fn prompt_password(prompt: &str) -> anyhow::Result<Option<String>> {
    use std::io::{BufRead, Write};
    // SAFETY: isatty only inspects file descriptor 0.
    if unsafe { libc::isatty(0) } != 1 {
        return Ok(None);
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let echo_off = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    drop(echo_off);
    eprintln!();
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    Ok((!password.is_empty()).then_some(password))
}

/// Turns the terminal's echo off for as long as it lives (restored on drop, whatever happens).
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr read and write a termios struct we own, for descriptor 0.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return EchoOff(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &quiet) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings read in `new` for descriptor 0.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}

/// The person who owns a new store (`bootstrap --owner-email`).
pub struct OwnerRequest<'a> {
    pub email: &'a str,
    pub name: &'a str,
    /// `None`: one is generated (and printed once).
    pub password: Option<String>,
}

/// `printfarm bootstrap`: a store and a Full Access key for its owner, and the owner user
/// when an email is given.
pub async fn bootstrap(
    config: &Config,
    store_name: &str,
    managed_by: Option<&str>,
    owner: Option<OwnerRequest<'_>>,
) -> anyhow::Result<Issued> {
    let pepper = pepper(config)?;
    let owner = match owner {
        None => None,
        Some(request) => Some(owner_user(request).await?),
    };
    with_database(config, |pool| async move {
        create_store_with_owner(
            &pool,
            &pepper,
            config.key_env,
            store_name,
            managed_by,
            owner,
        )
        .await
    })
    .await
}

/// A validated owner with the password hashed (and the generated password, to print).
pub struct OwnerUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub generated_password: Option<String>,
}

pub async fn owner_user(request: OwnerRequest<'_>) -> anyhow::Result<OwnerUser> {
    let mut errors = Errors::default();
    let email = errors.email("--owner-email", request.email);
    let name = errors.name("--owner-name", request.name, 200);
    if let Some(password) = &request.password {
        errors.new_password("the password", password);
    }
    refuse_invalid(errors)?;
    let generated_password = request
        .password
        .is_none()
        .then(crate::auth::passwords::generate);
    let password = request
        .password
        .or_else(|| generated_password.clone())
        .unwrap_or_default();
    let password_hash = crate::auth::passwords::Passwords::with_slots(1)
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(OwnerUser {
        email,
        name,
        password_hash,
        generated_password,
    })
}

/// Creates a store and its owner's Full Access key in one transaction.
pub async fn create_store_with_owner(
    pool: &PgPool,
    pepper: &Pepper,
    env: KeyEnv,
    store_name: &str,
    managed_by: Option<&str>,
    owner: Option<OwnerUser>,
) -> anyhow::Result<Issued> {
    let name = store_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        bail!("--store-name must be 1 to 200 characters");
    }
    let mut tx = pool.begin().await?;
    let store = db::stores::insert(&mut *tx, StoreId::new(), name).await?;
    let (row, key) = issue(
        &mut *tx,
        pepper,
        env,
        KeySpec {
            store_id: store.id,
            name: "Owner (Full Access)",
            full_access: true,
            roles: &[],
            permissions: &[],
            ip_allowlist: &[],
            expires_at: None,
            managed_by,
            created_by: None,
            created_by_user_id: None,
        },
    )
    .await?;
    let operator = Actor::operator();
    let store_view = serde_json::json!({"name": store.name});
    audit::record(
        &mut *tx,
        store.id,
        &operator,
        Verb::Create.as_str(),
        EntityType::Store.as_str(),
        store.id.0,
        audit::changes(None, Some(&store_view)),
    )
    .await?;
    record_key_created(&mut tx, &row).await?;
    let owner = match owner {
        Some(owner) => Some(add_owner(&mut tx, store.id, owner).await?),
        None => None,
    };
    tx.commit().await?;
    Ok(Issued {
        store_id: store.id,
        key: key.expose().to_owned(),
        key_id: row.key_id,
        owner,
    })
}

/// Makes the user (or finds them, by email) and makes them the store's owner.
async fn add_owner(
    tx: &mut sqlx::PgConnection,
    store: StoreId,
    owner: OwnerUser,
) -> anyhow::Result<OwnerIssued> {
    let (user, generated_password, existing) =
        match db::users::by_email(&mut *tx, &owner.email).await? {
            Some(existing) => (existing, None, true),
            None => {
                let user = db::users::insert(
                    &mut *tx,
                    db::users::NewUser {
                        id: UserId::new(),
                        email: &owner.email,
                        name: &owner.name,
                        password_hash: &owner.password_hash,
                    },
                )
                .await?;
                (user, owner.generated_password, false)
            }
        };
    db::users::add_membership(
        &mut *tx,
        db::users::NewMembership {
            store_id: store,
            user_id: user.id,
            owner: true,
            roles: &[],
            permissions: &[],
        },
    )
    .await?;
    let member = db::users::member(&mut *tx, store, user.id, false)
        .await?
        .context("the membership just made")?;
    let author = crate::domain::Author {
        store_id: store,
        actor: Actor::operator(),
    };
    crate::domain::changes::created(
        &mut *tx,
        author,
        &crate::domain::members::Member::from(member),
    )
    .await?;
    Ok(OwnerIssued {
        email: user.email,
        generated_password,
        existing,
    })
}

/// `printfarm users reset-password`: sets the password of the user with `email` (a generated
/// one, returned to print once, when none is given), ends their sessions and open resets, and
/// lifts a sign-in throttle on the account.
pub async fn reset_password(
    config: &Config,
    email: &str,
    password: Option<String>,
) -> anyhow::Result<Option<String>> {
    let mut errors = Errors::default();
    if let Some(password) = &password {
        errors.new_password("the password", password);
    }
    refuse_invalid(errors)?;
    let generated = password.is_none().then(crate::auth::passwords::generate);
    let password = password.or_else(|| generated.clone()).unwrap_or_default();
    let hash = crate::auth::passwords::Passwords::with_slots(1)
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = email.to_owned();
    with_database(config, |pool| async move {
        let user = db::users::by_email(&pool, &email)
            .await?
            .with_context(|| format!("no user has the email {email:?}"))?;
        let mut tx = pool.begin().await?;
        let ended = crate::domain::accounts::set_password(
            &mut tx,
            user.id,
            &hash,
            None,
            &Actor::operator(),
            chrono::Utc::now(),
        )
        .await?;
        let account = db::sessions::account_subject(&user.email);
        db::sessions::clear_failures(&mut *tx, &account).await?;
        tx.commit().await?;
        tracing::info!(user.id = %user.id, sessions_ended = ended, "password reset by the operator");
        Ok(())
    })
    .await?;
    Ok(generated)
}

pub struct KeyRequest<'a> {
    pub store_id: StoreId,
    pub name: &'a str,
    pub full_access: bool,
    pub roles: &'a [String],
    pub permissions: &'a [String],
    pub managed_by: Option<&'a str>,
}

/// `printfarm keys create`: a key for an existing store, optionally managed.
pub async fn create_key(config: &Config, req: KeyRequest<'_>) -> anyhow::Result<Issued> {
    // The same rules as the API, reported as one message.
    let mut errors = Errors::default();
    let name = errors.name("--name", req.name, 100);
    let roles =
        crate::domain::roles::StoreRoles::built_in().check(&mut errors, "--role", req.roles);
    let permissions = errors.permissions("--permission", req.permissions);
    refuse_invalid(errors)?;
    if req.full_access && !(roles.is_empty() && permissions.is_empty()) {
        bail!("--full-access takes no --role or --permission");
    }
    let pepper = pepper(config)?;
    with_database(config, |pool| async move {
        db::stores::get(&pool, req.store_id)
            .await?
            .with_context(|| format!("no store {}", req.store_id))?;
        issue_key(
            &pool,
            &pepper,
            config.key_env,
            &req,
            &name,
            &roles,
            &permissions,
        )
        .await
    })
    .await
}

async fn issue_key(
    pool: &PgPool,
    pepper: &Pepper,
    key_env: KeyEnv,
    req: &KeyRequest<'_>,
    name: &str,
    roles: &[String],
    permissions: &[String],
) -> anyhow::Result<Issued> {
    let mut tx = pool.begin().await?;
    let (row, key) = issue(
        &mut *tx,
        pepper,
        key_env,
        KeySpec {
            store_id: req.store_id,
            name,
            full_access: req.full_access,
            roles,
            permissions,
            ip_allowlist: &[],
            expires_at: None,
            managed_by: req.managed_by,
            created_by: None,
            created_by_user_id: None,
        },
    )
    .await?;
    record_key_created(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(Issued {
        store_id: req.store_id,
        key: key.expose().to_owned(),
        key_id: row.key_id,
        owner: None,
    })
}

/// The audit entry for a key the operator created (what it may do, never its secret).
async fn record_key_created(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    row: &crate::db::api_keys::ApiKeyRow,
) -> anyhow::Result<()> {
    let view = serde_json::json!({
        "name": row.name,
        "keyId": row.key_id,
        "type": if row.full_access { "full_access" } else { "custom" },
        "roles": row.roles,
        "permissions": row.permissions,
        "managedBy": row.managed_by,
        "key": "issued",
    });
    let changes = audit::changes(None, Some(&view));
    audit::record(
        &mut **tx,
        row.store_id,
        &Actor::operator(),
        Verb::Create.as_str(),
        EntityType::ApiKey.as_str(),
        row.id.0,
        changes,
    )
    .await?;
    Ok(())
}

/// Which rate limits to override.
pub enum LimitTarget {
    Store(StoreId),
    Key(String),
}

/// `printfarm limits set`: operator override (None resets to the default). Takes effect on
/// every replica at once through the key-cache notifications.
pub async fn set_limits(
    config: &Config,
    target: LimitTarget,
    per_minute: Option<u32>,
    per_hour: Option<u32>,
) -> anyhow::Result<()> {
    let to_db = |v: Option<u32>| -> anyhow::Result<Option<i32>> {
        v.map(|n| {
            if n == 0 {
                bail!("limits must be at least 1")
            }
            i32::try_from(n).context("limit too large")
        })
        .transpose()
    };
    let (per_minute, per_hour) = (to_db(per_minute)?, to_db(per_hour)?);
    if let LimitTarget::Key(key_id) = &target {
        if !key_format::is_key_id(key_id) {
            bail!("{key_id:?} is not a key id (pf_<env>_ followed by 16 characters)");
        }
    }
    let found = with_database(config, |pool| async move {
        Ok(match &target {
            LimitTarget::Store(id) => {
                db::stores::set_rate_limits(&pool, *id, per_minute, per_hour).await?
            }
            LimitTarget::Key(key_id) => {
                db::api_keys::set_rate_limits(&pool, key_id, per_minute, per_hour).await?
            }
        })
    })
    .await?;
    if !found {
        bail!("no such store or key");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_output_has_store_id_first() {
        let issued = Issued {
            store_id: StoreId::new(),
            key: "pf_live_x".into(),
            key_id: "pf_live_".into(),
            owner: None,
        };
        let json = issued_json(&issued);
        assert_eq!(
            json,
            format!(
                r#"{{"storeId":"{}","apiKey":"pf_live_x"}}"#,
                issued.store_id
            )
        );
        let with_owner = Issued {
            owner: Some(OwnerIssued {
                email: "o@example.com".into(),
                generated_password: Some("pw".into()),
                existing: false,
            }),
            ..issued
        };
        assert_eq!(
            issued_json(&with_owner),
            format!(
                r#"{{"storeId":"{}","apiKey":"pf_live_x","ownerEmail":"o@example.com","ownerPassword":"pw"}}"#,
                with_owner.store_id
            )
        );
    }
}
