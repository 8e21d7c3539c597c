//! Admin authentication: HS256 JWTs with the claims `sub`, `name` and `role`, the `AuthAdmin`
//! extractor that every `/api/admin` handler takes, and its `require(Permission)` guard.

use std::future::{Ready, ready};

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::Utc;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind as JwtErrorKind,
};
use serde::{Deserialize, Serialize};

use crate::domain::masking::Masking;
use crate::domain::roles::{Permission, Role};
use crate::http::errors::ApiError;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;

/// What a token says. `sub`, `name`, `role` and `exp` are required; `iat` is written by
/// `customer360 token` but not needed, and a token with `nbf` is refused before that time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    pub exp: i64,
}

/// The signing and checking keys, built once from the configured secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &str) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        JwtKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn issue(
        &self,
        id: &str,
        name: &str,
        role: Role,
        ttl: chrono::Duration,
    ) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: id.to_owned(),
            name: name.to_owned(),
            role,
            iat: Some(now),
            exp: now + ttl.num_seconds(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<AuthAdmin, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                ApiError::unauthorized(match e.kind() {
                    JwtErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    JwtErrorKind::ImmatureSignature => {
                        "the token is not valid yet (its nbf is in the future)".to_owned()
                    }
                    JwtErrorKind::InvalidSignature => {
                        "the token's signature is not valid".to_owned()
                    }
                    JwtErrorKind::Json(_) | JwtErrorKind::MissingRequiredClaim(_) => {
                        format!(
                            "the token's claims are not valid ({e}); expected sub, name, role, exp"
                        )
                    }
                    _ => format!("the token is malformed ({e})"),
                })
            })?;
        let claims = data.claims;
        let identity = [&claims.sub, &claims.name];
        if identity.iter().any(|c| c.trim().is_empty()) {
            return Err(ApiError::unauthorized(
                "the token's sub and name must not be empty",
            ));
        }
        // Both are written into notes, audit rows and presence: PostgreSQL text cannot hold
        // U+0000, so such a token could read but every write would fail.
        if identity.iter().any(|c| c.contains('\0')) {
            return Err(ApiError::unauthorized(
                "the token's sub and name must not contain U+0000 (NUL)",
            ));
        }
        Ok(AuthAdmin {
            id: claims.sub,
            name: claims.name,
            role: claims.role,
            expires_at: claims.exp,
        })
    }
}

/// The authenticated admin behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthAdmin {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The token's `exp` (Unix seconds): a WebSocket outliving it is closed.
    pub expires_at: i64,
}

impl AuthAdmin {
    /// Whether the token has expired by `now` (Unix seconds), with the leeway `verify` allows.
    pub fn expired(&self, now: i64) -> bool {
        now > self.expires_at.saturating_add(LEEWAY_SECS as i64)
    }

    /// How long after `now_ms` (Unix milliseconds) [`expired`](Self::expired) turns true.
    pub fn valid_for(&self, now_ms: i64) -> std::time::Duration {
        let expired_from_ms = self
            .expires_at
            .saturating_add(LEEWAY_SECS as i64 + 1)
            .saturating_mul(1000);
        std::time::Duration::from_millis(
            u64::try_from(expired_from_ms.saturating_sub(now_ms)).unwrap_or(0),
        )
    }

    /// 403 naming the permission unless the admin's role has it.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role.can(permission) {
            Ok(())
        } else {
            Err(ApiError::forbidden(self.role, permission))
        }
    }

    pub fn masking(&self) -> Masking {
        Masking::for_role(self.role)
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing Authorization header (expected 'Bearer <JWT>')")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be 'Bearer <JWT>'",
        )),
    }
}

