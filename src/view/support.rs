//! The support slice: a newest-first page of tickets (open ones flagged), with resolution time
//! and satisfaction across all of the customer's tickets.

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::{TicketPriority, TicketStatus};
use crate::view::cursor::{Cursor, finish_page};
use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub is_open: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub satisfaction: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SupportSlice {
    pub tickets: Vec<Ticket>,
    pub next_cursor: Option<String>,
    pub total: i64,
    /// Open or pending tickets.
    pub open: i64,
    pub average_resolution_hours: Option<f64>,
    pub average_satisfaction: Option<f64>,
    pub rated: i64,
}

const SQL: &str = "SELECT jsonb_build_object(
    'total', count(*), 'open', count(*) FILTER (WHERE status IN ('open', 'pending')),
    'average_resolution_hours', round((avg(extract(epoch FROM resolved_at - created_at)) / 3600)::numeric, 1),
    'average_satisfaction', round(avg(satisfaction)::numeric, 2), 'rated', count(satisfaction),
    'next_cursor', NULL,
    'tickets', (SELECT coalesce(jsonb_agg(t ORDER BY t.created_at DESC, t.id DESC), '[]') FROM
        (SELECT id, subject, status, priority, status IN ('open', 'pending') AS is_open, created_by, created_at,
                resolved_at, satisfaction FROM support_tickets
         WHERE customer_id = $1 AND (created_at, id) < ($2, $3)
         ORDER BY created_at DESC, id DESC LIMIT $4) t)
  ) AS data FROM support_tickets WHERE customer_id = $1";

pub async fn load_page(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    after: &Cursor,
    limit: i64,
) -> QueryResult<SupportSlice> {
    let row = prepared(
        SQL,
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<Timestamptz, _>(after.at),
            bind::<BigInt, _>(after.id),
            bind::<BigInt, _>(limit + 1),
        ],
    )
    .get_result::<JsonRow>(&mut conn)
    .await?;
    let mut slice: SupportSlice = decode(row)?;
    slice.next_cursor = finish_page(&mut slice.tickets, limit, |t| Cursor {
        at: t.created_at,
        kind: String::new(),
        id: t.id,
    });
    Ok(slice)
}
