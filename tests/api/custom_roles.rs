//! A store's own roles: made, held by keys and members, changed (reaching every holder on
//! its next request), bounded by their maker, and deleted only when nobody holds them.

use crate::helpers::TestApp;
use serde_json::{json, Value};

async fn create_role(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v1/roles").owner().json(&body).send().await;
    res.assert(201);
    assert_eq!(
        res.header("location").unwrap(),
        format!("/v1/roles/{}", res.json()["id"].as_str().unwrap())
    );
    res.json()
}

fn material() -> Value {
    json!({"name": "PLA", "type": "PLA"})
}

#[tokio::test]
async fn a_store_role_grants_its_permissions_to_keys_and_members_and_a_change_reaches_them() {
    let app = TestApp::new().await;
    let role = create_role(
        &app,
        json!({"name": "Night shift", "description": "Runs the queue overnight",
               "permissions": ["printer.view", "queue.view"]}),
    )
    .await;
    assert_eq!(role["isSystem"], false);
    let id = role["id"].as_str().unwrap().to_owned();
    let listed = app.get("/v1/roles").owner().send().await.json();
    let listed = listed.as_array().unwrap();
    assert!(listed
        .iter()
        .any(|r| r["id"] == "viewer" && r["isSystem"] == true));
    assert!(listed.iter().any(|r| r["id"] == id.as_str()));
    app.get(&format!("/v1/roles/{id}"))
        .owner()
        .send()
        .await
        .assert(200);

    let key = app.key_with(&[&id], &[]).await;
    app.add_user(
        "night@example.com",
        "night shift passphrase",
        false,
        &[&id],
        &[],
    )
    .await;
    let session = app
        .sign_in("night@example.com", "night shift passphrase")
        .await;
    app.get("/v1/printers")
        .with_key(&key)
        .send()
        .await
        .assert(200);
    app.get("/v1/printers")
        .session(&session)
        .send()
        .await
        .assert(200);
    app.post("/v1/materials")
        .with_key(&key)
        .json(&material())
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");

    let changed = app
        .patch(&format!("/v1/roles/{id}"))
        .owner()
        .json(&json!({"permissions": ["printer.view", "queue.view", "material.create"]}))
        .send()
        .await;
    changed.assert(200);
    app.post("/v1/materials")
        .with_key(&key)
        .json(&material())
        .send()
        .await
        .assert(201);
    app.post("/v1/materials")
        .session(&session)
        .json(&material())
        .send()
        .await
        .assert(201);
    let me = app.get("/v1/me").session(&session).send().await.json();
    assert!(me["store"]["effectivePermissions"]
        .as_array()
        .unwrap()
        .contains(&json!("material.create")));

    // Held: not deleted. Built-in: not changed.
    app.delete(&format!("/v1/roles/{id}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    app.patch("/v1/roles/viewer")
        .owner()
        .json(&json!({"permissions": []}))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.delete("/v1/roles/viewer")
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    let spare = create_role(&app, json!({"name": "Spare", "permissions": []})).await;
    app.delete(&format!("/v1/roles/{}", spare["id"].as_str().unwrap()))
        .owner()
        .send()
        .await
        .assert(204);
    app.post("/v1/roles")
        .owner()
        .json(&json!({"name": "NIGHT SHIFT", "permissions": []}))
        .send()
        .await
        .assert_problem(409, "conflict");
    // Nor a built-in role's name or id, made or renamed to.
    for name in ["store owner", "Operator", "part_manager"] {
        let res = app
            .post("/v1/roles")
            .owner()
            .json(&json!({"name": name, "permissions": []}))
            .send()
            .await;
        res.assert_problem(409, "conflict");
        assert!(res.json()["detail"].as_str().unwrap().contains("built-in"));
    }
    app.patch(&format!("/v1/roles/{id}"))
        .owner()
        .json(&json!({"name": "Admin"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    // One named so before the rule keeps its name through other changes.
    sqlx::query("update custom_roles set name = 'Operator' where id = $1::uuid")
        .bind(&id)
        .execute(app.pool())
        .await
        .unwrap();
    app.patch(&format!("/v1/roles/{id}"))
        .owner()
        .json(&json!({"name": "operator", "description": "the old one"}))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn nobody_makes_or_changes_a_role_beyond_what_they_hold() {
    let app = TestApp::new().await;
    let granter = app
        .key_with(
            &[],
            &[
                "permission.grant",
                "permission.view",
                "queue.view",
                "apiKey.create",
            ],
        )
        .await;
    app.post("/v1/roles")
        .with_key(&granter)
        .json(&json!({"name": "Too much", "permissions": ["queue.view", "printer.control"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let mine = app
        .post("/v1/roles")
        .with_key(&granter)
        .json(&json!({"name": "Mine", "permissions": ["queue.view"]}))
        .send()
        .await;
    mine.assert(201);
    let strong = create_role(
        &app,
        json!({"name": "Strong", "permissions": ["printer.control"]}),
    )
    .await;
    // A role holding more than the caller is not theirs to change, nor to hand out.
    app.patch(&format!("/v1/roles/{}", strong["id"].as_str().unwrap()))
        .with_key(&granter)
        .json(&json!({"name": "Weak"}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.post("/v1/api-keys")
        .with_key(&granter)
        .json(&json!({"name": "k", "roles": [strong["id"]]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.post("/v1/api-keys")
        .with_key(&granter)
        .json(&json!({"name": "k", "roles": [mine.json()["id"]]}))
        .send()
        .await
        .assert(201);
    // Unknown roles, and another store's, are not roles here.
    let other = app.new_tenant("Other Farm").await;
    let theirs = app
        .post("/v1/roles")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "Theirs", "permissions": []}))
        .send()
        .await
        .json();
    for role in [json!("no-such-role"), theirs["id"].clone()] {
        let res = app
            .post("/v1/api-keys")
            .owner()
            .json(&json!({"name": "k", "roles": [role]}))
            .send()
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["code"], "unknown_role");
    }
    app.get(&format!("/v1/roles/{}", theirs["id"].as_str().unwrap()))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

/// Runs `request` while `tx` stays open, and commits `tx` once the request waits for a lock `tx`
/// holds: that the request waits is part of what is tested.
async fn committed_later<F: std::future::Future>(
    app: &TestApp,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    request: F,
) -> F::Output {
    let holder: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let commit = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let waiting: bool = sqlx::query_scalar(
                "select exists (select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid)))",
            )
            .bind(holder)
            .fetch_one(app.pool())
            .await
            .unwrap();
            if waiting {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the request never waited for the open transaction"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tx.commit().await.unwrap();
    };
    tokio::join!(request, commit).0
}

/// Deleting a role and naming it in a key or membership at the same moment cannot leave a key or
/// member holding a role that no longer exists: whichever comes second waits for the first and
/// then refuses. The test holds one side open in its own transaction while the API does the other.
#[tokio::test]
async fn a_role_and_its_assignment_cannot_pass_each_other() {
    let app = TestApp::new().await;
    let held = create_role(&app, json!({"name": "Held", "permissions": []})).await;
    let held = held["id"].as_str().unwrap().to_owned();
    app.add_user(
        "late@example.com",
        "late member passphrase",
        false,
        &[],
        &[],
    )
    .await;

    // A membership gains the role (not yet committed) while the role is deleted: the deletion
    // waits, then sees the holder.
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query(
        "update memberships set roles = array[$1] where store_id = $2
           and user_id = (select id from users where email = 'late@example.com')",
    )
    .bind(&held)
    .bind(app.store_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let delete = app.delete(&format!("/v1/roles/{held}")).owner().send();
    committed_later(&app, tx, delete)
        .await
        .assert_problem(409, "conflict");

    // The role is deleted (not yet committed) while a key is made with it: the key waits, then
    // is refused.
    let gone = create_role(&app, json!({"name": "Gone", "permissions": []})).await;
    let gone = gone["id"].as_str().unwrap().to_owned();
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query("delete from custom_roles where id = $1::uuid")
        .bind(&gone)
        .execute(&mut *tx)
        .await
        .unwrap();
    let create = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "late key", "roles": [gone]}))
        .send();
    committed_later(&app, tx, create)
        .await
        .assert_problem(409, "conflict");
    let holding: i64 = sqlx::query_scalar("select count(*) from api_keys where $1 = any(roles)")
        .bind(&gone)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(holding, 0);
}

#[tokio::test]
async fn a_role_an_open_invitation_names_is_changed_only_by_an_inviter_and_not_deleted() {
    let app = TestApp::new().await;
    let role = create_role(&app, json!({"name": "Invited", "permissions": []})).await;
    let role = role["id"].as_str().unwrap().to_owned();
    let invitation = app
        .post("/v1/users/invite")
        .owner()
        .json(&json!({"email": "invitee@example.com", "roles": [role]}))
        .send()
        .await;
    invitation.assert(201);
    let invitation = invitation.json()["id"].as_str().unwrap().to_owned();
    // Changing it changes what the invitation grants: only for whoever may invite.
    let editor = &["permission.grant", "user.edit", "apiKey.edit"];
    let rename = |key: String| {
        app.patch(&format!("/v1/roles/{role}"))
            .with_key(&key)
            .json(&json!({"name": "Invited, renamed"}))
            .send()
    };
    let refused = rename(app.key_with(&[], editor).await).await;
    refused.assert_problem(403, "insufficient_permissions");
    assert_eq!(refused.json()["missingPermissions"], json!(["user.invite"]));
    let inviter = app
        .key_with(&[], &[editor.as_slice(), &["user.invite"]].concat())
        .await;
    rename(inviter).await.assert(200);
    app.delete(&format!("/v1/roles/{role}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    app.delete(&format!("/v1/invitations/{invitation}"))
        .owner()
        .send()
        .await
        .assert(204);
    app.delete(&format!("/v1/roles/{role}"))
        .owner()
        .send()
        .await
        .assert(204);
}

/// Nobody changes their own grant: not directly, and not by changing a role they hold (which
/// would also let them move direct permissions into the role before those are taken away).
#[tokio::test]
async fn nobody_changes_a_role_they_hold() {
    let app = TestApp::new().await;
    let role = create_role(&app, json!({"name": "Mine", "permissions": ["part.view"]})).await;
    let id = role["id"].as_str().unwrap().to_owned();
    let (_, session) = app
        .member_session(
            "holder@example.com",
            &[&id],
            &[
                "permission.grant",
                "user.edit",
                "user.view",
                "apiKey.create",
            ],
        )
        .await;
    let widen = json!({"permissions": ["part.view", "user.view"]});
    app.patch(&format!("/v1/roles/{id}"))
        .session(&session)
        .json(&widen)
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    // Nor through a key made for them.
    let key = app
        .post("/v1/api-keys")
        .session(&session)
        .json(&json!({"name": "holder's", "permissions": ["permission.grant", "user.edit", "user.view"]}))
        .send()
        .await
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("/v1/roles/{id}"))
        .with_key(&key)
        .json(&widen)
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.patch(&format!("/v1/roles/{id}"))
        .owner()
        .json(&widen)
        .send()
        .await
        .assert(200);
}

/// A role widened while a key is being made with it: the new key's grant is checked again once
/// the role is locked, so it does not get the widened permissions its maker lacks.
#[tokio::test]
async fn a_role_widened_while_it_is_being_assigned_is_checked_again() {
    let app = TestApp::new().await;
    let role = create_role(
        &app,
        json!({"name": "Narrow", "permissions": ["part.view"]}),
    )
    .await;
    let id = role["id"].as_str().unwrap().to_owned();
    let maker = app.key_with(&[], &["apiKey.create", "part.view"]).await;
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query(
        "update custom_roles set permissions = array['part.view', 'user.view'] where id = $1::uuid",
    )
    .bind(&id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let create = app
        .post("/v1/api-keys")
        .with_key(&maker)
        .json(&json!({"name": "late", "roles": [id]}))
        .send();
    committed_later(&app, tx, create)
        .await
        .assert_problem(403, "privilege_escalation");
}

/// An invitation accepted while its role gains a permission the inviter lacks is refused: the
/// check waits for the role's change and judges the role as it then is.
#[tokio::test]
async fn an_invitation_accepted_while_its_role_widens_is_refused() {
    let app = TestApp::new().await;
    let floor = create_role(
        &app,
        json!({"name": "Floor", "permissions": ["queue.view"]}),
    )
    .await;
    let floor = floor["id"].as_str().unwrap().to_owned();
    let inviter = app.key_with(&[], &["user.invite", "queue.view"]).await;
    let invited = app
        .post("/v1/users/invite")
        .with_key(&inviter)
        .json(&json!({"email": "new@example.com", "roles": [floor]}))
        .send()
        .await;
    invited.assert(201);
    let token = invited.json()["token"].as_str().unwrap().to_owned();
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query(
        "update custom_roles set permissions = array_append(permissions, 'printer.delete')
          where id = $1::uuid",
    )
    .bind(&floor)
    .execute(&mut *tx)
    .await
    .unwrap();
    let accept = app
        .post("/v1/invitations/accept")
        .json(&json!({"token": token, "name": "New", "password": "a new member passphrase"}))
        .send();
    committed_later(&app, tx, accept)
        .await
        .assert_problem(409, "conflict");
}

/// A key that expires cannot widen a role a member holds (the member signs in from anywhere, for
/// good); a role only keys hold, it may.
#[tokio::test]
async fn a_restricted_key_widens_no_role_a_member_holds() {
    let app = TestApp::new().await;
    let held = create_role(&app, json!({"name": "Held", "permissions": ["queue.view"]})).await;
    let held = held["id"].as_str().unwrap().to_owned();
    let free = create_role(&app, json!({"name": "Free", "permissions": ["queue.view"]})).await;
    let free = free["id"].as_str().unwrap().to_owned();
    app.add_user(
        "holder@example.com",
        "holder passphrase",
        false,
        &[held.as_str()],
        &[],
    )
    .await;
    let expiring = app.expiring_admin_key().await;
    let widen = json!({"permissions": ["queue.view", "printer.view"]});
    app.patch(&format!("/v1/roles/{held}"))
        .with_key(&expiring)
        .json(&widen)
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.patch(&format!("/v1/roles/{free}"))
        .with_key(&expiring)
        .json(&widen)
        .send()
        .await
        .assert(200);
}

/// Changing a role changes the keys that hold it, so a key held to some addresses or a deadline
/// may change a role only as far as it could change each of those keys itself.
#[tokio::test]
async fn a_restricted_key_reaches_no_freer_key_through_its_role() {
    let app = TestApp::new().await;
    let role = create_role(&app, json!({"name": "Bots", "permissions": ["queue.view"]})).await;
    let role = role["id"].as_str().unwrap().to_owned();
    let (_, office) = app
        .create_key(json!({"name": "office", "roles": ["admin"], "ipAllowlist": ["10.0.0.0/8"]}))
        .await;
    let expiring = app.expiring_admin_key().await;
    let widen = |to: &str| json!({"permissions": ["queue.view", to]});
    let path = format!("/v1/roles/{role}");

    // A key free of both limits holds the role: neither restricted key may change it.
    let (free_id, _) = app
        .create_key(json!({"name": "anywhere, for ever", "roles": [role.as_str()]}))
        .await;
    app.patch(&path)
        .with_key(&office)
        .peer("10.1.1.1")
        .json(&widen("printer.view"))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.patch(&path)
        .with_key(&expiring)
        .json(&widen("printer.view"))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");

    // Held only by a key inside the office's addresses that expires first: both may.
    app.delete(&format!("/v1/api-keys/{free_id}"))
        .owner()
        .send()
        .await
        .assert(204);
    let soon = (app.state.now() + chrono::Duration::minutes(5)).to_rfc3339();
    app.create_key(json!({"name": "office bot", "roles": [role.as_str()],
        "ipAllowlist": ["10.2.0.0/16"], "expiresAt": soon}))
        .await;
    app.patch(&path)
        .with_key(&office)
        .peer("10.1.1.1")
        .json(&widen("printer.view"))
        .send()
        .await
        .assert(200);
    app.patch(&path)
        .with_key(&expiring)
        .json(&widen("order.view"))
        .send()
        .await
        .assert(200);
}
