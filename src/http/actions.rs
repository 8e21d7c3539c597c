//! Quick actions, `POST /api/admin/customers/{id}/actions/email|ticket|loyalty-adjustment`.
//! Each runs in one transaction with its audit row; with an `Idempotency-Key` header the key is
//! claimed in the same transaction (a unique row per admin and key), so a retried request
//! returns the first response and never applies twice, even when both arrive at once.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::enums::{ConsentChannel, LoyaltyTier, TicketPriority};
use crate::db::schema::{
    audit_log, customers, email_outbox, idempotency_keys, loyalty_accounts, loyalty_transactions,
    marketing_consents, support_tickets,
};
use crate::domain::loyalty::tier_for_lifetime_points;
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::customers::ensure_customer;
use crate::http::errors::{ApiError, Problem};
use crate::http::input::Body;
use crate::startup::AppState;

/// Header that makes a POST action safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EmailAction {
    /// 1–300 characters.
    pub subject: String,
    /// 1–50,000 characters.
    pub body: String,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct TicketAction {
    /// 1–300 characters.
    pub subject: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "normal")]
    pub priority: TicketPriority,
}

fn normal() -> TicketPriority {
    TicketPriority::Normal
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct LoyaltyAdjustment {
    /// Signed, not zero, at most 1,000,000 either way.
    pub points: i32,
    /// 1–500 characters.
    pub reason: String,
}

/// Serialised as the action's own body, for [`request_hash`].
#[derive(Serialize)]
#[serde(untagged)]
enum Action {
    Email(EmailAction),
    Ticket(TicketAction),
    Loyalty(LoyaltyAdjustment),
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Email(_) => "email",
            Action::Ticket(_) => "ticket",
            Action::Loyalty(_) => "loyalty-adjustment",
        }
    }

    /// What the request said, for the audit row and the idempotency check.
    fn details(&self) -> Value {
        match self {
            Action::Email(e) => json!({"subject": e.subject, "body_chars": e.body.chars().count()}),
            Action::Ticket(t) => json!({"subject": t.subject, "priority": t.priority}),
            Action::Loyalty(l) => json!({"points": l.points, "reason": l.reason}),
        }
    }

    fn validate(&self) -> Result<(), ApiError> {
        let length = |field: &str, value: &str, max: usize| {
            let n = value.trim().chars().count();
            if n == 0 || n > max {
                Err(ApiError::validation(
                    field,
                    format!("{field} must be 1 to {max} characters, got {n}"),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Action::Email(e) => {
                length("subject", &e.subject, 300).and(length("body", &e.body, 50_000))
            }
            Action::Ticket(t) => {
                length("subject", &t.subject, 300).and(if t.description.chars().count() > 50_000 {
                    Err(ApiError::validation(
                        "description",
                        "description must be at most 50000 characters",
                    ))
                } else {
                    Ok(())
                })
            }
            Action::Loyalty(l) => {
                if l.points == 0 || l.points.unsigned_abs() > 1_000_000 {
                    return Err(ApiError::validation(
                        "points",
                        format!(
                            "points must be non-zero and at most 1000000 either way, got {}",
                            l.points
                        ),
                    ));
                }
                length("reason", &l.reason, 500)
            }
        }
    }
}

/// Names a request for its Idempotency-Key: the customer, the action and the action as parsed,
/// so unknown fields (which are ignored) and formatting do not make a retry another request.
/// SHA-256, because the names are stored and must read the same across releases.
fn request_hash(customer_id: i64, action: &Action) -> Result<String, ApiError> {
    use sha2::Digest;
    let parsed = serde_json::to_string(action).map_err(ApiError::internal)?;
    let named =
        sha2::Sha256::digest(format!("{customer_id}|{}|{parsed}", action.name()).as_bytes());
    Ok(crate::view::cursor::hex(&named))
}

async fn perform(
    conn: &mut AsyncPgConnection,
    admin: &AuthAdmin,
    customer_id: i64,
    action: &Action,
) -> Result<(StatusCode, Value), ApiError> {
    match action {
        Action::Email(e) => {
            let opted_in: Option<bool> = marketing_consents::table
                .filter(marketing_consents::customer_id.eq(customer_id))
                .filter(marketing_consents::channel.eq(ConsentChannel::Email))
                .select(marketing_consents::opted_in)
                .first(conn)
                .await
                .optional()?;
            if opted_in != Some(true) {
                return Err(ApiError::validation(
                    "consent",
                    format!("customer {customer_id} has not opted in to email"),
                ));
            }
            let to: String = customers::table
                .find(customer_id)
                .select(customers::email)
                .first(conn)
                .await?;
            let (id, status): (i64, crate::db::enums::EmailStatus) =
                diesel::insert_into(email_outbox::table)
                    .values((
                        email_outbox::customer_id.eq(customer_id),
                        email_outbox::to_email.eq(&to),
                        email_outbox::subject.eq(e.subject.trim()),
                        email_outbox::body.eq(&e.body),
                        email_outbox::queued_by.eq(&admin.id),
                    ))
                    .returning((email_outbox::id, email_outbox::status))
                    .get_result(conn)
                    .await?;
            Ok((
                StatusCode::ACCEPTED,
                json!({"email_id": id, "status": status, "to": admin.masking().email(&to)}),
            ))
        }
        Action::Ticket(t) => {
            let id: i64 = diesel::insert_into(support_tickets::table)
                .values((
                    support_tickets::customer_id.eq(customer_id),
                    support_tickets::subject.eq(t.subject.trim()),
                    support_tickets::description.eq(&t.description),
                    support_tickets::priority.eq(t.priority),
                    support_tickets::created_by.eq(&admin.id),
                ))
                .returning(support_tickets::id)
                .get_result(conn)
                .await?;
            Ok((
                StatusCode::CREATED,
                json!({"ticket_id": id, "status": "open", "priority": t.priority}),
            ))
        }
        Action::Loyalty(l) => {
            let account: Option<(i64, i64)> = loyalty_accounts::table
                .find(customer_id)
                .select((loyalty_accounts::balance, loyalty_accounts::lifetime_points))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some((balance, lifetime)) = account else {
                return Err(ApiError::validation(
                    "points",
                    format!("customer {customer_id} is not in the loyalty programme"),
                ));
            };
            let points = i64::from(l.points);
            let new_balance = balance + points;
            if new_balance < 0 {
                return Err(ApiError::validation(
                    "points",
                    format!(
                        "the balance is {balance}: taking {} would make it negative",
                        -points
                    ),
                ));
            }
            let new_lifetime = lifetime + points.max(0);
            let tier: LoyaltyTier = tier_for_lifetime_points(new_lifetime);
            let tx_id: i64 = diesel::insert_into(loyalty_transactions::table)
                .values((
                    loyalty_transactions::customer_id.eq(customer_id),
                    loyalty_transactions::points.eq(l.points),
                    loyalty_transactions::reason.eq(l.reason.trim()),
                    loyalty_transactions::expires_at
                        .eq((points > 0).then(|| Utc::now() + Duration::days(365))),
                    loyalty_transactions::admin_id.eq(&admin.id),
                    loyalty_transactions::admin_name.eq(&admin.name),
                ))
                .returning(loyalty_transactions::id)
                .get_result(conn)
                .await?;
            diesel::update(loyalty_accounts::table.find(customer_id))
                .set((
                    loyalty_accounts::balance.eq(new_balance),
                    loyalty_accounts::lifetime_points.eq(new_lifetime),
                    loyalty_accounts::tier.eq(tier),
                    loyalty_accounts::updated_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await?;
            Ok((
                StatusCode::CREATED,
                json!({"transaction_id": tx_id, "points": l.points, "balance": new_balance, "lifetime_points": new_lifetime, "tier": tier}),
            ))
        }
    }
}

async fn run(
    req: HttpRequest,
    admin: AuthAdmin,
    state: web::Data<AppState>,
    customer_id: i64,
    action: Action,
) -> Result<HttpResponse, ApiError> {
    action.validate()?;
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 200 => Some(k.to_owned()),
            _ => {
                return Err(ApiError::bad_request(
                    IDEMPOTENCY_KEY,
                    "Idempotency-Key must be 1 to 200 visible characters",
                ));
            }
        },
    };
    let hash = request_hash(customer_id, &action)?;
    let mut conn = state.pool.get().await?;
    let (code, body, replayed) = (*conn)
        .transaction(
            async |conn: &mut AsyncPgConnection| -> Result<(StatusCode, Value, bool), ApiError> {
                if let Some(key) = &key {
                    // Claims the key, or waits for a concurrent holder to commit and then finds its row.
                    let claimed = diesel::insert_into(idempotency_keys::table)
                        .values((
                            idempotency_keys::actor_id.eq(&admin.id),
                            idempotency_keys::key.eq(key),
                            idempotency_keys::request_hash.eq(&hash),
                            idempotency_keys::response_code.eq(0i16),
                            idempotency_keys::response_body.eq(Value::Null),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    if claimed == 0 {
                        let (stored_hash, code, body): (String, i16, Value) =
                            idempotency_keys::table
                                .find((&admin.id, key))
                                .select((
                                    idempotency_keys::request_hash,
                                    idempotency_keys::response_code,
                                    idempotency_keys::response_body,
                                ))
                                .first(conn)
                                .await?;
                        if stored_hash != hash {
                            return Err(ApiError::validation(
                                IDEMPOTENCY_KEY,
                                "this Idempotency-Key was used for a different request",
                            ));
                        }
                        let code = StatusCode::from_u16(code as u16).map_err(ApiError::internal)?;
                        return Ok((code, body, true));
                    }
                }
                ensure_customer(conn, customer_id).await?;
                let (code, body) = perform(conn, &admin, customer_id, &action).await?;
                diesel::insert_into(audit_log::table)
                    .values((
                        audit_log::actor_id.eq(&admin.id),
                        audit_log::actor_name.eq(&admin.name),
                        audit_log::actor_role.eq(admin.role.as_str()),
                        audit_log::action.eq(format!("action.{}", action.name())),
                        audit_log::customer_id.eq(customer_id),
                        audit_log::details.eq(json!({"request": action.details(), "result": body})),
                    ))
                    .execute(conn)
                    .await?;
                if let Some(key) = &key {
                    diesel::update(idempotency_keys::table.find((&admin.id, key)))
                        .set((
                            idempotency_keys::response_code.eq(code.as_u16() as i16),
                            idempotency_keys::response_body.eq(&body),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok((code, body, false))
            },
        )
        .await?;
    let mut response = HttpResponse::build(code);
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(body))
}

macro_rules! action_route {
    ($fn:ident, $path:literal, $body:ty, $variant:ident, $permission:ident, $ok:literal) => {
        #[utoipa::path(post, path = $path, tag = "actions", security(("bearer" = [])),
            params(("id" = i64, Path, description = "Customer id"),
                ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the first response is returned again")),
            request_body = $body,
            responses((status = $ok, description = "Done (or replayed)"),
                (status = 403, body = Problem, content_type = "application/problem+json"),
                (status = 404, body = Problem, content_type = "application/problem+json"),
                (status = 422, body = Problem, content_type = "application/problem+json")))]
        pub async fn $fn(
            req: HttpRequest,
            admin: AuthAdmin,
            state: web::Data<AppState>,
            id: web::Path<i64>,
            body: Body<$body>,
        ) -> Result<HttpResponse, ApiError> {
            admin.require(Permission::$permission)?;
            let action = Action::$variant(body?.0);
            run(req, admin, state, id.into_inner(), action).await
        }
    };
}

action_route!(
    email,
    "/api/admin/customers/{id}/actions/email",
    EmailAction,
    Email,
    SendEmail,
    202
);
action_route!(
    ticket,
    "/api/admin/customers/{id}/actions/ticket",
    TicketAction,
    Ticket,
    CreateTicket,
    201
);
action_route!(
    loyalty_adjustment,
    "/api/admin/customers/{id}/actions/loyalty-adjustment",
    LoyaltyAdjustment,
    Loyalty,
    AdjustLoyalty,
    201
);
