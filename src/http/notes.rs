//! `/api/admin/customers/{id}/notes`: notes admins leave on a customer. The author is always
//! the caller (never read from the body); private notes are read by their author and by roles
//! allowed to read others' private notes.

use actix_web::{HttpResponse, web};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use crate::db::enums::NoteVisibility;
use crate::db::schema::customer_notes;
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::customers::{PageParams, ensure_customer};
use crate::http::errors::{ApiError, Problem};
use crate::http::input::Body;
use crate::startup::AppState;
use crate::view::cursor::{Cursor, finish_page};
use crate::view::notes::Note;

pub const MAX_NOTE_CHARS: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewNote {
    /// 1–10,000 characters.
    pub body: String,
    #[serde(default = "public")]
    pub visibility: NoteVisibility,
    #[serde(default)]
    pub pinned: bool,
}

fn public() -> NoteVisibility {
    NoteVisibility::Public
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotesPage {
    pub items: Vec<Note>,
    pub next_cursor: Option<String>,
}

/// The notes this admin may read, as a filter.
fn readable_by(
    admin: &AuthAdmin,
) -> Box<
    dyn BoxableExpression<customer_notes::table, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>,
> {
    if admin.role.can(Permission::SeeOthersPrivateNotes) {
        Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("true"))
    } else {
        Box::new(
            customer_notes::visibility
                .eq(NoteVisibility::Public)
                .or(customer_notes::author_id.eq(admin.id.clone())),
        )
    }
}

#[utoipa::path(get, path = "/api/admin/customers/{id}/notes", operation_id = "list_notes", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), PageParams),
    responses((status = 200, body = NotesPage), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let (after, limit) = q.parse()?;
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    ensure_customer(&conn, id).await?;
    let mut items: Vec<Note> = customer_notes::table
        .filter(customer_notes::customer_id.eq(id))
        .filter(readable_by(&admin))
        .filter(
            customer_notes::created_at
                .lt(after.at)
                .or(customer_notes::created_at
                    .eq(after.at)
                    .and(customer_notes::id.lt(after.id))),
        )
        .order((customer_notes::created_at.desc(), customer_notes::id.desc()))
        .limit(limit + 1)
        .select(Note::as_select())
        .load(&mut conn)
        .await?;
    let next_cursor = finish_page(&mut items, limit, |n| Cursor {
        at: n.created_at,
        kind: String::new(),
        id: n.id,
    });
    Ok(HttpResponse::Ok().json(NotesPage { items, next_cursor }))
}

#[utoipa::path(post, path = "/api/admin/customers/{id}/notes", operation_id = "create_note", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id")), request_body = NewNote,
    responses((status = 201, body = Note), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: Body<NewNote>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::WriteNotes)?;
    let new = body?.0;
    let chars = new.body.chars().count();
    if new.body.trim().is_empty() {
        return Err(ApiError::validation(
            "body",
            "body must hold text, not only white space",
        ));
    }
    if chars > MAX_NOTE_CHARS {
        return Err(ApiError::validation(
            "body",
            format!("body must be 1 to {MAX_NOTE_CHARS} characters, got {chars}"),
        ));
    }
    let id = id.into_inner();
    let mut conn = state.pool.get().await?;
    ensure_customer(&conn, id).await?;
    let note: Note = diesel::insert_into(customer_notes::table)
        .values((
            customer_notes::customer_id.eq(id),
            customer_notes::author_id.eq(&admin.id),
            customer_notes::author_name.eq(&admin.name),
            customer_notes::body.eq(&new.body),
            customer_notes::visibility.eq(new.visibility),
            customer_notes::pinned.eq(new.pinned),
        ))
        .returning(Note::as_returning())
        .get_result(&mut conn)
        .await?;
    Ok(HttpResponse::Created().json(note))
}

async fn set_pinned(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    pinned: bool,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::WriteNotes)?;
    let (customer_id, note_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let note: Option<Note> = diesel::update(
        customer_notes::table
            .filter(customer_notes::id.eq(note_id))
            .filter(customer_notes::customer_id.eq(customer_id))
            .filter(readable_by(&admin)),
    )
    .set((
        customer_notes::pinned.eq(pinned),
        customer_notes::updated_at.eq(Utc::now()),
    ))
    .returning(Note::as_returning())
    .get_result(&mut conn)
    .await
    .optional()?;
    match note {
        Some(note) => Ok(HttpResponse::Ok().json(note)),
        None => Err(ApiError::not_found(format!(
            "customer {customer_id} has no note {note_id} you may read"
        ))),
    }
}

#[utoipa::path(post, path = "/api/admin/customers/{id}/notes/{note_id}/pin", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), ("note_id" = i64, Path, description = "Note id")),
    responses((status = 200, body = Note), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn pin(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    set_pinned(admin, state, path, true).await
}

#[utoipa::path(post, path = "/api/admin/customers/{id}/notes/{note_id}/unpin", tag = "collaboration", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Customer id"), ("note_id" = i64, Path, description = "Note id")),
    responses((status = 200, body = Note), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn unpin(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    set_pinned(admin, state, path, false).await
}
