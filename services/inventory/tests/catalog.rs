//! The catalog API against a real Postgres (and Redis): products, stock adjustments, listing,
//! validation, the demo seed, and the events every write records.

mod support;

use std::{collections::HashSet, sync::Arc};

use contracts::{events::ProductUpdated, inventory::UpsertProductRequest};
use support::{eur, spawn_app, spawn_app_on, spawn_app_with};
use tonic::Code;

fn upsert(
    sku: &str,
    name: &str,
    description: &str,
    cents: i64,
    active: bool,
) -> UpsertProductRequest {
    UpsertProductRequest {
        sku: sku.to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        price: eur(cents),
        active,
    }
}

#[tokio::test]
async fn upsert_creates_a_product_with_an_empty_stock_row_and_get_returns_it() {
    let app = spawn_app().await;
    let created = app
        .upsert(upsert(
            "MUG-CERAMIC-350",
            "  Ceramic Mug ",
            "Stoneware.",
            1290,
            true,
        ))
        .await
        .unwrap();
    assert_eq!(created.sku, "MUG-CERAMIC-350");
    assert_eq!(created.name, "Ceramic Mug", "the name is trimmed");
    assert_eq!(created.price, eur(1290));
    assert!(created.active);
    assert_eq!(created.available, 0);
    assert!(created.updated_at.is_some());

    let stock = app.stock("MUG-CERAMIC-350").await;
    assert_eq!(
        (stock.on_hand, stock.available, stock.reserved, stock.sold),
        (0, 0, 0, 0)
    );
    assert_eq!(app.get("MUG-CERAMIC-350").await.unwrap(), created);
    app.stop().await;
}

