//! The orders slice: a newest-first page of orders with status counts and totals.

use std::collections::BTreeMap;

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::OrderStatus;
use crate::view::cursor::{Cursor, finish_page};
use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderSummary {
    pub id: i64,
    pub order_number: String,
    pub status: OrderStatus,
    pub total_cents: i64,
    pub currency: String,
    pub channel: String,
    pub placed_at: DateTime<Utc>,
    pub item_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrdersSlice {
    pub items: Vec<OrderSummary>,
    pub next_cursor: Option<String>,
    /// Every status, zero included.
    pub status_counts: BTreeMap<OrderStatus, i64>,
    pub total_count: i64,
    /// Sum of paid, shipped and delivered orders.
    pub revenue_cents: i64,
}

const SQL: &str = "SELECT jsonb_build_object(
    'status_counts', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM
        (SELECT status, count(*) AS n FROM orders WHERE customer_id = $1 GROUP BY status) s),
    'total_count', (SELECT count(*) FROM orders WHERE customer_id = $1),
    'revenue_cents', (SELECT coalesce(sum(total_cents), 0) FROM orders
        WHERE customer_id = $1 AND status IN ('paid', 'shipped', 'delivered')),
    'next_cursor', NULL,
    'items', (SELECT coalesce(jsonb_agg(o ORDER BY o.placed_at DESC, o.id DESC), '[]') FROM
        (SELECT o.id, o.order_number, o.status, o.total_cents, o.currency, o.channel, o.placed_at,
                (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) AS item_count
         FROM orders o
         WHERE o.customer_id = $1 AND (o.placed_at, $3::text, o.id) < ($2, $3, $4)
         ORDER BY o.placed_at DESC, o.id DESC LIMIT $5) o)) AS data";

pub async fn load_page(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    after: &Cursor,
    limit: i64,
) -> QueryResult<OrdersSlice> {
    let row = prepared(
        SQL,
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<Timestamptz, _>(after.at),
            bind::<Text, _>(""),
            bind::<BigInt, _>(after.id),
            bind::<BigInt, _>(limit + 1),
        ],
    )
    .get_result::<JsonRow>(&mut conn)
    .await?;
    let mut slice: OrdersSlice = decode(row)?;
    for status in OrderStatus::ALL {
        slice.status_counts.entry(*status).or_insert(0);
    }
    slice.next_cursor = finish_page(&mut slice.items, limit, |o| Cursor {
        at: o.placed_at,
        kind: String::new(),
        id: o.id,
    });
    Ok(slice)
}
