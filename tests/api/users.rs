//! Members of a store: invitations (mailed through a real SMTP server), the users API,
//! ownership, password resets, and every grant bounded by the granter.

use crate::helpers::{count, TestApp, OWNER_EMAIL, OWNER_PASSWORD};
use crate::smtp::{token_in, SmtpSink};
use serde_json::{json, Value};

const TEAMMATE: &str = "teammate@example.com";
const TEAMMATE_PASSWORD: &str = "teammate passphrase 1";

async fn app_with_mail() -> (TestApp, SmtpSink) {
    let smtp = SmtpSink::start();
    let app = TestApp::with_config(&[
        ("PF_SMTP_URL", &smtp.url()),
        ("PF_SMTP_FROM", "Farm <farm@example.com>"),
        ("PF_PUBLIC_URL", "https://dash.example/"),
    ])
    .await;
    (app, smtp)
}

async fn part(app: &TestApp) -> String {
    let res = app
        .post("/v1/parts")
        .owner()
        .json(&json!({"name": "Cube", "type": "stl"}))
        .send()
        .await;
    res.assert(201);
    res.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_invitation_is_mailed_accepted_and_the_teammate_works_within_their_role() {
    let (app, smtp) = app_with_mail().await;
    let owner = app.owner_session().await;
    let res = app
        .post("/v1/users/invite")
        .session(&owner)
        .json(&json!({"email": TEAMMATE, "roles": ["operator"]}))
        .send()
        .await;
    res.assert(201);
    let invitation = res.json();
    assert_eq!(invitation["emailed"], true);
    assert_eq!(
        invitation["token"],
        Value::Null,
        "a mailed token is not shown"
    );
    assert!(res
        .header("location")
        .unwrap()
        .starts_with("/v1/invitations/"));

    let mail = smtp.next().await;
    assert_eq!(mail["to"], json!([TEAMMATE]));
    assert_eq!(mail["from"], "farm@example.com");
    let data = crate::smtp::text_of(&mail);
    assert!(
        data.contains("Subject: You are invited to Test Farm"),
        "{data}"
    );
    assert!(
        data.contains("https://dash.example/accept-invitation?token=pfi_"),
        "{data}"
    );
    let token = token_in(&mail, "Your invitation token: ");
    assert!(token.starts_with("pfi_"), "{token}");

    let accept = |token: String| {
        let app = &app;
        async move {
            app.post("/v1/invitations/accept")
                .json(&json!({"token": token, "name": "Sam", "password": TEAMMATE_PASSWORD}))
                .send()
                .await
        }
    };
    let accepted = accept(token.clone()).await;
    accepted.assert(201);
    assert_eq!(accepted.json()["member"]["roles"], json!(["operator"]));
    assert_eq!(accepted.json()["user"]["email"], TEAMMATE);
    accept(token).await.assert_problem(404, "not_found");

    // The teammate signs in, queues a job, and is refused a key (operators hold no apiKey.*).
    let teammate = app.sign_in(TEAMMATE, TEAMMATE_PASSWORD).await;
    let part = part(&app).await;
    app.post("/v1/print-jobs")
        .session(&teammate)
        .json(&json!({"partId": part}))
        .send()
        .await
        .assert(201);
    app.post("/v1/api-keys")
        .session(&teammate)
        .json(&json!({"name": "mine", "roles": ["admin"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    // Their joining is an event and an audit entry by them.
    let members = app.get("/v1/users").owner().send().await.json();
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
    let joined = app
        .get("/v1/audit-logs?entityType.eq=member&action.eq=create")
        .owner()
        .send()
        .await
        .json();
    let by_them = joined
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entityId"] == accepted.json()["user"]["id"])
        .expect("an audit entry for the new member");
    assert_eq!(by_them["actorType"], "user");
    printfarm::events::relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    let events = app.get("/v1/events").owner().send().await.json();
    assert!(
        events.to_string().contains("member.created"),
        "member.created is an event"
    );
}

#[tokio::test]
async fn without_smtp_the_token_is_shown_once_and_invitations_can_be_revoked() {
    let app = TestApp::new().await;
    let res = app
        .post("/v1/users/invite")
        .owner()
        .json(&json!({"email": TEAMMATE, "roles": ["viewer"]}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let created = res.json();
    assert_eq!(created["emailed"], false);
    let token = created["token"].as_str().unwrap().to_owned();
    let listed = app.get("/v1/invitations").owner().send().await.json();
    assert_eq!(listed[0]["email"], TEAMMATE);
    assert!(listed[0].get("token").is_none());
    let id = created["id"].as_str().unwrap();
    app.delete(&format!("/v1/invitations/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    app.delete(&format!("/v1/invitations/{id}"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    let res = app
        .post("/v1/invitations/accept")
        .json(&json!({"token": token, "name": "Sam", "password": TEAMMATE_PASSWORD}))
        .send()
        .await;
    res.assert_problem(404, "not_found");
    let detail = res.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("used, revoked or expired"), "{detail}");
    assert_eq!(
        app.get("/v1/invitations").owner().send().await.json(),
        json!([])
    );
    // A new account needs a name and a password; an expired invitation is gone.
    let token = app
        .post("/v1/users/invite")
        .owner()
        .json(&json!({"email": TEAMMATE}))
        .send()
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post("/v1/invitations/accept")
        .json(&json!({"token": token}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    app.clock.advance_ms(7 * 86_400 * 1000 + 1000);
    app.post("/v1/invitations/accept")
        .json(&json!({"token": token, "name": "Sam", "password": TEAMMATE_PASSWORD}))
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn an_email_has_one_open_invitation_at_a_time() {
    let app = TestApp::new().await;
    let invite = |email: String| {
        app.post("/v1/users/invite")
            .owner()
            .json(&json!({"email": email, "roles": ["viewer"]}))
            .send()
    };
    let first = invite(TEAMMATE.to_owned()).await.json();
    let first_id = first["id"].as_str().unwrap().to_owned();
    // Again, in another case: a conflict naming the open one, and no second seat taken.
    let again = invite(TEAMMATE.to_uppercase()).await;
    again.assert_problem(409, "conflict");
    assert!(
        again.json()["detail"].as_str().unwrap().contains(&first_id),
        "{}",
        again.json()
    );
    let listed = app.get("/v1/invitations").owner().send().await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // Revoked, it may be made again...
    app.delete(&format!("/v1/invitations/{first_id}"))
        .owner()
        .send()
        .await
        .assert(204);
    invite(TEAMMATE.to_owned()).await.assert(201);
    // ...and so once it has expired. Another email was never held up.
    invite("someone.else@example.com".to_owned())
        .await
        .assert(201);
    app.clock.advance_ms(7 * 86_400 * 1000 + 1000);
    invite(TEAMMATE.to_owned()).await.assert(201);
    // Who may invite but not list invitations learns that one is open, not its id; and
    // cannot revoke one granting more than it holds.
    let (_, inviter) = app
        .create_key(json!({"name": "inviter", "permissions": ["user.invite"]}))
        .await;
    let res = app
        .post("/v1/users/invite")
        .with_key(&inviter)
        .json(&json!({"email": TEAMMATE}))
        .send()
        .await;
    res.assert_problem(409, "conflict");
    let detail = res.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("already open") && !detail.contains("/v1/invitations/"),
        "{detail}"
    );
    let open = app.get("/v1/invitations").owner().send().await.json();
    let viewer_invite = open
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == TEAMMATE)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/invitations/{viewer_invite}"))
        .with_key(&inviter)
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    assert_eq!(
        app.get("/v1/invitations").owner().send().await.json(),
        open,
        "still open"
    );
    // Not an address: one problem, where it is.
    let res = invite("not-an-email".to_owned()).await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(
        res.json()["errors"].as_array().unwrap().len(),
        1,
        "{}",
        res.json()
    );
}

/// A browser still holding the cookie of a session that has ended accepts as if signed out: it
/// makes the new account, instead of being told its session is invalid.
#[tokio::test]
async fn an_ended_session_in_the_browser_does_not_stop_a_new_account() {
    let app = TestApp::new().await;
    let ended = app.owner_session().await;
    app.clock.advance_ms(9 * 3600 * 1000); // past the 8 h idle limit
    let token = invite_viewer(&app, TEAMMATE).await;
    let body = json!({"token": token, "name": "Sam", "password": TEAMMATE_PASSWORD});
    app.post("/v1/invitations/accept")
        .session(&ended)
        .json(&body)
        .send()
        .await
        .assert(201);
    app.sign_in(TEAMMATE, TEAMMATE_PASSWORD).await;
}

#[tokio::test]
async fn someone_with_an_account_accepts_signed_in_as_it() {
    let app = TestApp::new().await;
    let other = app.new_tenant("Other Farm").await;
    app.add_user_to(
        other.store_id,
        TEAMMATE,
        TEAMMATE_PASSWORD,
        false,
        &["viewer"],
        &[],
    )
    .await;
    let token = invite_viewer(&app, TEAMMATE).await;
    let body = json!({"token": token});
    app.post("/v1/invitations/accept")
        .json(&body)
        .send()
        .await
        .assert_problem(409, "conflict");
    let session = app.sign_in(TEAMMATE, TEAMMATE_PASSWORD).await;
    app.post("/v1/invitations/accept")
        .session(&session)
        .json(&body)
        .send()
        .await
        .assert(201);
    let me = app
        .get("/v1/me")
        .header("cookie", &format!("pf_session={session}"))
        .send()
        .await
        .json();
    assert_eq!(me["stores"].as_array().unwrap().len(), 2);
    // Inviting a member again is a conflict.
    app.post("/v1/users/invite")
        .owner()
        .json(&json!({"email": TEAMMATE.to_uppercase()}))
        .send()
        .await
        .assert_problem(409, "conflict");
}

#[tokio::test]
async fn nobody_grants_more_than_they_hold() {
    let app = TestApp::new().await;
    app.add_user(
        "viewer@example.com",
        "viewer passphrase",
        false,
        &["viewer"],
        &[],
    )
    .await;
    app.add_user(
        "admin@example.com",
        "admin passphrase",
        false,
        &["admin"],
        &[],
    )
    .await;
    app.add_user(
        "inviter@example.com",
        "inviter passphrase",
        false,
        &["viewer"],
        &["user.invite", "user.view"],
    )
    .await;
    let viewer = app.sign_in("viewer@example.com", "viewer passphrase").await;
    let admin = app.sign_in("admin@example.com", "admin passphrase").await;
    let inviter = app
        .sign_in("inviter@example.com", "inviter passphrase")
        .await;

    // A viewer invites nobody and makes no key.
    app.post("/v1/users/invite")
        .session(&viewer)
        .json(&json!({"email": "x@example.com", "roles": ["admin"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.post("/v1/api-keys")
        .session(&viewer)
        .json(&json!({"name": "k", "roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    // Who may invite, invites only with what they hold.
    app.post("/v1/users/invite")
        .session(&inviter)
        .json(&json!({"email": "x@example.com", "roles": ["operator"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.post("/v1/users/invite")
        .session(&inviter)
        .json(&json!({"email": "x@example.com", "roles": ["viewer"]}))
        .send()
        .await
        .assert(201);
    // An admin: no Full Access key, no owner's permissions, not themself, not the owner.
    app.post("/v1/api-keys")
        .session(&admin)
        .json(&json!({"name": "k", "fullAccess": true}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let key = app
        .post("/v1/api-keys")
        .session(&admin)
        .json(&json!({"name": "k", "roles": ["operator"]}))
        .send()
        .await;
    key.assert(201);
    assert!(key.json()["createdByUserId"].is_string());
    assert_eq!(key.json()["createdBy"], Value::Null);
    app.post("/v1/users/invite")
        .session(&admin)
        .json(&json!({"email": "y@example.com", "roles": ["store_owner"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let members = app.get("/v1/users").owner().send().await.json();
    let id_of = |email: &str| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    app.patch(&format!("/v1/users/{}", id_of("admin@example.com")))
        .session(&admin)
        .json(&json!({"permissions": ["organization.owner"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.post(&format!(
        "/v1/users/{}/transfer-ownership",
        id_of("admin@example.com")
    ))
    .session(&admin)
    .send()
    .await
    .assert_problem(403, "insufficient_permissions");
    app.patch(&format!("/v1/users/{}", id_of("viewer@example.com")))
        .session(&admin)
        .json(&json!({"roles": ["store_owner"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    // Within their own: an admin makes the viewer an operator.
    let changed = app
        .patch(&format!("/v1/users/{}", id_of("viewer@example.com")))
        .session(&admin)
        .json(&json!({"roles": ["operator"]}))
        .send()
        .await;
    changed.assert(200);
    assert_eq!(changed.json()["roles"], json!(["operator"]));
    // The viewer's session sees it on its next request.
    let me = app.get("/v1/me").session(&viewer).send().await.json();
    assert!(me["store"]["effectivePermissions"]
        .as_array()
        .unwrap()
        .contains(&json!("queue.manage")));
    // user.edit without permission.revoke: no taking away.
    let (_, editor) = app
        .member_session(
            "editor@example.com",
            &["operator"],
            &["user.edit", "user.view", "permission.grant"],
        )
        .await;
    app.patch(&format!("/v1/users/{}", id_of("viewer@example.com")))
        .session(&editor)
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
}

#[tokio::test]
async fn members_are_removed_with_their_keys_listed_and_ownership_passes_on() {
    let app = TestApp::new().await;
    let owner = app.owner_session().await;
    let (admin_id, admin) = app
        .member_session("admin@example.com", &["admin"], &[])
        .await;
    let key = app
        .post("/v1/api-keys")
        .session(&admin)
        .json(&json!({"name": "admin's", "roles": ["viewer"]}))
        .send()
        .await
        .json();
    let owner_id = app.get("/v1/me").session(&owner).send().await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The owner is not removed or changed, not even by a Full Access key.
    app.delete(&format!("/v1/users/{owner_id}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    app.patch(&format!("/v1/users/{owner_id}"))
        .owner()
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(409, "conflict");
    // A key cannot pass ownership on; the owner can.
    app.post(&format!("/v1/users/{admin_id}/transfer-ownership"))
        .owner()
        .send()
        .await
        .assert_problem(403, "session_required");
    let new_owner = app
        .post(&format!("/v1/users/{admin_id}/transfer-ownership"))
        .session(&owner)
        .send()
        .await;
    new_owner.assert(200);
    assert_eq!(new_owner.json()["owner"], true);
    let old = app
        .get(&format!("/v1/users/{owner_id}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(old["owner"], false);
    // The former owner (now without roles) may do nothing; the new one removes them.
    app.get("/v1/printers")
        .session(&owner)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let removed = app
        .delete(&format!("/v1/users/{owner_id}"))
        .session(&admin)
        .send()
        .await;
    removed.assert(200);
    assert_eq!(removed.json()["user"]["email"], OWNER_EMAIL);
    assert_eq!(removed.json()["apiKeysCreated"], json!([]));
    app.get("/v1/me")
        .session(&owner)
        .send()
        .await
        .assert_problem(403, "not_a_member");
    // The admin's own keys are listed when they go (by the owner key, now they own the store
    // the owner key still holds everything).
    let (member, op) = app.member_session("op@example.com", &["admin"], &[]).await;
    let ops_key = app
        .post("/v1/api-keys")
        .session(&op)
        .json(&json!({"name": "op's", "roles": ["viewer"]}))
        .send()
        .await
        .json();
    let removed = app
        .delete(&format!("/v1/users/{member}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(removed["apiKeysCreated"][0]["id"], ops_key["id"]);
    assert_ne!(removed["apiKeysCreated"][0]["id"], key["id"]);
    app.get(&format!("/v1/users/{member}"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    let _ = OWNER_PASSWORD;
}

#[tokio::test]
async fn a_password_is_reset_by_mail_or_by_the_operator() {
    let (app, smtp) = app_with_mail().await;
    let session = app.owner_session().await;
    app.post("/v1/auth/password-reset")
        .json(&json!({"email": "nobody@example.com"}))
        .send()
        .await
        .assert(202);
    assert!(
        smtp.nothing_within(300).await,
        "no mail for an unknown account"
    );
    app.post("/v1/auth/password-reset")
        .json(&json!({"email": OWNER_EMAIL}))
        .send()
        .await
        .assert(202);
    let mail = smtp.next().await;
    assert_eq!(mail["to"], json!([OWNER_EMAIL]));
    let token = token_in(&mail, "Your reset token: ");
    // A second reset asked meanwhile stops working once either is used.
    app.post("/v1/auth/password-reset")
        .json(&json!({"email": OWNER_EMAIL}))
        .send()
        .await
        .assert(202);
    let other = token_in(&smtp.next().await, "Your reset token: ");
    let confirm = |token: &str, password: &str| {
        app.post("/v1/auth/password-reset/confirm")
            .json(&json!({"token": token, "newPassword": password}))
            .send()
    };
    confirm(&token, "short")
        .await
        .assert_problem(422, "validation_failed");
    confirm(&token, "a reset passphrase").await.assert(204);
    // Recorded as the user's own change, the password redacted.
    let recorded: i64 = sqlx::query_scalar(
        "select count(*) from audit_logs where entity_type = 'user' and action = 'update'
            and actor_type = 'user' and changes -> 'password' ->> 'to' = '[redacted]'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(recorded, 1);
    confirm(&token, "another passphrase")
        .await
        .assert_problem(404, "not_found");
    confirm(&other, "another passphrase")
        .await
        .assert_problem(404, "not_found");
    app.get("/v1/me")
        .session(&session)
        .send()
        .await
        .assert_problem(401, "invalid_session");
    app.sign_in(OWNER_EMAIL, "a reset passphrase").await;

    // Without mail: the operator's CLI sets one and prints it once.
    let generated = printfarm::cli::reset_password(&app.state.config, OWNER_EMAIL, None)
        .await
        .unwrap()
        .unwrap();
    app.sign_in(OWNER_EMAIL, &generated).await;
    let by_operator: i64 = sqlx::query_scalar(
        "select count(*) from audit_logs where entity_type = 'user' and action = 'update'
            and actor_type = 'operator' and changes ? 'password'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(by_operator, 1);
    assert!(
        printfarm::cli::reset_password(&app.state.config, "nobody@example.com", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_members_keys_do_no_more_than_the_member_may_now() {
    let app = TestApp::new().await;
    let (admin, session) = app
        .member_session("admin@example.com", &["admin"], &[])
        .await;
    let key = key_made_in(&app, &session, "admin").await;
    app.get("/v1/users").with_key(&key).send().await.assert(200);
    // A key that key makes is made for the admin too, and follows them the same way.
    let made = app
        .post("/v1/api-keys")
        .with_key(&key)
        .json(&json!({"name": "made by admin's key", "roles": ["admin"]}))
        .send()
        .await;
    made.assert(201);
    assert_eq!(made.json()["createdByUserId"], json!(admin));
    let grandchild = made.json()["key"].as_str().unwrap().to_owned();
    let grandchild_id = made.json()["id"].as_str().unwrap().to_owned();
    // Demoted: the key they made is demoted with them, and cannot undo it.
    app.patch(&format!("/v1/users/{admin}"))
        .owner()
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert(200);
    app.get("/v1/users")
        .with_key(&key)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    for key in [&key, &grandchild] {
        app.get("/v1/users")
            .with_key(key)
            .send()
            .await
            .assert_problem(403, "insufficient_permissions");
        app.patch(&format!("/v1/users/{admin}"))
            .with_key(key)
            .json(&json!({"roles": ["admin"]}))
            .send()
            .await
            .assert_problem(403, "insufficient_permissions");
    }
    app.get("/v1/printers")
        .with_key(&key)
        .send()
        .await
        .assert(200);
    // Removed: the keys can do nothing (until someone revokes them), and the answer names both.
    let named = remove_member(&app, &admin.to_string()).await;
    assert!(named.contains(&grandchild_id), "{named:?}");
    assert_eq!(named.len(), 2, "{named:?}");
    for key in [&key, &grandchild] {
        app.get("/v1/printers")
            .with_key(key)
            .send()
            .await
            .assert_problem(403, "insufficient_permissions");
    }
    app.post("/v1/users/invite")
        .with_key(&key)
        .json(&json!({"email": "admin@example.com", "roles": ["admin"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
}

#[tokio::test]
async fn a_role_held_by_someone_stronger_is_not_a_weaker_callers_to_change() {
    let app = TestApp::new().await;
    let role = app
        .post("/v1/roles")
        .owner()
        .json(&json!({"name": "Floor", "permissions": ["queue.view"]}))
        .send()
        .await
        .json();
    let id = role["id"].as_str().unwrap().to_owned();
    app.add_user(
        "admin@example.com",
        "admin passphrase",
        false,
        &["admin", &id],
        &[],
    )
    .await;
    let granter = app
        .key_with(
            &[],
            &[
                "permission.grant",
                "permission.revoke",
                "queue.view",
                "user.edit",
            ],
        )
        .await;
    app.patch(&format!("/v1/roles/{id}"))
        .with_key(&granter)
        .json(&json!({"permissions": []}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
}

#[tokio::test]
async fn a_store_without_an_owner_gets_its_first_from_a_full_access_key() {
    let app = TestApp::new().await;
    let first = app
        .add_user(
            "first@example.com",
            "first passphrase",
            false,
            &["viewer"],
            &[],
        )
        .await;
    let second = app
        .add_user(
            "second@example.com",
            "second passphrase",
            false,
            &["viewer"],
            &[],
        )
        .await;
    let narrow = app.key_with(&["admin"], &[]).await;
    app.post(&format!("/v1/users/{first}/transfer-ownership"))
        .with_key(&narrow)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let made = app
        .post(&format!("/v1/users/{first}/transfer-ownership"))
        .owner()
        .send()
        .await;
    made.assert(200);
    assert_eq!(made.json()["owner"], true);
    // Now the store has an owner: only they pass it on.
    app.post(&format!("/v1/users/{second}/transfer-ownership"))
        .owner()
        .send()
        .await
        .assert_problem(403, "session_required");
}

/// Anyone who knows an email can throttle its account with wrong guesses; resetting the password
/// (by mail, or by the operator) lets its owner in at once with the new one.
#[tokio::test]
async fn a_password_reset_lifts_the_sign_in_throttle_on_its_account() {
    let (app, smtp) = app_with_mail().await;
    app.owner_session().await;
    let login = |password: &str| {
        app.post("/v1/auth/login")
            .json(&json!({"email": OWNER_EMAIL, "password": password}))
            .send()
    };
    let throttle = || async {
        for _ in 0..10 {
            login("a wrong guess")
                .await
                .assert_problem(401, "invalid_credentials");
        }
        login("a wrong guess")
            .await
            .assert_problem(429, "too_many_auth_failures");
    };

    throttle().await;
    app.post("/v1/auth/password-reset")
        .json(&json!({"email": OWNER_EMAIL}))
        .send()
        .await
        .assert(202);
    let token = token_in(&smtp.next().await, "Your reset token: ");
    app.post("/v1/auth/password-reset/confirm")
        .json(&json!({"token": token, "newPassword": "a mailed passphrase"}))
        .send()
        .await
        .assert(204);
    login("a mailed passphrase").await.assert(200);

    throttle().await;
    let generated = printfarm::cli::reset_password(&app.state.config, OWNER_EMAIL, None)
        .await
        .unwrap()
        .unwrap();
    login(&generated).await.assert(200);
}

/// An invitation waits for days; it is honoured only as far as whoever made it may still grant
/// it. Otherwise a demoted or removed admin (who holds the token when no mail is sent) could keep
/// invitations to addresses of their own as a way back in.
#[tokio::test]
async fn an_invitation_outlives_no_more_than_its_inviters_authority() {
    let app = TestApp::new().await;
    let (admin, session) = app
        .member_session("admin@example.com", &["admin"], &[])
        .await;
    let accept = |token: String| {
        app.post("/v1/invitations/accept")
            .json(&json!({"token": token, "name": "Sleeper", "password": "a sleeper passphrase"}))
            .send()
    };
    let sleeper = invite_as_admin(
        app.post("/v1/users/invite").session(&session),
        "sleeper@x.org",
    )
    .await;
    let kept = invite_as_admin(app.post("/v1/users/invite").session(&session), "kept@x.org").await;
    let key = app.key_with(&["admin"], &[]).await;
    let by_key = invite_as_admin(app.post("/v1/users/invite").with_key(&key), "bykey@x.org").await;

    // While the admin is an admin, their invitation works.
    accept(kept).await.assert(201);
    // Demoted, their other invitation no longer grants admin.
    app.patch(&format!("/v1/users/{admin}"))
        .owner()
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert(200);
    accept(sleeper).await.assert_problem(409, "conflict");
    // A key's invitation goes with the key.
    let key_id = app
        .get("/v1/api-keys/current")
        .with_key(&key)
        .send()
        .await
        .json()["id"]
        .clone();
    app.delete(&format!("/v1/api-keys/{}", key_id.as_str().unwrap()))
        .owner()
        .send()
        .await
        .assert(204);
    accept(by_key).await.assert_problem(409, "conflict");
}

#[tokio::test]
async fn a_member_invited_back_gets_back_the_keys_they_made() {
    let app = TestApp::new().await;
    let (member, op) = app.member_session("op@example.com", &["admin"], &[]).await;
    let key = key_made_in(&app, &op, "viewer").await;
    app.get("/v1/printers")
        .with_key(&key)
        .send()
        .await
        .assert(200);
    app.delete(&format!("/v1/users/{member}"))
        .owner()
        .send()
        .await
        .assert(200);
    // Gone with its member (and cached so).
    app.get("/v1/printers")
        .with_key(&key)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let token = invite_viewer(&app, "op@example.com").await;
    // Other replicas hear of the new membership as of any change to one.
    let mut replica = sqlx::postgres::PgListener::connect_with(app.pool())
        .await
        .unwrap();
    replica.listen("pf_key_changes").await.unwrap();
    app.post("/v1/invitations/accept")
        .session(&op)
        .json(&json!({"token": token}))
        .send()
        .await
        .assert(201);
    app.get("/v1/printers")
        .with_key(&key)
        .send()
        .await
        .assert(200);
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), replica.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(heard.payload(), format!("store:{}", app.store_id));
}

/// A key with `role`, made by the member signed in with `session`; its secret.
async fn key_made_in(app: &TestApp, session: &str, role: &str) -> String {
    let made = app
        .post("/v1/api-keys")
        .session(session)
        .json(&json!({"name": format!("a {role} key"), "roles": [role]}))
        .send()
        .await;
    made.assert(201);
    made.json()["key"].as_str().unwrap().to_owned()
}

/// Invites `email` as a viewer, by the owner; the token (no mail is configured).
async fn invite_viewer(app: &TestApp, email: &str) -> String {
    let res = app
        .post("/v1/users/invite")
        .owner()
        .json(&json!({"email": email, "roles": ["viewer"]}))
        .send()
        .await;
    res.assert(201);
    res.json()["token"].as_str().unwrap().to_owned()
}

/// Invites `email` as an admin; the token (no mail is configured).
async fn invite_as_admin(req: crate::helpers::Req<'_>, email: &str) -> String {
    let res = req
        .json(&json!({"email": email, "roles": ["admin"]}))
        .send()
        .await;
    res.assert(201);
    res.json()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn members_are_paged_filtered_and_sorted_like_every_list() {
    let app = TestApp::new().await;
    for name in ["carol", "alice", "bob"] {
        app.add_user(
            &format!("{name}@example.com"),
            "a passphrase 123",
            false,
            &["viewer"],
            &[],
        )
        .await;
    }
    // In the order they joined, two a page, by cursor.
    let mut emails = Vec::new();
    let mut next = Some("/v1/users?limit=2".to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let res = app.get(&url).owner().send().await;
        res.assert(200);
        pages += 1;
        let page = res.json();
        assert!(page.as_array().unwrap().len() <= 2, "{page}");
        emails.extend(page.as_array().unwrap().iter().map(|m| m["email"].clone()));
        next = res.next_page();
    }
    assert_eq!(pages, 2);
    assert_eq!(
        emails,
        [
            json!("carol@example.com"),
            json!("alice@example.com"),
            json!("bob@example.com")
        ]
    );
    // Filtered and sorted, with a count.
    let res = app
        .get("/v1/users?email.endsWith=@example.com&owner.eq=false&sort=email:desc&count=true")
        .owner()
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.header("x-total-count"), Some("3"));
    let names: Vec<Value> = res
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names.len(), 3);
    assert_eq!(res.json()[0]["email"], "carol@example.com");
    assert_eq!(res.json()[2]["email"], "alice@example.com");
    // An email is found whatever its case, as it is unique.
    let found = app
        .get("/v1/users?email.eq=CAROL@Example.com")
        .owner()
        .send()
        .await
        .json();
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    // What a list refuses, it refuses here too.
    app.get("/v1/users?password.eq=x")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
    app.get("/v1/users?limit=0")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn open_invitations_are_paged_and_ended_ones_stay_out() {
    let app = TestApp::new().await;
    let invite = |email: &'static str| {
        app.post("/v1/users/invite")
            .owner()
            .json(&json!({"email": email}))
            .send()
    };
    let mut ids = Vec::new();
    for email in [
        "d@example.com",
        "b@example.com",
        "a@example.com",
        "c@example.com",
    ] {
        let res = invite(email).await;
        res.assert(201);
        ids.push(res.json()["id"].as_str().unwrap().to_owned());
        app.clock.advance_ms(1000);
    }
    // One revoked, one expired: neither is listed nor counted.
    app.delete(&format!("/v1/invitations/{}", ids[1]))
        .owner()
        .send()
        .await
        .assert(204);
    app.clock.advance_ms(7 * 86_400 * 1000 - 3500);
    // Newest first by default; by email on request, a page at a time, by offset.
    let listed = app.get("/v1/invitations").owner().send().await.json();
    let emails = |page: &Value| -> Vec<Value> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|i| i["email"].clone())
            .collect()
    };
    assert_eq!(
        emails(&listed),
        [json!("c@example.com"), json!("a@example.com")],
        "d@ expired, b@ revoked"
    );
    invite("e@example.com").await.assert(201);
    let first = app
        .get("/v1/invitations?sort=email:asc&limit=2&offset=0&count=true")
        .owner()
        .send()
        .await;
    first.assert(200);
    assert_eq!(first.header("x-total-count"), Some("3"));
    assert_eq!(
        emails(&first.json()),
        [json!("a@example.com"), json!("c@example.com")]
    );
    let rest = app.get(&first.next_page().unwrap()).owner().send().await;
    assert_eq!(emails(&rest.json()), [json!("e@example.com")]);
    assert!(rest.next_page().is_none());
    let found = app
        .get("/v1/invitations?email.in=A@EXAMPLE.COM,c@example.com&email.ne=C@example.COM")
        .owner()
        .send()
        .await
        .json();
    assert_eq!(emails(&found), [json!("a@example.com")]);
    // An address kept as it was typed is found and left out whatever the case asked with.
    invite("Mixed@Example.COM").await.assert(201);
    for (query, wanted) in [
        (
            "email.eq=mixed@example.com",
            vec![json!("Mixed@Example.COM")],
        ),
        (
            "email.notIn=MIXED@example.com&sort=email:asc",
            vec![
                json!("a@example.com"),
                json!("c@example.com"),
                json!("e@example.com"),
            ],
        ),
    ] {
        let found = app
            .get(&format!("/v1/invitations?{query}"))
            .owner()
            .send()
            .await
            .json();
        assert_eq!(emails(&found), wanted, "{query}");
    }
    // Whether an invitation is open is the list's to say, not a filter's.
    app.get("/v1/invitations?revokedAt.isNull=false")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn an_invitation_a_stalled_mail_server_never_takes_is_revoked_and_says_so() {
    // A server that accepts the connection and never answers: the mail gives up in 20 s,
    // before the request's own timeout (30 s) would cut it short.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::with_config(&[
        ("PF_SMTP_URL", &format!("smtp://127.0.0.1:{port}")),
        ("PF_SMTP_FROM", "Farm <farm@example.com>"),
        ("PF_PUBLIC_URL", "https://dash.example/"),
    ])
    .await;
    let started = std::time::Instant::now();
    app.post("/v1/users/invite")
        .owner()
        .json(&json!({"email": "stalled@example.com", "roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(503, "service_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(28));
    // Nothing is left open, and the audit log says it went.
    assert_eq!(
        count(
            &app,
            "select count(*) from invitations where revoked_at is null"
        )
        .await,
        0
    );
    let res = app
        .get("/v1/audit-logs?entityType.eq=invitation&action.eq=delete")
        .owner()
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn resets_asked_for_at_once_mail_at_most_three() {
    let (app, smtp) = app_with_mail().await;
    app.owner_session().await;
    let ask = || {
        app.post("/v1/auth/password-reset")
            .json(&json!({"email": OWNER_EMAIL}))
            .send()
    };
    let asked = futures_util::future::join_all((0..12).map(|_| ask())).await;
    for res in &asked {
        res.assert(202);
    }
    for _ in 0..3 {
        smtp.next().await;
    }
    assert!(smtp.nothing_within(1000).await, "a fourth reset was mailed");
    assert_eq!(count(&app, "select count(*) from password_resets").await, 3);
}

/// Anyone may ask for a reset, so an address that asks too often is told to wait (before any
/// database work); another address is not.
#[tokio::test]
async fn an_address_that_asks_for_resets_too_often_is_told_to_wait() {
    let app = TestApp::new().await;
    let ask = |from: &'static str| {
        app.post("/v1/auth/password-reset")
            .peer(from)
            .json(&json!({"email": "nobody@example.com"}))
            .send()
    };
    let mut refused = None;
    for _ in 0..100 {
        let res = ask("198.51.100.9").await;
        if res.status == 429 {
            refused = Some(res);
            break;
        }
        res.assert(202);
    }
    let refused = refused.expect("a hundred resets from one address were all accepted");
    refused.assert_problem(429, "too_many_auth_failures");
    assert!(
        refused
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    ask("198.51.100.10").await.assert(202);
}

/// A member who rolls a key, or grants it roles, holds it from then on: it follows them as a
/// key they made would, so it is no way back once they are removed.
#[tokio::test]
async fn a_key_a_member_rolled_or_granted_to_is_theirs_from_then_on() {
    let app = TestApp::new().await;
    let make = |name: &'static str, roles: Value| {
        let app = &app;
        async move {
            let made = app
                .post("/v1/api-keys")
                .owner()
                .json(&json!({"name": name, "roles": roles}))
                .send()
                .await;
            made.assert(201);
            assert_eq!(made.json()["createdByUserId"], Value::Null);
            made.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let integration = make("integration", json!(["admin"])).await;
    let viewer = make("viewer", json!(["viewer"])).await;
    let renamed = make("renamed", json!(["viewer"])).await;
    let (admin, session) = app
        .member_session("admin@example.com", &["admin"], &[])
        .await;
    let rolled = app
        .post(&format!("/v1/api-keys/{integration}/roll"))
        .session(&session)
        .json(&json!({"graceSeconds": 0}))
        .send()
        .await;
    rolled.assert(200);
    assert_eq!(rolled.json()["createdByUserId"], json!(admin));
    let rolled_secret = rolled.json()["key"].as_str().unwrap().to_owned();
    let granted = app
        .patch(&format!("/v1/api-keys/{viewer}"))
        .session(&session)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await;
    granted.assert(200);
    assert_eq!(granted.json()["createdByUserId"], json!(admin));
    // A name alone changes no grant, nor does the key sent back whole with its own lists (a
    // client saving a form): whom the key is made for stays.
    for edit in [
        json!({"name": "renamed by the admin"}),
        json!({"name": "renamed again", "roles": ["viewer", "viewer"], "permissions": []}),
    ] {
        let kept = app
            .patch(&format!("/v1/api-keys/{renamed}"))
            .session(&session)
            .json(&edit)
            .send()
            .await;
        kept.assert(200);
        assert_eq!(kept.json()["createdByUserId"], Value::Null, "{edit}");
    }
    // The store's Full Access key, saved back by its owner with the empty lists it shows.
    let full = app.get("/v1/api-keys/current").owner().send().await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = app
        .patch(&format!("/v1/api-keys/{full}"))
        .session(&app.owner_session().await)
        .json(&json!({"roles": [], "permissions": []}))
        .send()
        .await;
    saved.assert(200);
    assert_eq!(saved.json()["createdByUserId"], Value::Null);
    // A key made for another member stays theirs when edited; rolled, it changes hands, and
    // the secret they hold ends at once, whatever the grace asked for.
    let (other, other_session) = app
        .member_session("other@example.com", &["admin"], &[])
        .await;
    let others = app
        .post("/v1/api-keys")
        .session(&other_session)
        .json(&json!({"name": "other's", "roles": ["viewer"]}))
        .send()
        .await;
    others.assert(201);
    let others_secret = others.json()["key"].as_str().unwrap().to_owned();
    let others = others.json()["id"].as_str().unwrap().to_owned();
    let edited = app
        .patch(&format!("/v1/api-keys/{others}"))
        .session(&session)
        .json(&json!({"roles": ["operator"]}))
        .send()
        .await;
    edited.assert(200);
    assert_eq!(edited.json()["createdByUserId"], json!(other));
    let taken = app
        .post(&format!("/v1/api-keys/{others}/roll"))
        .session(&session)
        .json(&json!({"graceSeconds": 3600}))
        .send()
        .await;
    taken.assert(200);
    assert_eq!(taken.json()["createdByUserId"], json!(admin));
    assert!(taken.json()["previousSecretValidUntil"].is_null());
    app.get("/v1/printers")
        .with_key(&others_secret)
        .send()
        .await
        .assert(401);
    app.get("/v1/users")
        .with_key(&rolled_secret)
        .send()
        .await
        .assert(200);
    let named = remove_member(&app, &admin.to_string()).await;
    assert!(named.contains(&integration), "{named:?}");
    assert!(named.contains(&viewer), "{named:?}");
    assert!(!named.contains(&renamed), "{named:?}");
    app.get("/v1/printers")
        .with_key(&rolled_secret)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
}

/// A key that expires (or is limited to some addresses) cannot make a member, or widen one:
/// members sign in from anywhere, for good. A key made for a member cannot change them either.
#[tokio::test]
async fn a_restricted_key_makes_no_unrestricted_member_and_a_members_key_is_them() {
    let app = TestApp::new().await;
    let expiring = app.expiring_admin_key().await;
    app.post("/v1/users/invite")
        .with_key(&expiring)
        .json(&json!({"email": "someone@example.com", "roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let (member, session) = app
        .member_session("member@example.com", &["operator"], &[])
        .await;
    app.patch(&format!("/v1/users/{member}"))
        .with_key(&expiring)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    // Narrowing lifts nothing.
    app.patch(&format!("/v1/users/{member}"))
        .with_key(&expiring)
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert(200);
    app.patch(&format!("/v1/users/{member}"))
        .owner()
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .assert(200);
    let theirs = app
        .post("/v1/api-keys")
        .session(&session)
        .json(&json!({"name": "the member's", "roles": ["admin"]}))
        .send()
        .await;
    theirs.assert(201);
    let theirs = theirs.json()["key"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/users/{member}"))
        .with_key(&theirs)
        .json(&json!({"permissions": ["printer.view"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    app.delete(&format!("/v1/users/{member}"))
        .with_key(&theirs)
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
}

/// Two keys making a store's first owner at once: one does, the other is told the store has
/// one (not a 500 from the one-owner index).
#[tokio::test]
async fn first_owners_made_at_once_make_one() {
    let app = TestApp::new().await;
    let mut members = Vec::new();
    for n in 0..6 {
        members.push(
            app.add_user(
                &format!("m{n}@example.com"),
                "a member passphrase",
                false,
                &["viewer"],
                &[],
            )
            .await,
        );
    }
    let transfer = |m: &printfarm::ids::UserId| {
        app.post(&format!("/v1/users/{m}/transfer-ownership"))
            .owner()
            .send()
    };
    let answers = tokio::join!(
        transfer(&members[0]),
        transfer(&members[1]),
        transfer(&members[2]),
        transfer(&members[3]),
        transfer(&members[4]),
        transfer(&members[5])
    );
    let mut statuses: Vec<u16> = [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5,
    ]
    .iter()
    .map(|a| a.status.as_u16())
    .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 403, 403, 403, 403, 403], "{statuses:?}");
}

/// Removes the member (by the owner key); the ids of the keys the answer names as theirs.
async fn remove_member(app: &TestApp, member: &str) -> Vec<String> {
    let removed = app
        .delete(&format!("/v1/users/{member}"))
        .owner()
        .send()
        .await;
    removed.assert(200);
    removed.json()["apiKeysCreated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}
