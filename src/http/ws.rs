//! `GET /ws`: the live dashboard's WebSocket. The token is checked before the upgrade (as
//! `?token=` or `Sec-WebSocket-Protocol: bearer, <JWT>`); a bad one is a 401 problem+json.

use actix::Addr;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::http::auth::{JwtKeys, bearer_token};
use crate::http::errors::ApiError;
use crate::http::sliced_body::SlicedBody;
use crate::realtime::outgoing::{self, TOO_BIG_LIMIT};
use crate::realtime::registry::HubRegistry;
use crate::realtime::session::DashboardSession;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

#[utoipa::path(get, path = "/ws", tag = "live", params(("token" = Option<String>, Query, description = "JWT, unless sent as Sec-WebSocket-Protocol: bearer, <JWT>")),
    responses((status = 101, description = "WebSocket upgrade; see README (protocol)"),
        (status = 401, body = crate::http::errors::Problem, content_type = "application/problem+json")))]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<WsQuery>,
    state: web::Data<AppState>,
    keys: web::Data<JwtKeys>,
    registry: web::Data<Addr<HubRegistry>>,
) -> Result<HttpResponse, ApiError> {
    let from_protocol = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(','))
        .filter(|(scheme, _)| scheme.trim().eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let token = match (&query.token, &from_protocol) {
        (Some(t), _) => t.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) if !req.headers().contains_key(header::AUTHORIZATION) => {
            return Err(ApiError::unauthorized(
                "missing token: pass ?token=<JWT>, Sec-WebSocket-Protocol: bearer, <JWT>, or an Authorization: Bearer header",
            ));
        }
        (None, None) => bearer_token(&req)?.to_owned(),
    };
    let admin = keys.verify(&token)?;
    // actix-ws's own `Session` is left unused: frames go through `Outgoing` instead.
    let (mut response, _, stream) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request("upgrade", e.to_string()))?;
    if from_protocol.is_some() {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("bearer"),
        );
    }
    let (head, upgrade) = response.into_parts();
    let (out, closer, body) = outgoing::queue(state.ws_queue, upgrade);
    DashboardSession::start(
        admin,
        registry.get_ref().clone(),
        state.pool.clone(),
        (out, closer),
        state.shutdown.clone(),
        // Messages in several frames are joined (RFC 6455, 5.4), up to the same limit as one.
        stream
            .max_frame_size(TOO_BIG_LIMIT)
            .aggregate_continuations()
            .max_continuation_size(TOO_BIG_LIMIT),
    );
    Ok(head.set_body(SlicedBody::new(body)).map_into_boxed_body())
}
