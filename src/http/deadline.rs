//! The longest an admin request may take (`--request-timeout-ms`). PostgreSQL enforces the
//! statement timeout itself, and the pool bounds the wait for a connection, but a PostgreSQL
//! that stops answering without closing its connections (hung, or its host paused) would hold
//! every request on them for as long as TCP keeps the connection: such a request is answered
//! 503 instead. The abandoned query's connection goes back to the pool, whose recycling
//! discards one left inside a transaction.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::http::errors::{ApiError, ErrorKind};
use crate::startup::AppState;

pub async fn within_deadline(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(deadline) = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.request_timeout)
    else {
        return next.call(req).await;
    };
    match tokio::time::timeout(deadline, next.call(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("http_request_deadline_exceeded_total").increment(1);
            Err(ApiError::new(
                ErrorKind::Unavailable,
                format!(
                    "no answer within {} ms: PostgreSQL is not answering, retry shortly",
                    deadline.as_millis()
                ),
            )
            .with("dependency", "postgres")
            .into())
        }
    }
}
