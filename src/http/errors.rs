//! The one error type of the HTTP layer, and the only place that knows status codes.
//!
//! When to use what:
//! - inside `domain/` there is no I/O and no HTTP: functions return their own small error
//!   enums (or `Result<_, String>` for a message meant for the user);
//! - everything a handler calls returns `Result<_, ApiError>`; `?` converts diesel, pool and
//!   Redis errors (`From` impls below): diesel's `NotFound` becomes 404, an unavailable pool,
//!   connection or Redis becomes 503, anything unexpected 500 with the cause logged, never shown;
//! - bad input is `ApiError::bad_request` (malformed) or `ApiError::validation` (well-formed but
//!   wrong), always naming the field.
//!
//! Every error leaves as `application/problem+json`: `type`, `title`, `status`, `detail`, `code`,
//! plus `field`, `permission` or `checks` where they apply.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::roles::{Permission, Role};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Validation,
    Unavailable,
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable `code` of the problem document.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Validation => "validation_failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "Bad request",
            ErrorKind::Unauthorized => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotFound => "Not found",
            ErrorKind::MethodNotAllowed => "Method not allowed",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::PayloadTooLarge => "Payload too large",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::Validation => "Validation failed",
            ErrorKind::Unavailable => "Service unavailable",
            ErrorKind::Internal => "Internal server error",
        }
    }
}

/// A failed request: what kind of failure, what to tell the caller, and (for logs only) why.
pub struct ApiError {
    kind: ErrorKind,
    detail: String,
    extensions: Map<String, Value>,
    cause: Option<anyhow::Error>,
}

/// The problem+json document, also used to describe errors in the OpenAPI document.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// bad_request, unauthorized, forbidden, not_found, method_not_allowed, conflict,
    /// payload_too_large, unsupported_media_type, validation_failed, unavailable, internal
    pub code: String,
    /// The offending field or parameter, for 400 and 422.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The missing permission, for 403.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            detail: detail.into(),
            extensions: Map::new(),
            cause: None,
        }
    }

    pub fn bad_request(field: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, detail).with("field", field)
    }

    pub fn validation(field: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Validation, detail).with("field", field)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unauthorized, detail)
    }

    pub fn forbidden(role: Role, permission: Permission) -> ApiError {
        ApiError::new(
            ErrorKind::Forbidden,
            format!("role '{role}' lacks the permission '{permission}'"),
        )
        .with("permission", permission.as_str())
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, detail)
    }

    /// The path exists, with other methods: `allow` lists them (also as the `Allow` header).
    pub fn method_not_allowed(method: &str, path: &str, allow: &[String]) -> ApiError {
        ApiError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{path} does not take {method}; it takes {}",
                allow.join(", ")
            ),
        )
        .with("allow", allow.to_vec())
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Conflict, detail)
    }

    /// A dependency (`postgres`, `redis`) cannot serve the request right now.
    pub fn unavailable(dependency: &str, cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("{dependency} is unavailable, retry shortly"),
        )
        .with("dependency", dependency)
        .caused_by(cause)
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> ApiError {
        ApiError::new(ErrorKind::Internal, "an unexpected error occurred").caused_by(cause)
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn caused_by(mut self, cause: impl Into<anyhow::Error>) -> ApiError {
        self.cause = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)?;
        if let Some(cause) = &self.cause {
            write!(f, " (cause: {cause:#})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        match (&self.cause, self.kind) {
            (Some(cause), ErrorKind::Internal) => tracing::error!(error = ?cause, "request failed"),
            (Some(cause), ErrorKind::Unavailable) => {
                tracing::warn!(error = %format!("{cause:#}"), "dependency unavailable")
            }
            _ => {}
        }
        let status = self.kind.status();
        let mut body = Map::new();
        body.insert("type".into(), "about:blank".into());
        body.insert("title".into(), self.kind.title().into());
        body.insert("status".into(), status.as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        body.insert("code".into(), self.kind.code().into());
        body.extend(self.extensions.clone());
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self.kind {
            ErrorKind::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ErrorKind::Unavailable => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            ErrorKind::MethodNotAllowed => {
                let allow: Vec<&str> = self
                    .extensions
                    .get("allow")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if let Ok(allow) = HeaderValue::from_str(&allow.join(", ")) {
                    response.insert_header((header::ALLOW, allow));
                }
            }
            _ => {}
        }
        response.body(Value::Object(body).to_string())
    }
}

impl From<DieselError> for ApiError {
    fn from(e: DieselError) -> ApiError {
        match e {
            DieselError::NotFound => ApiError::not_found("no such record"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                ApiError::conflict(format!(
                    "already exists ({})",
                    info.constraint_name().unwrap_or("unique")
                ))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                ApiError::unavailable("postgres", e)
            }
            // statement_timeout (57014) and an admin shutdown (57P01..) are capacity problems.
            DieselError::DatabaseError(_, ref info)
                if info.message().contains("statement timeout") =>
            {
                ApiError::unavailable("postgres", e)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> ApiError {
        ApiError::unavailable("postgres", e)
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> ApiError {
        ApiError::unavailable("redis", e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: &ApiError) -> Value {
        let bytes = e
            .error_response()
            .into_body()
            .try_into_bytes()
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    #[test]
    fn problem_shape_is_pinned() {
        let e = ApiError::validation("body", "body must be 1 to 10000 characters");
        assert_eq!(e.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            body_of(&e),
            serde_json::json!({
                "type": "about:blank", "title": "Validation failed", "status": 422,
                "detail": "body must be 1 to 10000 characters", "code": "validation_failed",
                "field": "body"
            })
        );
        let resp = e.error_response();
        assert_eq!(
            resp.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
    }

    #[test]
    fn forbidden_names_the_permission() {
        let e = ApiError::forbidden(Role::Analyst, Permission::CreateTags);
        let body = body_of(&e);
        assert_eq!(body["status"], 403);
        assert_eq!(body["permission"], "create_tags");
        assert!(body["detail"].as_str().unwrap_or("").contains("analyst"));
    }

    #[test]
    fn diesel_errors_map_to_statuses() {
        assert_eq!(
            ApiError::from(DieselError::NotFound).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            ApiError::from(DieselError::RollbackTransaction).kind(),
            ErrorKind::Internal
        );
        let redis_down =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = ApiError::from(redis_down);
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_of(&e)["dependency"], "redis");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = ApiError::internal(anyhow::anyhow!("password=hunter2 leaked"));
        assert!(!body_of(&e).to_string().contains("hunter2"));
    }
}
