//! Reading request input so that every mistake names itself: the `ApiJson` body extractor
//! (1 MiB limit, 413; syntax 400; wrong types, missing fields and unknown enum values 422 with
//! the field's path), and the error handlers for path and query parameters.

use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::http::errors::{ApiError, ErrorKind};

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body parsed with errors that name the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

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

/// Parses JSON, naming the failing field: 400 for malformed JSON, 422 for a well-formed
/// document of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(shape_error)?;
    de.end()
        .map_err(|e| ApiError::bad_request("body", format!("invalid JSON: {e}")))?;
    Ok(value)
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

pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    let PathError::Deserialize(e) = &err else {
        return ApiError::bad_request("path", err.to_string()).into();
    };
    ApiError::bad_request("path", format!("invalid path parameter: {e}")).into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::validation("query", format!("invalid query parameters: {err}")).into()
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
}
