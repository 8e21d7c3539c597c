//! Exports of one customer for the exporting admin's role: everything the 360 view holds plus
//! every order, ticket, loyalty transaction and readable note, as CSV (`csv`) or a PDF report
//! (`pdf`). The HTTP route audits each export.

pub mod csv;
pub mod pdf;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::db::enums::{NoteVisibility, TicketPriority, TicketStatus};
use crate::db::schema::{customer_notes, loyalty_transactions, support_tickets};
use crate::domain::roles::{Permission, Role};
use crate::view::cursor::Cursor;
use crate::view::orders::OrderSummary;
use crate::view::{self, CustomerView};

/// More orders than any customer has; an export lists them all.
const MAX_EXPORTED_ORDERS: i64 = 1_000_000;

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct TicketLine {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub created_at: DateTime<Utc>,
    pub satisfaction: Option<i16>,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct LedgerLine {
    pub id: i64,
    pub points: i32,
    pub reason: String,
    pub admin_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct NoteLine {
    pub id: i64,
    pub author_name: String,
    pub visibility: NoteVisibility,
    pub pinned: bool,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Who exported, and when.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub at: DateTime<Utc>,
}

/// Everything an export shows, already masked and filtered for the exporter.
pub struct ExportData {
    pub customer_id: i64,
    pub exporter: Exporter,
    pub view: CustomerView,
    pub orders: Vec<OrderSummary>,
    pub tickets: Vec<TicketLine>,
    pub ledger: Vec<LedgerLine>,
    pub notes: Vec<NoteLine>,
}

pub async fn gather(
    conn: &mut AsyncPgConnection,
    customer_id: i64,
    exporter: Exporter,
) -> QueryResult<ExportData> {
    let masking = crate::domain::masking::Masking::for_role(exporter.role);
    let view = view::load(conn, customer_id, masking, exporter.at)
        .await?
        .for_viewer(&exporter.id, exporter.role);
    // Every order, through the orders slice's own loader (one page as large as the history).
    let orders = view::orders::load_page(conn, customer_id, &Cursor::start(), MAX_EXPORTED_ORDERS)
        .await?
        .items;
    let tickets = support_tickets::table
        .filter(support_tickets::customer_id.eq(customer_id))
        .order((
            support_tickets::created_at.desc(),
            support_tickets::id.desc(),
        ))
        .select((
            support_tickets::id,
            support_tickets::subject,
            support_tickets::status,
            support_tickets::priority,
            support_tickets::created_at,
            support_tickets::satisfaction,
        ))
        .load(conn)
        .await?;
    let ledger = loyalty_transactions::table
        .filter(loyalty_transactions::customer_id.eq(customer_id))
        .order((
            loyalty_transactions::created_at.desc(),
            loyalty_transactions::id.desc(),
        ))
        .select((
            loyalty_transactions::id,
            loyalty_transactions::points,
            loyalty_transactions::reason,
            loyalty_transactions::admin_name,
            loyalty_transactions::created_at,
        ))
        .load(conn)
        .await?;
    let mut notes_query = customer_notes::table
        .filter(customer_notes::customer_id.eq(customer_id))
        .into_boxed();
    if !exporter.role.can(Permission::SeeOthersPrivateNotes) {
        notes_query = notes_query.filter(
            customer_notes::visibility
                .eq(NoteVisibility::Public)
                .or(customer_notes::author_id.eq(exporter.id.clone())),
        );
    }
    let notes = notes_query
        .order((customer_notes::created_at.desc(), customer_notes::id.desc()))
        .select((
            customer_notes::id,
            customer_notes::author_name,
            customer_notes::visibility,
            customer_notes::pinned,
            customer_notes::body,
            customer_notes::created_at,
        ))
        .load(conn)
        .await?;
    Ok(ExportData {
        customer_id,
        exporter,
        view,
        orders,
        tickets,
        ledger,
        notes,
    })
}
