//! The users API against a real Postgres: registration, authentication, JWKS, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, by design

mod support;

use contracts::{
    events::{EventEnvelope, UserRegistered},
    users::{AuthenticateRequest, GetJwksRequest, GetUserRequest, RegisterRequest, Role},
};
use prost::Message as _;
use support::{PASSWORD, spawn_app, spawn_app_with};
use tonic::Code;
use users::tokens::{self, PublicJwk};

#[tokio::test]
async fn register_then_authenticate_yields_a_token_that_verifies_against_the_jwks() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let user = app.register("  Ada@Example.com ").await;
    assert_eq!(user.email, "ada@example.com", "the email is normalised");
    assert_eq!(user.display_name, "ada");
    assert_eq!(user.role(), Role::Customer);

    let auth = client
        .authenticate(AuthenticateRequest {
            email: "ADA@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auth.token_type, "Bearer");
    assert_eq!(auth.expires_in_seconds, 15 * 60);

    let jwks = client
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<PublicJwk> = jwks
        .keys
        .into_iter()
        .map(|key| PublicJwk {
            kty: key.kty,
            crv: key.crv,
            x: key.x,
            kid: key.kid,
            alg: key.alg,
            key_use: key.r#use,
        })
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].alg, "EdDSA");
    let claims = tokens::verify(&auth.access_token, &keys, "ferroshop-users", "ferroshop").unwrap();
    assert_eq!(claims.sub, user.id);
    assert_eq!(claims.role, "customer");
    app.stop().await;
}

