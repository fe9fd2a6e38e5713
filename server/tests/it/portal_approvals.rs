//! Approvals through the portal's endpoints, with software keys: the requester asks with a
//! reason and a step-up, approvers decide with theirs, live events reach the requester's page,
//! and the rules hold at the edge (roles, no self-approval, a reason to reject).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use countersign::challenges::ChallengeStatus;
use countersign::identity::accounts;
use countersign::identity::mapping::IdentityMap;
use countersign::identity::setup::Invitation;
use countersign::identity::{Role, User};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::portal::{Browser, Portal};
use crate::soft_key::SoftKey;
use crate::support::{fixture, review, PUBLIC_URL};

const REASON: &str = "incident 4411: roll back the bad config";

async fn portal() -> anyhow::Result<Portal> {
    let path = fixture("policies/approvals.yaml");
    let text = std::fs::read_to_string(&path)?;
    let guardrails = countersign::policy::parse_documents(&path.display().to_string(), &text)?;
    let identities = IdentityMap::load(&fixture("fixtures/approvers.yaml"))?;
    Portal::spawn_with(PUBLIC_URL, move |state| {
        state.guardrails = crate::support::in_force(guardrails);
        state.identities = Arc::new(identities);
    })
    .await
}

/// An account with a software key, made through an invitation (as an admin would).
async fn account(
    portal: &Portal,
    username: &str,
    role: Role,
    groups: &[&str],
) -> anyhow::Result<Person> {
    let invitation = Invitation {
        role,
        username: username.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    let token = accounts::invite(portal.state().store.as_ref(), &invitation, "it-admin").await?;
    let browser = portal.page(&format!("/setup/{token}"), None).await?;
    let (key, response) = portal
        .setup_with_key(&browser, &json!({"token": token}))
        .await?;
    anyhow::ensure!(response.status() == StatusCode::OK, "setup failed");
    let user = portal
        .state()
        .store
        .user_by_username(username)
        .await?
        .context("no account")?;
    assert_eq!(user.groups, invitation.groups);
    let browser = portal.signed_in(&user).await?;
    Ok((user, key, browser))
}

type Person = (User, SoftKey, Browser);

/// Alice's payments change, denied by the approval guardrail: the challenge code and the message.
async fn denied_change(portal: &Portal) -> anyhow::Result<(String, String)> {
    let (status_code, denial) = portal.app.admit(&review("deployment-update")?).await?;
    assert_eq!(status_code, StatusCode::OK);
    let message = denial["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code: String = message
        .split("/c/")
        .nth(1)
        .context("no link in the denial")?
        .chars()
        .take(8)
        .collect();
    Ok((code, message))
}

/// Start a ceremony at `start`, answer it with the person's key, finish at `finish`. A finished
/// step-up gives the session a new id: the person's browser then signs in afresh, as the real
/// one follows the new cookie.
async fn ceremony(
    portal: &Portal,
    who: &mut Person,
    (start, body): (&str, Value),
    finish: &str,
    code: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let (user, key, browser) = who;
    let response = portal.json(start, Some(browser), &body).await?;
    let status = response.status();
    let options: Value = response.json().await?;
    if status != StatusCode::OK {
        return Ok((status, options));
    }
    let credential = key.assert(&options)?;
    let response = portal
        .json(
            finish,
            Some(browser),
            &json!({"code": code, "credential": credential}),
        )
        .await?;
    let status = response.status();
    if status == StatusCode::OK {
        *browser = portal.signed_in(user).await?;
    }
    Ok((status, response.json().await?))
}

async fn decide(
    portal: &Portal,
    who: &mut Person,
    code: &str,
    decision: &str,
    reason: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let body = json!({"code": code, "decision": decision, "reason": reason});
    ceremony(
        portal,
        who,
        ("/auth/decide/start", body),
        "/auth/decide/finish",
        code,
    )
    .await
}

async fn status(portal: &Portal, code: &str) -> anyhow::Result<ChallengeStatus> {
    Ok(portal
        .state()
        .store
        .challenge(code)
        .await?
        .context("gone")?
        .status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_and_manager_through_the_portal() -> anyhow::Result<()> {
    let portal = portal().await?;
    let mut alice = account(&portal, "alice", Role::Engineer, &["payments-oncall"]).await?;
    let mut bob = account(&portal, "bob", Role::Approver, &["payments-oncall"]).await?;
    let mut carol = account(&portal, "carol", Role::Approver, &["payments-managers"]).await?;
    let mut erin = account(&portal, "erin", Role::Engineer, &["payments-managers"]).await?;

    let (code, message) = denied_change(&portal).await?;
    assert!(
        message.starts_with("approval required by guardrail \"payments-escalation\""),
        "{message}"
    );

    // The guardrail wants a reason of at least 10 characters, before any key is touched.
    let short = portal
        .json(
            "/auth/stepup/start",
            Some(&alice.2),
            &json!({"code": code, "reason": "pls"}),
        )
        .await?;
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);

    // Approvers cannot act before the requester asked.
    let (early, _) = decide(&portal, &mut bob, &code, "approve", "").await?;
    assert_eq!(early, StatusCode::CONFLICT);

    let body = json!({"code": code, "reason": REASON});
    let (asked, _) = ceremony(
        &portal,
        &mut alice,
        ("/auth/stepup/start", body),
        "/auth/stepup/finish",
        &code,
    )
    .await?;
    assert_eq!(asked, StatusCode::OK);
    assert_eq!(status(&portal, &code).await?, ChallengeStatus::Awaiting);

    // The requester's page listens for changes.
    let mut events = portal.get("/events", Some(&alice.2)).await?;
    assert_eq!(events.status(), StatusCode::OK);

    // Alice is in an approving group and still may not approve her own request.
    let alice_as_approver = portal
        .state()
        .store
        .user_by_username("alice")
        .await?
        .context("alice")?;
    portal
        .state()
        .store
        .set_role("alice", Role::Approver)
        .await?;
    let (own, body) = decide(&portal, &mut alice, &code, "approve", "").await?;
    assert_eq!(own, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("own request"),
        "{body}"
    );
    portal
        .state()
        .store
        .set_role("alice", alice_as_approver.role)
        .await?;
    // An engineer in the managers' group has no approver role.
    let (engineer, _) = decide(&portal, &mut erin, &code, "approve", "").await?;
    assert_eq!(engineer, StatusCode::FORBIDDEN);

    let (peer, _) = decide(&portal, &mut bob, &code, "approve", "checked the diff").await?;
    assert_eq!(peer, StatusCode::OK);
    let chunk = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .context("no event within 5 s")??
        .context("stream ended")?;
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.contains(&code) && text.contains("approved"), "{text}");
    assert_eq!(status(&portal, &code).await?, ChallengeStatus::Awaiting);

    // The manager sees it in the queue and on its review page.
    let queue = portal
        .get("/approvals", Some(&carol.2))
        .await?
        .text()
        .await?;
    assert!(
        queue.contains(&format!("data-queue-item=\"{code}\"")),
        "not in the queue"
    );
    let page = portal
        .get(&format!("/approvals/{code}"), Some(&carol.2))
        .await?
        .text()
        .await?;
    assert!(page.contains("data-decide-step") && page.contains(REASON));

    let (manager, _) = decide(&portal, &mut carol, &code, "approve", "").await?;
    assert_eq!(manager, StatusCode::OK);
    assert_eq!(status(&portal, &code).await?, ChallengeStatus::Granted);
    let admitted = portal.app.decide(&review("deployment-update")?).await?;
    assert_eq!(admitted["allowed"], true, "{admitted}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_needs_a_reason_and_a_failed_step_up_counts_nothing() -> anyhow::Result<()> {
    let portal = portal().await?;
    let mut alice = account(&portal, "alice", Role::Engineer, &[]).await?;
    let mut bob = account(&portal, "bob", Role::Approver, &["payments-oncall"]).await?;
    let (code, _) = denied_change(&portal).await?;
    let body = json!({"code": code, "reason": REASON});
    ceremony(
        &portal,
        &mut alice,
        ("/auth/stepup/start", body),
        "/auth/stepup/finish",
        &code,
    )
    .await?;

    // Another key's answer is no step-up of Bob's.
    let options: Value = portal
        .json(
            "/auth/decide/start",
            Some(&bob.2),
            &json!({"code": code, "decision": "approve"}),
        )
        .await?
        .json()
        .await?;
    let mut stranger = SoftKey::new(PUBLIC_URL)?;
    let forged = stranger.assert(&options)?;
    let refused = portal
        .json(
            "/auth/decide/finish",
            Some(&bob.2),
            &json!({"code": code, "credential": forged}),
        )
        .await?;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    assert!(portal.state().store.approvals_of(&code).await?.is_empty());

    let (no_reason, _) = decide(&portal, &mut bob, &code, "reject", " ").await?;
    assert_eq!(no_reason, StatusCode::BAD_REQUEST);
    let (rejected, _) = decide(&portal, &mut bob, &code, "reject", "not during the freeze").await?;
    assert_eq!(rejected, StatusCode::OK);
    assert_eq!(status(&portal, &code).await?, ChallengeStatus::Rejected);
    let page = portal
        .get(&format!("/c/{code}"), Some(&alice.2))
        .await?
        .text()
        .await?;
    assert!(page.contains("Rejected by bob") && page.contains("not during the freeze"));

    // Item 16: the retry opens a fresh request, whose page says what became of the last one.
    let (again, _) = denied_change(&portal).await?;
    assert_ne!(again, code);
    let page = portal
        .get(&format!("/c/{again}"), Some(&alice.2))
        .await?
        .text()
        .await?;
    let told = page
        .split("data-previous-rejection")
        .nth(1)
        .context("no trace of the rejection on the new page")?;
    assert!(told.contains("bob") && told.contains("not during the freeze"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_groups_on_the_users_page_and_nobody_else_may() -> anyhow::Result<()> {
    let portal = portal().await?;
    let admin = portal.user("ada", Role::Admin).await?;
    let bob = portal.user("bob", Role::Approver).await?;
    let admin_browser = portal.signed_in(&admin).await?;
    let page = portal
        .get("/admin/users", Some(&admin_browser))
        .await?
        .text()
        .await?;
    assert!(page.contains("data-user-row=\"bob\""), "bob is not listed");

    // Bob may not give himself the managers' group.
    let bob_browser = portal.signed_in(&bob).await?;
    let refused = portal
        .form(
            "/api/set_groups",
            Some(&bob_browser),
            &[
                ("username", "bob"),
                ("groups", "payments-managers"),
                ("csrf", &bob_browser.csrf),
            ],
        )
        .await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let forbidden = portal
        .get("/admin/users", Some(&bob_browser))
        .await?
        .text()
        .await?;
    assert!(forbidden.contains("Users are for administrators"));

    // A `system:` group is Kubernetes' own: refused with a reason, nothing stored.
    let bad = portal
        .form(
            "/api/set_groups",
            Some(&admin_browser),
            &[
                ("username", "bob"),
                ("groups", "system:masters"),
                ("csrf", &admin_browser.csrf),
            ],
        )
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let saved = portal
        .form(
            "/api/set_groups",
            Some(&admin_browser),
            &[
                ("username", "bob"),
                ("groups", "payments-oncall, sre sre"),
                ("csrf", &admin_browser.csrf),
            ],
        )
        .await?;
    assert_eq!(saved.status(), StatusCode::OK, "{}", saved.text().await?);
    let stored = portal
        .state()
        .store
        .user_by_username("bob")
        .await?
        .context("bob")?;
    assert_eq!(stored.groups, vec!["payments-oncall", "sre"]);
    let changed: Vec<Value> = portal
        .state()
        .store
        .audit_records(0, 1000)
        .await?
        .into_iter()
        .filter(|r| r.event.kind == "account.groups_changed")
        .map(|r| json!({"actor": r.event.actor, "subject": r.event.subject, "to": r.event.detail["to"]}))
        .collect();
    assert_eq!(
        changed,
        vec![json!({"actor": "ada", "subject": "bob", "to": ["payments-oncall", "sre"]})]
    );
    Ok(())
}

/// Second review, finding 2: handing out groups needs a second person and a fresh proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_2_group_changes_need_another_admin_and_a_fresh_sign_in() -> anyhow::Result<()> {
    let portal = portal().await?;
    let root = portal.user("root", Role::Admin).await?;
    portal.user("bob", Role::Approver).await?;
    let fresh = portal.signed_in(&root).await?;
    async fn set(
        portal: &Portal,
        browser: &Browser,
        username: &str,
    ) -> anyhow::Result<reqwest::Response> {
        portal
            .form(
                "/api/set_groups",
                Some(browser),
                &[
                    ("username", username),
                    ("groups", "oncall-leads release-managers"),
                    ("csrf", &browser.csrf),
                ],
            )
            .await
    }
    // Their own groups: refused, whatever the session's age.
    let own = set(&portal, &fresh, "root").await?;
    assert_eq!(own.status(), StatusCode::BAD_REQUEST);
    assert!(own.text().await?.contains("your own groups"));
    // Someone else's, two hours after signing in: refused until they prove who they are again.
    let stale = portal
        .session_at(
            &root,
            countersign::clock::now() - 7200,
            time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
        )
        .await?;
    let old = set(&portal, &stale, "bob").await?;
    assert_eq!(old.status(), StatusCode::BAD_REQUEST);
    assert!(old.text().await?.contains("fresh sign-in"));
    let store = &portal.state().store;
    for name in ["root", "bob"] {
        let user = store.user_by_username(name).await?.context("user")?;
        assert!(user.groups.is_empty(), "{name} got {:?}", user.groups);
    }
    // Freshly signed in, for someone else: saved, with its record.
    let ok = set(&portal, &fresh, "bob").await?;
    assert_eq!(ok.status(), StatusCode::OK);
    let records = store.audit_records(0, 1000).await?;
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event.kind == "account.groups_changed")
            .count(),
        1
    );
    Ok(())
}

/// Second review, finding 4: live updates are bounded. Streams are capped per person, an event
/// costs one light store read per process whatever the number of open streams, and a stream whose
/// session ended (here: the account was disabled) is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_4_live_updates_are_capped_cheap_and_end_with_the_session() -> anyhow::Result<()> {
    use countersign::portal::events::MAX_STREAMS_PER_PERSON;
    let portal = portal().await?;
    let alice = portal.user("alice", Role::Engineer).await?;
    let ada = portal.user("ada", Role::Admin).await?;
    let erin = portal.user("erin", Role::Engineer).await?;
    let (code, _) = denied_change(&portal).await?;

    // One person: at most MAX_STREAMS_PER_PERSON at once, however many sessions they hold.
    let erin_browser = portal.signed_in(&erin).await?;
    let mut erins = Vec::new();
    for _ in 0..MAX_STREAMS_PER_PERSON {
        let stream = portal.get("/events", Some(&erin_browser)).await?;
        assert_eq!(stream.status(), StatusCode::OK);
        erins.push(stream);
    }
    let other_session = portal.signed_in(&erin).await?;
    let refused = portal.get("/events", Some(&other_session)).await?;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // A stream that ends gives its place back.
    erins.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = portal.get("/events", Some(&other_session)).await?;
    assert_eq!(again.status(), StatusCode::OK);

    // An admin with six open pages: one event, one store read, six deliveries.
    let ada_browser = portal.signed_in(&ada).await?;
    let mut adas = Vec::new();
    for _ in 0..6 {
        adas.push(portal.get("/events", Some(&ada_browser)).await?);
    }
    let metrics = &portal.state().metrics;
    let before = metrics.live_audience_reads();
    let now = countersign::clock::now();
    let requester = countersign::elevation::Actor {
        account: alice.username.clone(),
        groups: Vec::new(),
    };
    portal
        .state()
        .elevation()
        .withdraw(&code, &requester, now)
        .await?;
    for stream in &mut adas {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .context("no event within 5 s")??
            .context("stream ended")?;
        let text = String::from_utf8_lossy(&chunk);
        assert!(text.contains(&code) && text.contains("withdrawn"), "{text}");
    }
    assert_eq!(metrics.live_audience_reads() - before, 1);

    // Disabled: every stream of the account closes within the re-check interval.
    portal.state().store.set_disabled("ada", Some(now)).await?;
    for stream in &mut adas {
        let deadline = countersign::portal::events::SESSION_RECHECK + Duration::from_secs(5);
        let ended = tokio::time::timeout(deadline, async {
            loop {
                match stream.chunk().await {
                    Ok(Some(_)) => continue, // keep-alive comments
                    _ => return,
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "a disabled admin's stream stayed open");
    }
    Ok(())
}

/// Second review, finding 18: an approver is told plainly that a Secret's values are redacted and
/// that approving lets them through unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_18_approvers_are_told_secret_values_are_unseen() -> anyhow::Result<()> {
    let portal = portal().await?;
    let bob = portal.user("bob", Role::Approver).await?;
    portal
        .state()
        .store
        .set_groups("bob", &["payments-oncall".into()])
        .await?;
    let (_, denial) = portal.app.admit(&review("secret-update-ci")?).await?;
    let message = denial["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    let code: String = message
        .split("/c/")
        .nth(1)
        .context("no link")?
        .chars()
        .take(8)
        .collect();
    let now = countersign::clock::now();
    let owner = countersign::elevation::Actor {
        account: "olga".into(),
        groups: Vec::new(),
    };
    portal
        .state()
        .elevation()
        .confirm(
            &code,
            &owner,
            crate::support::evidence("olga", now),
            Some(REASON),
            now,
        )
        .await?;
    let browser = portal.signed_in(&bob).await?;
    let page = portal
        .get(&format!("/approvals/{code}"), Some(&browser))
        .await?
        .text()
        .await?;
    assert!(page.contains("data-redacted-notice"), "no notice");
    assert!(page.contains("unseen"));
    Ok(())
}

/// Issue 15, item 16: admins invite, change roles and disable accounts in the portal (never their
/// own), pending invitations are listed, and people see their own groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_16_admins_manage_accounts_in_the_portal() -> anyhow::Result<()> {
    let portal = portal().await?;
    let ada = portal.user("ada", Role::Admin).await?;
    let bob = portal.user("bob", Role::Engineer).await?;
    let admin = portal.signed_in(&ada).await?;
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let portal = &portal;
        let admin = &admin;
        async move {
            let mut form: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", &admin.csrf));
            let response = portal.form(path, Some(admin), &form).await?;
            let status = response.status();
            // Answers may carry a setup link: no cache keeps them.
            let cache = response.headers().get("cache-control").cloned();
            anyhow::ensure!(
                cache.as_ref().is_some_and(|c| c == "no-store"),
                "{path}: {cache:?}"
            );
            anyhow::Ok((status, response.text().await?))
        }
    };

    // An invitation: a one-time link on the portal's URL, listed until used.
    let (status, body) = post(
        "/api/invite_account",
        vec![
            ("username", "jane@example.com".into()),
            ("role", "approver".into()),
            ("groups", "payments-oncall".into()),
        ],
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&format!("{PUBLIC_URL}/setup/")), "{body}");
    let page = portal
        .get("/admin/users", Some(&admin))
        .await?
        .text()
        .await?;
    assert!(
        page.contains("data-invitation-row=\"jane@example.com\""),
        "not listed"
    );
    // Inviting an existing account, or to no role, is refused in words.
    let (status, body) = post(
        "/api/invite_account",
        vec![
            ("username", "bob".into()),
            ("role", "engineer".into()),
            ("groups", String::new()),
        ],
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("exists already"), "{body}");
    let (status, body) = post(
        "/api/invite_account",
        vec![
            ("username", "zed".into()),
            ("role", "root".into()),
            ("groups", String::new()),
        ],
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("is not a role"), "{body}");

    // A role change, with its record.
    let (status, body) = post(
        "/api/set_account_role",
        vec![("username", "bob".into()), ("role", "approver".into())],
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = &portal.state().store;
    assert_eq!(
        store.user_by_username("bob").await?.context("bob")?.role,
        Role::Approver
    );

    // Never one's own role or account.
    for (path, field, value) in [
        ("/api/set_account_role", "role", "engineer"),
        ("/api/set_account_disabled", "disable", "yes"),
    ] {
        let (status, body) = post(
            path,
            vec![("username", "ada".into()), (field, value.into())],
        )
        .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body.contains("ask another admin"), "{body}");
    }
    assert_eq!(
        store.user_by_username("ada").await?.context("ada")?.role,
        Role::Admin
    );

    // Disabled: bob's session ends and the page says so; enabled again, once.
    let bob_browser = portal.signed_in(&bob).await?;
    let (status, body) = post(
        "/api/set_account_disabled",
        vec![("username", "bob".into()), ("disable", "yes".into())],
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let user = store.user_by_username("bob").await?.context("bob")?;
    assert!(store.disabled_at(&user.user_id).await?.is_some());
    let page = portal
        .get("/admin/users", Some(&admin))
        .await?
        .text()
        .await?;
    assert!(
        page.contains("data-user-row=\"bob\" data-disabled=\"yes\""),
        "not shown disabled"
    );
    let account = portal
        .get("/account", Some(&bob_browser))
        .await?
        .text()
        .await?;
    assert!(
        !account.contains("data-your-access"),
        "a disabled account is signed out"
    );
    let (_, body) = post(
        "/api/set_account_disabled",
        vec![("username", "bob".into()), ("disable", "no".into())],
    )
    .await?;
    assert!(body.contains("enabled again"), "{body}");
    let (_, body) = post(
        "/api/set_account_disabled",
        vec![("username", "bob".into()), ("disable", "no".into())],
    )
    .await?;
    assert!(body.contains("already enabled"), "{body}");

    let kinds: Vec<String> = store
        .audit_records(0, 1000)
        .await?
        .into_iter()
        .map(|r| r.event.kind)
        .filter(|k| k.starts_with("account."))
        .collect();
    assert_eq!(
        kinds,
        [
            "account.invited",
            "account.role_changed",
            "account.disabled",
            "account.enabled"
        ]
    );

    // People see their own role and groups on their account page.
    store.set_groups("bob", &["payments-oncall".into()]).await?;
    let bob_browser = portal.signed_in(&bob).await?;
    let account = portal
        .get("/account", Some(&bob_browser))
        .await?
        .text()
        .await?;
    let mine = account
        .split("data-your-groups")
        .nth(1)
        .context("no groups shown")?;
    assert!(mine.contains("payments-oncall"), "{mine}");
    Ok(())
}

/// Issue 15, item 7: a break glass is marked on the approvers' queue for a day, for the approvers
/// its rule names (and admins), not for others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review2_7_the_queue_marks_break_glass() -> anyhow::Result<()> {
    let portal = portal().await?;
    let store = portal.state().store.clone();
    let bob = portal.user("bob", Role::Approver).await?;
    let zoe = portal.user("zoe", Role::Approver).await?;
    store.set_groups("bob", &["payments-oncall".into()]).await?;
    store.set_groups("zoe", &["storage-oncall".into()]).await?;
    let (code, _) = denied_change(&portal).await?;
    let now = countersign::clock::now();
    let lead = countersign::elevation::Actor {
        account: "alice".into(),
        groups: vec!["oncall-leads".into()],
    };
    portal
        .state()
        .elevation()
        .break_glass(
            &code,
            &lead,
            "payments are down: INC-5000",
            crate::support::evidence("alice", now),
            now,
        )
        .await?;
    let queue = |who: User| {
        let portal = &portal;
        async move {
            let browser = portal.signed_in(&who).await?;
            anyhow::Ok(
                portal
                    .get("/approvals", Some(&browser))
                    .await?
                    .text()
                    .await?,
            )
        }
    };
    let page = queue(bob).await?;
    let item = page
        .split(&format!("data-glass-item=\"{code}\""))
        .nth(1)
        .context("bob's queue does not show the break glass")?;
    assert!(item.contains("payments are down: INC-5000") && item.contains("Break glass"));
    let page = queue(zoe).await?;
    assert!(
        !page.contains("data-glass-item"),
        "zoe's groups are not named"
    );
    Ok(())
}
