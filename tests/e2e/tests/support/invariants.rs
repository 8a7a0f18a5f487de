//! The fault tier's invariants, read from the services' own databases once the system is quiet.
//!
//! The checks are those of docs/architecture.md#invariants, over a whole run rather than one
//! order:
//!
//! * every accepted order (a 201) exists, is CONFIRMED or CANCELLED, and its saga is `done`;
//!   every other order in the database too (a placement whose answer was lost);
//! * one idempotency key, one order: every 201 for a key named the same order, the one the
//!   orders database holds for (customer, key);
//! * per SKU: `sold` = the units of the orders that stayed CONFIRMED, nothing left `reserved`,
//!   `available` = initial − sold, `on_hand` = initial;
//! * every CONFIRMED order has a COMMITTED reservation and exactly one capture, of its total,
//!   and no refund;
//! * every CANCELLED order holds nothing: no live reservation, captures − refunds = 0, and no
//!   authorization left open;
//! * the money balances: all captures − all refunds = the totals of the CONFIRMED orders, and
//!   no payment exists for an order orders does not know;
//! * what orders reports agrees: a CONFIRMED order shows its payment `captured` and its stock
//!   `committed`, one cancelled after its capture shows `refunded` and `restocked`, and the read
//!   model (`order_summaries`, built from events) shows what the write model holds;
//! * nothing is left to deliver: every service's outbox is published.
//!
//! [`settle`] polls until they all hold (the system is quiescent) or a deadline passes, then
//! fails with every violation it still sees, naming the order or SKU. Each check counts once
//! per order or SKU it is evaluated for; the count is printed with the fault's results.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use sqlx::{PgPool, postgres::PgPoolOptions};

use super::{load::LoadReport, system::System};

/// What a settled run came to.
#[derive(Debug)]
pub struct Checked {
    /// Individual checks evaluated in the final, passing round.
    pub invariants: usize,
    pub confirmed: usize,
    pub cancelled: usize,
    /// How long it took to become quiescent.
    pub quiescent_after: Duration,
}

struct Pools {
    orders: PgPool,
    inventory: PgPool,
    payments: PgPool,
}