#[tokio::test]
async fn issuer_audience_and_lifetime_are_configurable() {
    let app = spawn_app_with(&[
        ("USERS_JWT_ISSUER", "https://auth.shop.test"),
        ("USERS_JWT_AUDIENCE", "shop-api"),
        ("USERS_JWT_TTL", "5m"),
    ])
    .await;
    let registered = app.register("root@shop.test").await;
    assert_eq!(
        registered.role(),
        Role::Customer,
        "nobody registers as an admin"
    );
    let granted = users::admin::set_role(&app.db.url, "ROOT@shop.test", users::domain::Role::Admin)
        .await
        .unwrap();
    assert_eq!(granted.id.to_string(), registered.id);
    let auth = app
        .client
        .clone()
        .authenticate(AuthenticateRequest {
            email: "root@shop.test".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auth.expires_in_seconds, 300);
    let jwks = app
        .client
        .clone()
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap();
    let key = &jwks.get_ref().keys[0];
    let keys = [PublicJwk {
        kty: key.kty.clone(),
        crv: key.crv.clone(),
        x: key.x.clone(),
        kid: key.kid.clone(),
        alg: key.alg.clone(),
        key_use: key.r#use.clone(),
    }];
    let claims = tokens::verify(
        &auth.access_token,
        &keys,
        "https://auth.shop.test",
        "shop-api",
    )
    .unwrap();
    assert_eq!(claims.role, "admin");
    assert!(tokens::verify(&auth.access_token, &keys, "ferroshop-users", "ferroshop").is_err());
    app.stop().await;
}

#[tokio::test]
async fn an_operator_creates_an_admin_once_and_promotes_on_every_later_run() {
    use platform::config::Env;
    use users::admin::{self, Command};

    let app = spawn_app().await;
    let env = Env::from_pairs(
        "users",
        &[
            ("USERS_DATABASE_URL", &app.db.url),
            ("USERS_ADMIN_PASSWORD", "operator chosen secret\n"),
        ],
    );
    let config = users::Config::from(&env).unwrap();
    let create = || Command::parse(&["admin".into(), "create".into(), "ops@shop.test".into()]);
    let created = admin::run(&config, &env, create().unwrap()).await.unwrap();
    assert_eq!(created.role, users::domain::Role::Admin);
    let again = admin::run(&config, &env, create().unwrap()).await.unwrap();
    assert_eq!(again.id, created.id, "the second run finds the account");
    let auth = app
        .client
        .clone()
        .authenticate(AuthenticateRequest {
            email: "ops@shop.test".into(),
            password: "operator chosen secret".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(auth.user.unwrap().role(), Role::Admin);
    let revoke = Command::parse(&["admin".into(), "revoke".into(), "ops@shop.test".into()]);
    let revoked = admin::run(&config, &env, revoke.unwrap()).await.unwrap();
    assert_eq!(revoked.role, users::domain::Role::Customer);
    let unknown = Command::parse(&["admin".into(), "grant".into(), "nobody@shop.test".into()]);
    assert!(matches!(
        admin::run(&config, &env, unknown.unwrap()).await,
        Err(admin::AdminError::NoSuchAccount(_))
    ));
    app.stop().await;
}

#[tokio::test]
async fn during_a_rotation_the_jwks_lists_the_previous_key_beside_the_current_one() {
    let previous = tokens::SigningKey::generate_pem().unwrap();
    let previous_kid = tokens::SigningKey::from_pem(&previous)
        .unwrap()
        .kid()
        .to_owned();
    let app = spawn_app_with(&[("USERS_JWT_PREVIOUS_KEYS", &previous)]).await;
    let keys = app
        .client
        .clone()
        .get_jwks(GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0].kid, previous_kid, "the current key signs, first");
    assert_eq!(keys[1].kid, previous_kid);
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_email_is_already_exists_whatever_its_case() {
    let app = spawn_app().await;
    app.register("grace@example.com").await;
    let err = app
        .client
        .clone()
        .register(RegisterRequest {
            email: "GRACE@example.com".into(),
            password: "another long password".into(),
            display_name: "Grace".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(
        app.count("outbox").await,
        1,
        "no event for the refused duplicate"
    );
    app.stop().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|i| {
        let mut client = app.client.clone();
        async move {
            client
                .register(RegisterRequest {
                    email: "race@example.com".into(),
                    password: format!("{PASSWORD} {i}"),
                    display_name: String::new(),
                })
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1);
    for result in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(result.code(), Code::AlreadyExists);
    }
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("outbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("alan@example.com").await;
    let mut client = app.client.clone();
    let wrong_password = client
        .authenticate(AuthenticateRequest {
            email: "alan@example.com".into(),
            password: "not the password at all".into(),
        })
        .await
        .unwrap_err();
    let unknown_email = client
        .authenticate(AuthenticateRequest {
            email: "nobody@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    let malformed_email = client
        .authenticate(AuthenticateRequest {
            email: "not-an-email".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap_err();
    for err in [&wrong_password, &unknown_email, &malformed_email] {
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(err.message(), "invalid email or password");
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_input_is_invalid_argument_naming_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let cases = [
        ("not-an-email", PASSWORD, "", "email"),
        ("", PASSWORD, "", "email"),
        ("ada@example.com", "short", "", "password"),
        ("ada@example.com", "password123", "", "password"),
        ("ada@example.com", PASSWORD, &"n".repeat(81), "display_name"),
    ];
    for (email, password, display_name, field) in cases {
        let err = client
            .register(RegisterRequest {
                email: email.into(),
                password: password.into(),
                display_name: display_name.to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{email} / {field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: got {:?}",
            err.message()
        );
    }
    let err = client
        .get_user(GetUserRequest {
            user_id: "42".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("user_id: "));

    assert_eq!(
        app.count("users").await,
        0,
        "nothing written on a failed register"
    );
    assert_eq!(app.count("outbox").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn get_user_finds_registered_users_only() {
    let app = spawn_app().await;
    let user = app.register("katherine@example.com").await;
    let mut client = app.client.clone();
    let found = client
        .get_user(GetUserRequest {
            user_id: user.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(found, user);
    let err = client
        .get_user(GetUserRequest {
            user_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn registration_records_a_user_registered_event_in_the_outbox() {
    let app = spawn_app().await;
    let user = app.register("dorothy@example.com").await;
    let pool = app.db.pool().await;
    let (routing_key, aggregate_id, event_type, bytes): (String, String, String, Vec<u8>) =
        sqlx::query_as("SELECT routing_key, aggregate_id, event_type, envelope FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(routing_key, "users.user.registered");
    assert_eq!(aggregate_id, user.id);
    assert_eq!(event_type, "shop.events.v1.UserRegistered");
    let envelope = EventEnvelope::decode(bytes.as_slice()).unwrap();
    let event = UserRegistered::decode(envelope.payload.as_slice()).unwrap();
    assert_eq!(event.user_id, user.id);
    assert_eq!(event.email, "dorothy@example.com");
    app.stop().await;
}

#[tokio::test]
async fn the_relay_publishes_user_registered_exactly_as_committed() {
    let app = spawn_app().await;
    let probe = testkit::EventProbe::bind(&app.amqp_url, &app.exchange, "users.#").await;
    let user = app.register("mary@example.com").await;
    let delivery = probe
        .receive(1, std::time::Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(delivery.routing_key.as_str(), "users.user.registered");
    let pool = app.db.pool().await;
    let (committed,): (Vec<u8>,) = sqlx::query_as("SELECT envelope FROM outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(delivery.data, committed);
    let envelope = EventEnvelope::decode(delivery.data.as_slice()).unwrap();
    assert_eq!(
        UserRegistered::decode(envelope.payload.as_slice())
            .unwrap()
            .user_id,
        user.id
    );
    app.stop().await;
}
