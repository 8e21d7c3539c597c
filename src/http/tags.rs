//! `/api/admin/tags`: the tag catalogue admins pick from when tagging customers.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::db::search::Label;
use crate::db::tags::{self, NewTag, Tag, TagWithUsage};
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::errors::{ApiError, Problem};
use crate::http::input::Body;
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateTag {
    /// 1–64 characters after trimming, not a number (a search's `tag` reads one as an id);
    /// unique ignoring case.
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
}

impl CreateTag {
    fn validate(&self) -> Result<(&str, &str), ApiError> {
        let name = self.name.trim();
        let length = name.chars().count();
        if !(1..=64).contains(&length) {
            return Err(ApiError::validation(
                "name",
                format!("name must be 1 to 64 characters, got {length}"),
            ));
        }
        if let Label::Id(_) = Label::parse(name) {
            return Err(ApiError::validation(
                "name",
                format!(
                    "name must not be a number ('{name}'): a search's tag filter reads a number as a tag id"
                ),
            ));
        }
        let color = self.color.trim();
        let is_hex = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !is_hex {
            return Err(ApiError::validation(
                "color",
                format!("color must look like #3b82f6, got '{color}'"),
            ));
        }
        Ok((name, color))
    }
}

#[utoipa::path(get, path = "/api/admin/tags", operation_id = "list_tags", tag = "tags", security(("bearer" = [])), responses(
    (status = 200, body = Vec<TagWithUsage>),
    (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(admin: AuthAdmin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(tags::list_with_usage(&mut conn).await?))
}

#[utoipa::path(post, path = "/api/admin/tags", operation_id = "create_tag", tag = "tags", security(("bearer" = [])),
    request_body = CreateTag, responses(
    (status = 201, body = Tag),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 409, description = "A tag with that name exists", body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    body: Body<CreateTag>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::CreateTags)?;
    let body = body?.0;
    let (name, color) = body.validate()?;
    let mut conn = state.pool.get().await?;
    let new = NewTag {
        name,
        color,
        created_by: &admin.id,
    };
    match tags::create(&mut conn, &new).await {
        Ok(tag) => Ok(HttpResponse::Created().json(tag)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(ApiError::conflict(format!(
            "a tag named '{name}' already exists (names ignore case)"
        ))
        .with("field", "name")),
        Err(e) => Err(e.into()),
    }
}
