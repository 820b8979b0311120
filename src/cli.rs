//! Operator commands run from the `printfarm` binary: create stores and keys (including
//! managed keys the API cannot touch) and set rate-limit overrides. No HTTP involved.

use crate::auth::digest::Pepper;
use crate::auth::issue::{issue, KeySpec};
use crate::auth::key_format::{self, KeyEnv};
use crate::auth::{Permission, Role};
use crate::config::Config;
use crate::db;
use crate::ids::StoreId;
use anyhow::{bail, Context};
use sqlx::PgPool;

async fn pool(config: &Config) -> anyhow::Result<PgPool> {
    let pool = db::connect(&config.database_url).await?;
    if config.auto_migrate {
        db::migrate(&pool).await?;
    }
    Ok(pool)
}

fn pepper(config: &Config) -> anyhow::Result<Pepper> {
    if config.uses_dev_pepper() && config.is_production() {
        bail!(
            "PF_KEY_PEPPER is the development default; set a secret value when PF_ENV=production"
        );
    }
    Ok(Pepper::new(config.key_pepper.as_bytes()))
}

/// The key just issued, printed once.
pub struct Issued {
    pub store_id: StoreId,
    pub key: String,
    pub key_id: String,
}

pub fn print_issued(issued: &Issued, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "storeId": issued.store_id, "apiKey": issued.key })
        );
    } else {
        println!("store id: {}", issued.store_id);
        println!("key id:   {}", issued.key_id);
        println!("api key:  {}", issued.key);
        println!("Keep the key now: it is not stored and cannot be shown again.");
    }
}

/// `printfarm bootstrap`: a store and a Full Access key for its owner.
pub async fn bootstrap(
    config: &Config,
    store_name: &str,
    managed_by: Option<&str>,
) -> anyhow::Result<Issued> {
    let pool = pool(config).await?;
    let pepper = pepper(config)?;
    create_store_with_owner(&pool, &pepper, config.key_env, store_name, managed_by).await
}

/// Creates a store and its owner's Full Access key in one transaction.
pub async fn create_store_with_owner(
    pool: &PgPool,
    pepper: &Pepper,
    env: KeyEnv,
    store_name: &str,
    managed_by: Option<&str>,
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
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Issued {
        store_id: store.id,
        key: key.expose().to_owned(),
        key_id: row.key_id,
    })
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
    if req.name.trim().is_empty() || req.name.chars().count() > 100 {
        bail!("--name must be 1 to 100 characters");
    }
    if let Some(bad) = req.roles.iter().find(|r| Role::parse(r).is_none()) {
        bail!("unknown role {bad:?}; roles are store_owner, admin, operator, viewer, part_manager");
    }
    if let Some(bad) = req
        .permissions
        .iter()
        .find(|p| Permission::parse(p).is_none())
    {
        bail!("unknown permission {bad:?}");
    }
    if req.full_access && !(req.roles.is_empty() && req.permissions.is_empty()) {
        bail!("--full-access takes no --role or --permission");
    }
    let pool = pool(config).await?;
    let pepper = pepper(config)?;
    db::stores::get(&pool, req.store_id)
        .await?
        .with_context(|| format!("no store {}", req.store_id))?;
    let (row, key) = issue(
        &pool,
        &pepper,
        config.key_env,
        KeySpec {
            store_id: req.store_id,
            name: req.name.trim(),
            full_access: req.full_access,
            roles: req.roles,
            permissions: req.permissions,
            ip_allowlist: &[],
            expires_at: None,
            managed_by: req.managed_by,
            created_by: None,
        },
    )
    .await?;
    Ok(Issued {
        store_id: req.store_id,
        key: key.expose().to_owned(),
        key_id: row.key_id,
    })
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
    let pool = pool(config).await?;
    let found = match &target {
        LimitTarget::Store(id) => {
            db::stores::set_rate_limits(&pool, *id, per_minute, per_hour).await?
        }
        LimitTarget::Key(key_id) => {
            if !key_format::is_key_id(key_id) {
                bail!("{key_id:?} is not a key id (pf_<env>_ followed by 16 characters)");
            }
            db::api_keys::set_rate_limits(&pool, key_id, per_minute, per_hour).await?
        }
    };
    if !found {
        bail!("no such store or key");
    }
    Ok(())
}