impl FromRequest for AuthAdmin {
    type Error = ApiError;
    type Future = Ready<Result<AuthAdmin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<JwtKeys>>() {
            Some(keys) => bearer_token(req).and_then(|token| keys.verify(token)),
            None => Err(ApiError::internal(anyhow::anyhow!(
                "JwtKeys missing from app data"
            ))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn issued_tokens_verify() {
        let keys = JwtKeys::new("s3cret");
        let token = keys
            .issue("ann", "Ann", Role::Support, chrono::Duration::hours(1))
            .unwrap();
        assert_eq!(
            keys.verify(&token).unwrap(),
            AuthAdmin {
                id: "ann".into(),
                name: "Ann".into(),
                role: Role::Support,
                expires_at: Utc::now().timestamp() + 3600,
            }
        );
    }

    #[test]
    fn wrong_secret_and_expiry_are_rejected() {
        let keys = JwtKeys::new("s3cret");
        let other = JwtKeys::new("other")
            .issue("a", "A", Role::Admin, chrono::Duration::hours(1))
            .unwrap();
        assert!(
            keys.verify(&other)
                .unwrap_err()
                .detail()
                .contains("signature")
        );
        let expired = keys
            .issue("a", "A", Role::Admin, chrono::Duration::minutes(-5))
            .unwrap();
        assert!(
            keys.verify(&expired)
                .unwrap_err()
                .detail()
                .contains("expired")
        );
        assert!(keys.verify("not.a.jwt").is_err());
    }

    #[test]
    fn iat_is_optional_and_nbf_is_honoured() {
        let keys = JwtKeys::new("s3cret");
        let now = Utc::now().timestamp();
        let sign = |claims: serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        let without_iat = sign(serde_json::json!(
            {"sub": "a", "name": "A", "role": "analyst", "exp": now + 60}
        ));
        assert_eq!(keys.verify(&without_iat).unwrap().role, Role::Analyst);
        let early = sign(serde_json::json!(
            {"sub": "a", "name": "A", "role": "analyst", "exp": now + 7200, "nbf": now + 3600}
        ));
        assert!(
            keys.verify(&early)
                .unwrap_err()
                .detail()
                .contains("not valid yet")
        );
        let started = sign(serde_json::json!(
            {"sub": "a", "name": "A", "role": "admin", "exp": now + 60, "nbf": now - 60}
        ));
        assert_eq!(keys.verify(&started).unwrap().role, Role::Admin);
    }

    #[test]
    fn empty_or_nul_identities_are_refused() {
        let keys = JwtKeys::new("s3cret");
        for (id, name, why) in [
            ("x\0", "X", "U+0000"),
            ("x", "X\0Y", "U+0000"),
            (" ", "X", "empty"),
            ("x", "", "empty"),
        ] {
            let token = keys
                .issue(id, name, Role::Admin, chrono::Duration::hours(1))
                .unwrap();
            let refused = keys.verify(&token).unwrap_err();
            assert_eq!(refused.kind(), crate::http::errors::ErrorKind::Unauthorized);
            assert!(
                refused.detail().contains(why),
                "{id:?} {name:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn require_checks_the_table() {
        let analyst = AuthAdmin {
            id: "x".into(),
            name: "X".into(),
            role: Role::Analyst,
            expires_at: 0,
        };
        assert!(!analyst.expired(LEEWAY_SECS as i64), "within the leeway");
        assert!(analyst.expired(LEEWAY_SECS as i64 + 1));
        assert!(analyst.require(Permission::Export).is_ok());
        let err = analyst.require(Permission::CreateTags).unwrap_err();
        assert!(err.detail().contains("create_tags"));
    }

    #[test]
    fn valid_for_ends_where_expired_begins() {
        let admin = |expires_at| AuthAdmin {
            id: "x".into(),
            name: "X".into(),
            role: Role::Admin,
            expires_at,
        };
        let exp = 1_700_000_000;
        let token = admin(exp);
        let first_expired_ms = (exp + LEEWAY_SECS as i64 + 1) * 1000;
        assert_eq!(
            token.valid_for(first_expired_ms - 1),
            Duration::from_millis(1)
        );
        assert!(!token.expired((first_expired_ms - 1) / 1000));
        assert_eq!(token.valid_for(first_expired_ms), Duration::ZERO);
        assert!(token.expired(first_expired_ms / 1000));
        assert_eq!(token.valid_for(first_expired_ms + 60_000), Duration::ZERO);
        assert_eq!(
            admin(i64::MAX).valid_for(0),
            Duration::from_millis(i64::MAX as u64)
        );
        assert_eq!(admin(i64::MIN).valid_for(0), Duration::ZERO);
        assert_eq!(admin(-10).valid_for(-3_000), Duration::ZERO);
        assert_eq!(admin(-10).valid_for(-20_000), Duration::from_millis(16_000));
    }
}