/// Waits until every invariant holds, at most `deadline`.
///
/// # Panics
/// When some still fail after `deadline`: all of them, one per line.
pub async fn settle(
    system: &System,
    report: &LoadReport,
    initial: &BTreeMap<String, i64>,
    deadline: Duration,
) -> Checked {
    let started = std::time::Instant::now();
    let mut pools = None;
    let last = loop {
        // Connected inside the loop: Postgres is shared with every other test, and a moment
        // without a free connection is not a violation.
        let mut unreachable = None;
        if pools.is_none() {
            match connect(system).await {
                Ok(connected) => pools = Some(connected),
                Err(err) => unreachable = Some(err),
            }
        }
        let round = match (&pools, unreachable) {
            (Some(pools), _) => check(pools, report, initial).await,
            (None, err) => Err(vec![format!(
                "cannot connect to the services' databases: {err:?}"
            )]),
        };
        match round {
            Ok(mut checked) => {
                checked.quiescent_after = started.elapsed();
                if let Some(pools) = pools {
                    for pool in [pools.orders, pools.inventory, pools.payments] {
                        pool.close().await;
                    }
                }
                return checked;
            }
            Err(violations) if started.elapsed() > deadline => break violations,
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    panic!(
        "{} invariant violations after {deadline:?} of waiting for quiescence:\n  {}",
        last.len(),
        last.join("\n  ")
    );
}

/// One connection to each database the invariants read.
async fn connect(system: &System) -> Result<Pools, sqlx::Error> {
    let pool = |name: &str| {
        PgPoolOptions::new()
            .max_connections(1)
            .connect(system.database_url(name))
    };
    Ok(Pools {
        orders: pool("orders").await?,
        inventory: pool("inventory").await?,
        payments: pool("payments").await?,
    })
}

#[derive(Default)]
struct Money {
    captures: Vec<i64>,
    refunded: i64,
    /// The last event of the payment's stream (its state).
    last: String,
}

/// One round of every check: the tally, or every violation.
async fn check(
    pools: &Pools,
    report: &LoadReport,
    initial: &BTreeMap<String, i64>,
) -> Result<Checked, Vec<String>> {
    let mut violations = Vec::new();
    let mut checks = 0_usize;
    let mut expect = |holds: bool, violation: &dyn Fn() -> String| {
        checks += 1;
        if !holds {
            violations.push(violation());
        }
    };

    let orders: Vec<(String, String, String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT o.id::text, o.customer_id::text, o.idempotency_key, o.status, o.total_minor, \
                s.step \
         FROM orders o LEFT JOIN sagas s ON s.order_id = o.id",
    )
    .fetch_all(&pools.orders)
    .await
    .map_err(|err| vec![format!("reading orders: {err}")])?;
    // (status, payment_status, stock_status) in the write model and in the read model.
    type Shown = (String, String, String);
    let reported: HashMap<String, (Shown, Option<Shown>)> = sqlx::query_as::<
        _,
        (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        ),
    >(
        "SELECT o.id::text, o.status, o.payment_status, o.stock_status, \
                    m.status, m.payment_status, m.stock_status \
             FROM orders o LEFT JOIN order_summaries m ON m.order_id = o.id",
    )
    .fetch_all(&pools.orders)
    .await
    .map_err(|err| vec![format!("reading order summaries: {err}")])?
    .into_iter()
    .map(
        |(id, status, payment, stock, m_status, m_payment, m_stock)| {
            let summary = match (m_status, m_payment, m_stock) {
                (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                _ => None,
            };
            (id, ((status, payment, stock), summary))
        },
    )
    .collect();
    let lines: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT order_id::text, sku, quantity FROM order_lines")
            .fetch_all(&pools.orders)
            .await
            .map_err(|err| vec![format!("reading order lines: {err}")])?;
    let stock: Vec<(String, i64, i64, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, available, reserved, sold FROM stock")
            .fetch_all(&pools.inventory)
            .await
            .map_err(|err| vec![format!("reading stock: {err}")])?;
    let reservations: HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT order_id::text, status FROM reservations")
            .fetch_all(&pools.inventory)
            .await
            .map_err(|err| vec![format!("reading reservations: {err}")])?
            .into_iter()
            .collect();
    let events: Vec<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT p.order_id::text, e.kind, e.amount_minor \
         FROM payments p JOIN payment_events e ON e.payment_id = p.id \
         ORDER BY p.order_id, e.seq",
    )
    .fetch_all(&pools.payments)
    .await
    .map_err(|err| vec![format!("reading payments: {err}")])?;
    let mut unpublished = Vec::new();
    for (name, pool) in [
        ("orders", &pools.orders),
        ("inventory", &pools.inventory),
        ("payments", &pools.payments),
    ] {
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(pool)
                .await
                .map_err(|err| vec![format!("reading {name}'s outbox: {err}")])?;
        unpublished.push((name, count));
    }

    let mut money: HashMap<String, Money> = HashMap::new();
    for (order, kind, amount) in events {
        let entry = money.entry(order).or_default();
        match kind.as_str() {
            "captured" => entry.captures.push(amount.unwrap_or(0)),
            "refunded" => entry.refunded += amount.unwrap_or(0),
            _ => {}
        }
        entry.last = kind;
    }
    let by_key: HashMap<(&str, &str), &str> = orders
        .iter()
        .map(|(id, customer, key, ..)| ((customer.as_str(), key.as_str()), id.as_str()))
        .collect();
    let status: HashMap<&str, &str> = orders
        .iter()
        .map(|(id, _, _, status, ..)| (id.as_str(), status.as_str()))
        .collect();

    // Every accepted order exists, and one key is one order.
    for placement in report.accepted() {
        let first = &placement.ids[0];
        expect(placement.ids.iter().all(|id| id == first), &|| {
            format!(
                "key {} of customer {} got different orders: {:?}",
                placement.key, placement.customer_id, placement.ids
            )
        });
        let stored = by_key.get(&(placement.customer_id.as_str(), placement.key.as_str()));
        expect(stored == Some(&first.as_str()), &|| {
            format!(
                "accepted order {first} (key {}) is not the orders database's order for its \
                 key: {stored:?}",
                placement.key
            )
        });
    }

    // Every order is terminal, its saga done, its stock and money as its status says.
    let (mut confirmed_total, mut confirmed, mut cancelled) = (0_i64, 0, 0);
    for (id, _, key, state, total, step) in &orders {
        expect(matches!(state.as_str(), "CONFIRMED" | "CANCELLED"), &|| {
            format!("order {id} (key {key}) is {state}, not terminal")
        });
        expect(step.as_deref() == Some("done"), &|| {
            format!("order {id} (key {key}, {state}): saga at {step:?}, not done")
        });
        let reservation = reservations.get(id).map(String::as_str);
        let paid = money.get(id);
        let captured: i64 = paid.map_or(0, |m| m.captures.iter().sum());
        let refunded = paid.map_or(0, |m| m.refunded);
        let (written, summary) = &reported[id];
        expect(summary.as_ref() == Some(written), &|| {
            format!(
                "order {id} (key {key}): the read model shows {summary:?}, the write model \
                 {written:?}"
            )
        });
        let (_, payment_status, stock_status) = written;
        let shown = (payment_status.as_str(), stock_status.as_str());
        if state == "CONFIRMED" {
            expect(shown == ("captured", "committed"), &|| {
                format!("confirmed order {id} (key {key}) shows payment and stock {shown:?}")
            });
        } else if captured > 0 {
            expect(shown == ("refunded", "restocked"), &|| {
                format!(
                    "order {id} (key {key}) cancelled after its capture shows payment and \
                     stock {shown:?}"
                )
            });
        }
        match state.as_str() {
            "CONFIRMED" => {
                confirmed += 1;
                confirmed_total += total;
                expect(reservation == Some("committed"), &|| {
                    format!("confirmed order {id} (key {key}): reservation {reservation:?}")
                });
                let captures = paid.map(|m| m.captures.clone()).unwrap_or_default();
                expect(captures == [*total], &|| {
                    format!(
                        "confirmed order {id} (key {key}) of {total}: captures {captures:?}, \
                         not exactly one of its total"
                    )
                });
                expect(refunded == 0, &|| {
                    format!("confirmed order {id} (key {key}): refunded {refunded}")
                });
            }
            "CANCELLED" => {
                cancelled += 1;
                expect(
                    !matches!(reservation, Some("reserved" | "committed")),
                    &|| format!("cancelled order {id} (key {key}) holds stock: {reservation:?}"),
                );
                expect(captured - refunded == 0, &|| {
                    format!(
                        "cancelled order {id} (key {key}): captured {captured}, refunded \
                         {refunded}, net charge {}",
                        captured - refunded
                    )
                });
                let last = paid.map(|m| m.last.as_str());
                expect(!matches!(last, Some("authorized" | "captured")), &|| {
                    format!("cancelled order {id} (key {key}): payment left {last:?}")
                });
            }
            _ => {}
        }
    }

    // Per SKU: sold = the units of the orders that stayed confirmed.
    let mut sold_to_confirmed: BTreeMap<&str, i64> = BTreeMap::new();
    for (order, sku, quantity) in &lines {
        if status.get(order.as_str()) == Some(&"CONFIRMED") {
            *sold_to_confirmed.entry(sku.as_str()).or_default() += quantity;
        }
    }
    let stock: HashMap<&str, (i64, i64, i64, i64)> = stock
        .iter()
        .map(|(sku, on_hand, available, reserved, sold)| {
            (sku.as_str(), (*on_hand, *available, *reserved, *sold))
        })
        .collect();
    for (sku, initial) in initial {
        let expected_sold = sold_to_confirmed.get(sku.as_str()).copied().unwrap_or(0);
        let Some(&(on_hand, available, reserved, sold)) = stock.get(sku.as_str()) else {
            expect(false, &|| format!("{sku} has no stock row"));
            continue;
        };
        expect(sold == expected_sold, &|| {
            format!("{sku}: sold {sold}, but confirmed orders hold {expected_sold}")
        });
        expect(reserved == 0, &|| {
            format!("{sku}: {reserved} units left reserved")
        });
        expect(available == initial - sold, &|| {
            format!("{sku}: available {available}, expected {initial} − {sold}")
        });
        expect(on_hand == *initial, &|| {
            format!("{sku}: on hand {on_hand}, expected {initial}")
        });
    }

    // The money balances, and only known orders were charged.
    let charged: i64 = money
        .values()
        .map(|m| m.captures.iter().sum::<i64>() - m.refunded)
        .sum();
    expect(charged == confirmed_total, &|| {
        format!("charged {charged} in all, but confirmed orders total {confirmed_total}")
    });
    for order in money.keys() {
        expect(status.contains_key(order.as_str()), &|| {
            format!("payments holds a payment for order {order}, which orders does not know")
        });
    }
    for (name, count) in unpublished {
        expect(count == 0, &|| {
            format!("{name}'s outbox still holds {count} events")
        });
    }

    if violations.is_empty() {
        Ok(Checked {
            invariants: checks,
            confirmed,
            cancelled,
            quiescent_after: Duration::ZERO,
        })
    } else {
        Err(violations)
    }
}
