//! Finding 2: a local account could take somebody else's Kubernetes username. Every setup link now
//! fixes the username (an admin's invitation, or the operator's `--first-admin`), `system:` names
//! are nobody's, and the first-admin link is made once per store, never when the identity provider
//! makes admins, and audited.

use anyhow::Context;
use countersign::identity::accounts::{self, AccountError};
use countersign::identity::setup::{first_admin_link, FirstAdmin, Invitation};
use countersign::identity::{Role, User};
use reqwest::StatusCode;
use serde_json::json;

use crate::portal::Portal;
use crate::support::TestDb;

#[tokio::test]
async fn finding_2_the_first_admin_link_fixes_the_username_the_operator_gave() -> anyhow::Result<()>
{
    let portal = Portal::spawn().await?;
    let store = &portal.state().store;
    let token = portal.first_admin_link("root@example.com").await?;
    let browser = portal.page(&format!("/setup/{token}"), None).await?;

    // Whoever opens the link cannot make it Alice's (what OIDC maps Alice to).
    let response = portal
        .json(
            "/auth/setup/start",
            Some(&browser),
            &json!({"token": token, "username": "alice@example.com"}),
        )
        .await?;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await?
        .contains("this invitation is for root@example.com"));
    assert!(store.user_by_username("alice@example.com").await?.is_none());

    // Without a username the link's own is used.
    let (_, response) = portal
        .setup_with_key(&browser, &json!({"token": token}))
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let root = store
        .user_by_username("root@example.com")
        .await?
        .context("no account")?;
    assert_eq!(root.role, Role::Admin);
    Ok(())
}

#[tokio::test]
async fn finding_2_system_names_are_refused_for_every_setup_link() -> anyhow::Result<()> {
    let db = TestDb::sqlite().await?;
    let store = db.store.as_ref();
    for name in [
        "system:serviceaccount:ci:deployer",
        "system:kube-controller-manager",
        "system:node:n1",
    ] {
        let invited = accounts::invite(
            store,
            &Invitation {
                role: Role::Engineer,
                username: name.into(),
                groups: Vec::new(),
            },
            "it-admin",
        )
        .await;
        assert!(
            matches!(invited, Err(AccountError::BadUsername(..))),
            "{name}: {invited:?}"
        );
        let first = first_admin_link(store, Some(name), false).await;
        assert!(
            matches!(first, Err(AccountError::BadUsername(..))),
            "{name}: {first:?}"
        );
    }
    let map = countersign::identity::mapping::IdentityMap::parse(
        "apiVersion: countersign.dev/v1alpha1\nkind: IdentityMap\nspec:\n  people:\n    - account: alice\n      kubernetesUsernames: ['system:masters-admin']\n",
        "ids.yaml",
    );
    assert!(map.is_err(), "an alias may not be a system: name");
    Ok(())
}

#[tokio::test]
async fn finding_2_the_first_admin_link_is_made_once_per_store_and_audited() -> anyhow::Result<()> {
    for db in [Some(TestDb::sqlite().await?), TestDb::postgres().await?]
        .into_iter()
        .flatten()
    {
        let store = db.store.as_ref();
        let b = db.backend;
        // No username from the operator: no link that lets the opener choose one.
        assert_eq!(
            first_admin_link(store, None, false).await?,
            FirstAdmin::NoUsername,
            "{b}"
        );
        // The identity provider makes admins: no local first admin at all.
        assert_eq!(
            first_admin_link(store, Some("root"), true).await?,
            FirstAdmin::ByIdentityProvider,
            "{b}"
        );
        let FirstAdmin::Made(token) = first_admin_link(store, Some("root"), false).await? else {
            anyhow::bail!("{b}: no link made");
        };
        let hash = countersign::identity::setup::token_hash(&token);
        let invitation = store
            .invitation(&hash, countersign::clock::now())
            .await?
            .context("link not stored")?;
        assert_eq!(invitation, Invitation::first_admin("root"), "{b}");
        // The next start (nothing used it yet) does not mint another one.
        assert_eq!(
            first_admin_link(store, Some("root"), false).await?,
            FirstAdmin::MadeBefore,
            "{b}"
        );
        assert_eq!(
            first_admin_link(store, Some("someone-else"), false).await?,
            FirstAdmin::MadeBefore,
            "{b}"
        );
        let minted: Vec<_> = store
            .audit_records(0, 1000)
            .await?
            .into_iter()
            .filter(|r| r.event.kind == "account.first_admin_link")
            .collect();
        assert_eq!(minted.len(), 1, "{b}: each mint is audited, once");
        assert_eq!(minted[0].event.subject, "root", "{b}");
        // Once accounts exist nothing is needed.
        store
            .create_user(&User {
                user_id: uuid::Uuid::new_v4().to_string(),
                username: "root".into(),
                display_name: "Root".into(),
                role: Role::Admin,
                created_at: countersign::clock::now(),
                groups: Vec::new(),
            })
            .await?;
        assert_eq!(
            first_admin_link(store, Some("root"), false).await?,
            FirstAdmin::NotNeeded,
            "{b}"
        );
        // Invitations are audited too, with the username they fix.
        accounts::invite(
            store,
            &Invitation {
                role: Role::Admin,
                username: "second-admin".into(),
                groups: Vec::new(),
            },
            "it-admin",
        )
        .await?;
        let invited = store
            .audit_records(0, 1000)
            .await?
            .into_iter()
            .rfind(|r| r.event.kind == "account.invited")
            .context("invitation not audited")?;
        assert_eq!(invited.event.subject, "second-admin", "{b}");
    }
    Ok(())
}
