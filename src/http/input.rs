//! Reading request input so that every mistake names itself: the `ApiJson` body extractor
//! (1 MiB limit, 413; syntax 400; wrong types, missing fields and unknown enum values 422 with
//! the field's path), and the error handlers for path and query parameters. Text holding the
//! NUL character is refused in bodies and query parameters alike (422 naming the field):
//! PostgreSQL cannot store it, and would otherwise fail the request with a 500.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::http::auth::AuthAdmin;
use crate::http::errors::{ApiError, ErrorKind};

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body parsed with errors that name the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// How a handler that checks a permission takes its body: the outcome of reading it, to be
/// `?`-ed after the check, so that a role without the permission hears 403 and not a
/// complaint about a body it may not send at all.
pub type Body<T> = Result<ApiJson<T>, ApiError>;

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<ApiJson<T>, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    ErrorKind::UnsupportedMediaType,
                    "expected a JSON body with Content-Type: application/json",
                ));
            }
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorKind::PayloadTooLarge,
                        format!("the request body exceeds {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ApiError::bad_request("body", format!("cannot read the request body: {e}"))
                }
            })?;
            parse_json(&bytes).map(ApiJson)
        })
    }
}

/// Parses JSON, naming the failing field: 400 for malformed JSON; 422 for a NUL character in
/// a string, a wrong shape, or a document that is not an object (every body of this API is
/// one).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let document: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("body", format!("invalid JSON: {e}")))?;
    if let Some(field) = nul_in(&document) {
        return Err(refuse_nul(if field.is_empty() { "body" } else { &field }));
    }
    if !document.is_object() {
        return Err(ApiError::validation(
            "body",
            "the body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(document).map_err(shape_error)
}

/// Where the first string of `value` that holds a NUL character is, as a path from `value`
/// (`notes[2].body`; empty for `value` itself).
fn nul_in(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let under = |step: String, inner: String| match inner.as_str() {
        "" => step,
        _ if inner.starts_with('[') => format!("{step}{inner}"),
        _ => format!("{step}.{inner}"),
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(String::new()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item).map(|inner| under(format!("[{i}]"), inner))),
        Value::Object(fields) => fields
            .iter()
            .find_map(|(name, item)| nul_in(item).map(|inner| under(name.clone(), inner))),
        _ => None,
    }
}

fn refuse_nul(field: &str) -> ApiError {
    let field = field.replace('\0', "\\u0000");
    ApiError::validation(
        &field,
        format!("{field} must not contain the NUL character (\\u0000)"),
    )
}

/// Refuses a request whose query parameters (name or value) hold a NUL character, naming the
/// parameter; a request without a valid token is told that first (401), as everywhere else.
pub async fn reject_nul_in_query(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let parameters = web::Query::<Vec<(String, String)>>::from_query(req.query_string());
    if let Ok(parameters) = parameters
        && let Some((name, _)) = parameters
            .iter()
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        req.extract::<AuthAdmin>().await?;
        return Err(refuse_nul(name).into());
    }
    next.call(req).await
}

fn shape_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.classify() != Category::Data {
        return ApiError::bad_request("body", format!("invalid JSON: {inner}"));
    }
    let message = inner.to_string();
    // serde reports a missing field at its parent's path; name the field itself.
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(missing) if path == "." => missing.to_owned(),
        Some(missing) => format!("{path}.{missing}"),
        None if path == "." => "body".to_owned(),
        None => path,
    };
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned();
    ApiError::validation(&field, format!("{field}: {message}"))
}

/// Every path parameter of this API is an id (a 64-bit integer): the first segment that is
/// not one is named.
pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    let PathError::Deserialize(e) = &err else {
        return ApiError::bad_request("path", err.to_string()).into();
    };
    match req
        .match_info()
        .iter()
        .find(|(_, value)| value.parse::<i64>().is_err())
    {
        Some((name, value)) => {
            ApiError::bad_request(name, format!("{name} must be an integer id, got '{value}'"))
                .into()
        }
        None => ApiError::bad_request("path", format!("invalid path parameter: {e}")).into(),
    }
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    query_problem(err).into()
}

/// The complaint about query parameters that do not fit, for a handler that parses them itself
/// after its permission check.
pub fn query_problem(err: QueryPayloadError) -> ApiError {
    ApiError::validation("query", format!("invalid query parameters: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Visibility {
        Public,
        Private,
    }

    #[derive(Debug, Deserialize)]
    struct Note {
        body: String,
        visibility: Visibility,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    struct Inner {
        points: i32,
    }

    fn field_of(e: &ApiError) -> (ErrorKind, String) {
        let resp = e.error_response();
        let bytes =
            actix_web::body::MessageBody::try_into_bytes(resp.into_body()).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (e.kind(), v["field"].as_str().unwrap_or_default().to_owned())
    }

    #[test]
    fn names_fields() {
        let e = parse_json::<Note>(br#"{"visibility":"public"}"#).unwrap_err();
        assert_eq!(field_of(&e), (ErrorKind::Validation, "body".into()));
        let e = parse_json::<Note>(br#"{"body":"x","visibility":"secret"}"#).unwrap_err();
        assert_eq!(field_of(&e), (ErrorKind::Validation, "visibility".into()));
        assert!(e.detail().contains("unknown variant"), "{}", e.detail());
        let e =
            parse_json::<Note>(br#"{"body":"x","visibility":"public","inner":{"points":"many"}}"#)
                .unwrap_err();
        assert_eq!(field_of(&e), (ErrorKind::Validation, "inner.points".into()));
        let e = parse_json::<Note>(br#"{"body": "x", "#).unwrap_err();
        assert_eq!(field_of(&e), (ErrorKind::BadRequest, "body".into()));
        let e = parse_json::<Note>(br#"{"body":"x","visibility":"public"} trailing"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadRequest);
        let ok = parse_json::<Note>(br#"{"body":"x","visibility":"private","unknown":1}"#).unwrap();
        assert!(matches!(ok.visibility, Visibility::Private));
        assert_eq!(ok.body, "x");
        assert!(ok.inner.is_none());
        let ok = parse_json::<Note>(br#"{"body":"y","visibility":"public","inner":{"points":-3}}"#)
            .unwrap();
        assert!(matches!(ok.visibility, Visibility::Public));
        assert_eq!(ok.inner.map(|i| i.points), Some(-3));
    }

    #[test]
    fn refuses_the_nul_character_naming_where_it_is() {
        for (json, field) in [
            (r#"{"body":"a\u0000b","visibility":"public"}"#, "body"),
            (
                r#"{"body":"x","tags":[{"name":"ok"},{"name":"\u0000"}]}"#,
                "tags[1].name",
            ),
            (r#"{"a":[["\u0000"]]}"#, "a[0][0]"),
            (r#""\u0000""#, "body"),
        ] {
            let e = parse_json::<serde_json::Value>(json.as_bytes()).unwrap_err();
            assert_eq!(
                field_of(&e),
                (ErrorKind::Validation, field.into()),
                "{json}"
            );
            assert!(e.detail().contains("NUL"), "{}", e.detail());
        }
        let e = parse_json::<Note>(b"[]").unwrap_err();
        assert_eq!(field_of(&e), (ErrorKind::Validation, "body".into()));
        assert!(e.detail().contains("JSON object"), "{}", e.detail());
        // An escaped backslash before `u0000` is text, not a NUL.
        let ok = parse_json::<Note>(br#"{"body":"\\u0000","visibility":"public"}"#).unwrap();
        assert_eq!(ok.body, "\\u0000");
    }
}