#[tokio::test]
async fn upsert_replaces_a_product_keeps_its_stock_and_records_product_updated() {
    let app = spawn_app().await;
    app.product("TEE-M", "T-Shirt", 2900, 5).await;
    let updated = app
        .upsert(upsert(
            "TEE-M",
            "Organic T-Shirt",
            "Now organic.",
            3100,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(updated.name, "Organic T-Shirt");
    assert_eq!(updated.price, eur(3100));
    assert!(!updated.active);
    assert_eq!(updated.available, 5, "stock survives an upsert");
    assert_eq!(app.count("products").await, 1);

    // create, stock adjustment, update: one ProductUpdated each, with the current stock.
    let events: Vec<ProductUpdated> = app.events("inventory.product.updated").await;
    let seen: Vec<(&str, bool, i64)> = events
        .iter()
        .map(|e| (e.name.as_str(), e.active, e.available))
        .collect();
    assert_eq!(
        seen,
        [
            ("T-Shirt", true, 0),
            ("T-Shirt", true, 5),
            ("Organic T-Shirt", false, 5)
        ]
    );
    assert!(events.iter().all(|e| e.sku == "TEE-M"));
    assert_eq!(events[2].price, eur(3100));
    let outbox = app.outbox().await;
    assert!(
        outbox
            .iter()
            .all(|(key, id)| key == "inventory.product.updated" && id == "TEE-M")
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_skus_are_not_found_and_malformed_ones_invalid() {
    let app = spawn_app().await;
    let err = app.get("NO-SUCH-SKU").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "product NO-SUCH-SKU not found");
    let err = app.get("mug").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("sku: "), "{}", err.message());
    let err = app.adjust("NO-SUCH-SKU", 3).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn upsert_validation_errors_name_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let long_description = "d".repeat(2001);
    let no_price = UpsertProductRequest {
        price: None,
        ..upsert("MUG-1", "Mug", "", 100, true)
    };
    let mut bad_currency = upsert("MUG-1", "Mug", "", 100, true);
    bad_currency.price.as_mut().unwrap().currency = "eur".into();
    let cases = [
        (upsert("", "Mug", "", 100, true), "sku"),
        (upsert("mug-1", "Mug", "", 100, true), "sku"),
        (upsert("MU", "Mug", "", 100, true), "sku"),
        (upsert("MUG_1", "Mug", "", 100, true), "sku"),
        (upsert("MUG-1", " ", "", 100, true), "name"),
        (upsert("MUG-1", &"n".repeat(201), "", 100, true), "name"),
        (
            upsert("MUG-1", "Mug", &long_description, 100, true),
            "description",
        ),
        (no_price, "price"),
        (upsert("MUG-1", "Mug", "", -1, true), "price.amount_minor"),
        (bad_currency, "price.currency"),
    ];
    for (request, field) in cases {
        let err = app.upsert(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{field}: got {:?}",
            err.message()
        );
    }
    assert_eq!(app.count("products").await, 0);
    assert_eq!(app.count("outbox").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn adjust_stock_moves_on_hand_and_available_together_and_never_below_zero() {
    let app = spawn_app().await;
    app.product("CAP-1", "Cap", 3400, 0).await;
    let level = app.adjust("CAP-1", 10).await.unwrap();
    assert_eq!(
        (level.on_hand, level.available, level.reserved, level.sold),
        (10, 10, 0, 0)
    );
    let level = app.adjust("CAP-1", -4).await.unwrap();
    assert_eq!((level.on_hand, level.available), (6, 6));

    let err = app.adjust("CAP-1", -7).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "CAP-1 has 6 units available; cannot write off 7"
    );
    let stock = app.stock("CAP-1").await;
    assert_eq!(
        (stock.on_hand, stock.available),
        (6, 6),
        "a refused write-off changes nothing"
    );

    // Reserved units cannot be written off either: only `available` can go.
    let order = uuid::Uuid::now_v7();
    app.reserve(order, &[("CAP-1", 5)]).await.unwrap();
    let err = app.adjust("CAP-1", -2).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let level = app.adjust("CAP-1", -1).await.unwrap();
    assert_eq!((level.on_hand, level.available, level.reserved), (5, 0, 5));
    app.stock("CAP-1").await.assert_conserved();

    let (audit,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM stock_adjustments WHERE sku = 'CAP-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit, 3, "every accepted adjustment is in the audit trail");
    app.stop().await;
}

#[tokio::test]
async fn adjust_stock_validation_errors_name_the_field() {
    let app = spawn_app().await;
    app.product("CAP-1", "Cap", 3400, 1).await;
    let mut client = app.client();
    for (sku, delta, reason, field) in [
        ("cap", 1, "delivery", "sku"),
        ("CAP-1", 0, "delivery", "delta"),
        ("CAP-1", 2_000_000, "delivery", "delta"),
        ("CAP-1", 1, "  ", "reason"),
    ] {
        let err = client
            .adjust_stock(contracts::inventory::AdjustStockRequest {
                sku: sku.into(),
                delta,
                reason: reason.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(&format!("{field}: ")),
            "{}",
            err.message()
        );
    }
    assert_eq!(app.stock("CAP-1").await.on_hand, 1);
    app.stop().await;
}

#[tokio::test]
async fn list_products_walks_every_page_once_in_sku_order_and_hides_inactive_products() {
    let app = spawn_app().await;
    let mut active = Vec::new();
    for i in 0..23 {
        let sku = format!("SKU-{i:03}");
        app.product(&sku, &format!("Product {i}"), 100 + i, 0).await;
        active.push(sku);
    }
    for sku in ["SKU-A-HIDDEN", "SKU-005-OLD"] {
        app.upsert(upsert(sku, "Hidden", "", 100, false))
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = app.list(5, &token, "").await.unwrap();
        pages += 1;
        assert!(page.products.len() <= 5);
        seen.extend(page.products.into_iter().map(|p| p.sku));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, active, "every active product once, in SKU order");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());
    app.stop().await;
}

#[tokio::test]
async fn page_sizes_default_to_20_and_are_clamped_to_100() {
    let app = spawn_app().await;
    sqlx::query(
        "INSERT INTO products (sku, name, price_minor, currency)
         SELECT 'BULK-' || lpad(n::text, 3, '0'), 'Bulk item ' || n, 100, 'EUR'
         FROM generate_series(1, 105) AS n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO stock (sku) SELECT sku FROM products")
        .execute(&app.pool)
        .await
        .unwrap();

    let page = app.list(0, "", "").await.unwrap();
    assert_eq!(page.products.len(), 20, "0 means the default");
    let page = app.list(1000, "", "").await.unwrap();
    assert_eq!(page.products.len(), 100, "clamped, not refused");
    let rest = app.list(1000, &page.next_page_token, "").await.unwrap();
    assert_eq!(rest.products.len(), 5);
    assert!(rest.next_page_token.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_text_filter_is_case_insensitive_and_treats_wildcards_literally() {
    let app = spawn_app().await;
    for (sku, name, description) in [
        ("MUG-1", "Ceramic MUG", "Holds 350 ml."),
        ("MUG-2", "Enamel camp mug", "50% lighter than ceramic."),
        ("TEE-1", "T-shirt", "Soft_cotton, mugshot print."),
        (
            "TEE-2",
            "Tank top",
            "Softxcotton blend, 50 percent recycled.",
        ),
    ] {
        app.upsert(upsert(sku, name, description, 100, true))
            .await
            .unwrap();
    }
    let skus = |response: contracts::inventory::ListProductsResponse| -> Vec<String> {
        response.products.into_iter().map(|p| p.sku).collect()
    };
    assert_eq!(
        skus(app.list(0, "", "mug").await.unwrap()),
        ["MUG-1", "MUG-2", "TEE-1"]
    );
    assert_eq!(
        skus(app.list(0, "", "  CERAMIC ").await.unwrap()),
        ["MUG-1", "MUG-2"]
    );
    assert_eq!(
        skus(app.list(0, "", "50%").await.unwrap()),
        ["MUG-2"],
        "% is literal"
    );
    assert_eq!(
        skus(app.list(0, "", "soft_cotton").await.unwrap()),
        ["TEE-1"],
        "_ is literal"
    );
    assert!(skus(app.list(0, "", "%").await.unwrap()) == ["MUG-2"]);
    assert!(
        app.list(0, "", "nothing like it")
            .await
            .unwrap()
            .products
            .is_empty()
    );

    // Filtered pages paginate too.
    let first = app.list(2, "", "mug").await.unwrap();
    assert_eq!(skus(first.clone()), ["MUG-1", "MUG-2"]);
    let second = app.list(2, &first.next_page_token, "mug").await.unwrap();
    assert_eq!(skus(second.clone()), ["TEE-1"]);
    assert!(second.next_page_token.is_empty());

    let err = app.list(0, "", &"q".repeat(101)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("query: "));
    app.stop().await;
}

#[tokio::test]
async fn a_forged_page_token_is_invalid_argument() {
    let app = spawn_app().await;
    for token in ["not-base64!", "bW9vIG1vbw"] {
        let err = app.list(0, token, "").await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{token}");
        assert!(
            err.message().starts_with("page_token: "),
            "{}",
            err.message()
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn the_demo_catalog_seeds_an_empty_database_once_even_with_two_replicas() {
    let db = Arc::new(testkit::fresh_database().await);
    let seed = [("INVENTORY_SEED_DEMO", "true")];
    let (first, second) = tokio::join!(
        spawn_app_on(db.clone(), &seed),
        spawn_app_on(db.clone(), &seed)
    );
    let expected = i64::try_from(inventory::seed::DEMO_CATALOG.len()).unwrap();
    assert!(expected >= 20);
    assert_eq!(first.count("products").await, expected);
    assert_eq!(
        first.count("outbox").await,
        expected,
        "one ProductUpdated per product"
    );
    first.stop().await;
    second.stop().await;

    // A restart seeds nothing more.
    let restarted = spawn_app_on(db, &seed).await;
    assert_eq!(restarted.count("products").await, expected);
    assert_eq!(restarted.count("outbox").await, expected);
    let mug = restarted.get("MUG-CERAMIC-350").await.unwrap();
    assert_eq!(mug.price, eur(1290));
    assert_eq!(mug.available, 120);
    restarted.stock("MUG-CERAMIC-350").await.assert_conserved();
    let mut listed = 0;
    let mut token = String::new();
    loop {
        let page = restarted.list(10, &token, "").await.unwrap();
        listed += page.products.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed, inventory::seed::DEMO_CATALOG.len());
    restarted.stop().await;
}

#[tokio::test]
async fn the_demo_catalog_leaves_an_existing_catalog_alone() {
    let app = spawn_app().await;
    app.product("MINE-1", "My own product", 500, 1).await;
    let db = app.db.clone();
    app.stop().await;
    let seeded = spawn_app_on(db, &[("INVENTORY_SEED_DEMO", "true")]).await;
    assert_eq!(seeded.count("products").await, 1);
    seeded.stop().await;

    let off = spawn_app_with(&[("INVENTORY_SEED_DEMO", "false")]).await;
    assert_eq!(off.count("products").await, 0, "seeding is opt-in");
    off.stop().await;
}
