//! `GET /api/admin/customers/search`: free text and filters over every customer, masked per
//! role; the text matches email and phone only for roles shown them unmasked. Bad parameters
//! (min above max, unknown tier, malformed dates or numbers, a cursor of another search) are a
//! 422 naming the parameter.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool::managed::Timeouts;
use diesel_async::AsyncPgConnection;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

use crate::db::enums::LoyaltyTier;
use crate::db::search::{self, After, Breadth, Filter, Label, LabelKind, Sort};
use crate::domain::roles::Permission;
use crate::http::auth::AuthAdmin;
use crate::http::customers::parse_instant;
use crate::http::errors::{ApiError, Problem};
use crate::startup::AppState;
use crate::view::cursor::{self, hex, hex_decode, hex_encode, unhex};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchParams {
    /// Name (partial) or order number (exact); for roles that see PII unmasked (admin,
    /// support) also email (partial) and phone (digits, any formatting).
    pub q: Option<String>,
    /// Segment id or name (case-insensitive); one that does not exist is a 422.
    pub segment: Option<String>,
    /// bronze, silver, gold or platinum.
    pub tier: Option<String>,
    /// Tag id or name (case-insensitive); one that does not exist is a 422.
    pub tag: Option<String>,
    pub signup_from: Option<String>,
    pub signup_to: Option<String>,
    pub last_order_from: Option<String>,
    pub last_order_to: Option<String>,
    /// Lifetime value bounds, in cents.
    pub clv_min: Option<String>,
    pub clv_max: Option<String>,
    pub orders_min: Option<String>,
    pub orders_max: Option<String>,
    /// relevance (default with q), lifetime_value, last_order, name (default without q).
    pub sort: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub lifetime_value_cents: i64,
    pub order_count: i64,
    pub last_order_at: Option<DateTime<Utc>>,
    pub tier: Option<String>,
    /// 0–1; how well `q` matched.
    pub score: f64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// How many customers match over all pages, as counted for the first page (later pages,
    /// asked for with `next_cursor`, repeat it).
    pub total: i64,
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}

fn int(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.trim().parse::<i64>().map_err(|_| {
                ApiError::validation(field, format!("{field} must be an integer, got '{s}'"))
            })
        })
        .transpose()
}

fn instant(field: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.as_deref()
        .map(|s| parse_instant(field, s.trim()))
        .transpose()
}

fn label(v: &Option<String>) -> Option<Label> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Label::parse)
}

fn ordered<T: PartialOrd + std::fmt::Display>(
    min_field: &str,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), ApiError> {
    match (min, max) {
        (Some(lo), Some(hi)) if lo > hi => Err(ApiError::validation(
            min_field,
            format!("{min_field} ({lo}) is above its maximum ({hi})"),
        )),
        _ => Ok(()),
    }
}

/// The key that signs search cursors, derived from the JWT secret, so every node of a
/// deployment accepts the others' cursors and nobody else can make one.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    pub fn derive(secret: &str) -> CursorKey {
        use sha2::Digest;
        // A key of its own: the JWT secret itself never signs anything but tokens.
        let key = sha2::Sha256::digest(format!("customer360 search cursor\0{secret}").as_bytes());
        CursorKey(key.into())
    }

    fn mac(&self) -> Hmac<sha2::Sha256> {
        // unwrap: HMAC takes a key of any length.
        Hmac::new_from_slice(&self.0).expect("an HMAC key of any length")
    }

    /// `raw` with its signature, as a cursor.
    fn seal(&self, raw: &str) -> String {
        let mut mac = self.mac();
        mac.update(raw.as_bytes());
        let signature = hex(&mac.finalize().into_bytes()[..16]);
        hex_encode(&format!("{raw}|{signature}"))
    }

    /// What `seal` sealed, if `cursor` is a cursor it made.
    fn open(&self, cursor: &str) -> Option<String> {
        let sealed = hex_decode(cursor)?;
        let (raw, signature) = sealed.rsplit_once('|')?;
        if signature.len() != 32 {
            return None;
        }
        let signature = unhex(signature)?;
        let mut mac = self.mac();
        mac.update(raw.as_bytes());
        mac.verify_truncated_left(&signature).ok()?;
        Some(raw.to_owned())
    }
}

/// Where a later page starts, and the total its first page counted: what a cursor carries,
/// with the digest of the search that issued it ([`digest`]).
pub struct Resume {
    pub search: String,
    pub after: After,
    pub total: i64,
}

/// Names a search (its text, filters as looked up, whether the text matches PII, and sort), so
/// that a cursor is used only with the search that issued it: with another sort its key would
/// not even be a value of the right type (Postgres refused it), and with other filters its
/// total would be wrong. Cursors are also signed ([`CursorKey`]), so no other key gets in.
fn digest(filter: &Filter, sort: Sort) -> String {
    use sha2::Digest;
    let named = sha2::Sha256::digest(format!("{filter:?}|{sort:?}").as_bytes());
    hex(&named[..8])
}

/// A search as asked for: the filter but for its segment and tag, which are named by id or name
/// and are looked up before it runs ([`Asked::resolve`]).
pub struct Asked {
    pub filter: Filter,
    pub segment: Option<Label>,
    pub tag: Option<Label>,
    pub sort: Sort,
    pub resume: Option<Resume>,
    pub limit: i64,
}

impl Asked {
    /// The filter with its segment and tag as ids; a 422 naming the parameter when no segment or
    /// tag has that id or name, like an unknown tier.
    async fn resolve(&mut self, conn: &mut AsyncPgConnection) -> Result<(), ApiError> {
        let Asked {
            filter,
            segment,
            tag,
            ..
        } = self;
        for (field, kind, label, id) in [
            (
                "segment",
                LabelKind::Segment,
                &*segment,
                &mut filter.segment,
            ),
            ("tag", LabelKind::Tag, &*tag, &mut filter.tag),
        ] {
            let Some(label) = label else { continue };
            let found = search::label_id(conn, kind, label).await?.ok_or_else(|| {
                let named = match label {
                    Label::Id(id) => format!("with id {id}"),
                    Label::Name(name) => format!("named '{name}'"),
                };
                ApiError::validation(field, format!("there is no {field} {named}"))
            })?;
            *id = Some(found);
        }
        Ok(())
    }
}

impl SearchParams {
    /// The search asked for, its cursor checked against `key`; its segment and tag are not
    /// looked up yet, and its text matches email and phone only once the role allows it
    /// ([`Filter::q_matches_pii`]).
    pub fn parse(&self, key: &CursorKey) -> Result<Asked, ApiError> {
        let tier = self
            .tier
            .as_deref()
            .map(|t| {
                t.trim()
                    .parse::<LoyaltyTier>()
                    .map_err(|e| ApiError::validation("tier", e))
            })
            .transpose()?;
        let filter = Filter {
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            q_matches_pii: false,
            segment: None,
            tier,
            tag: None,
            signup_from: instant("signup_from", &self.signup_from)?,
            signup_to: instant("signup_to", &self.signup_to)?,
            last_order_from: instant("last_order_from", &self.last_order_from)?,
            last_order_to: instant("last_order_to", &self.last_order_to)?,
            clv_min: int("clv_min", &self.clv_min)?,
            clv_max: int("clv_max", &self.clv_max)?,
            orders_min: int("orders_min", &self.orders_min)?,
            orders_max: int("orders_max", &self.orders_max)?,
        };
        ordered("signup_from", filter.signup_from, filter.signup_to)?;
        ordered(
            "last_order_from",
            filter.last_order_from,
            filter.last_order_to,
        )?;
        ordered("clv_min", filter.clv_min, filter.clv_max)?;
        ordered("orders_min", filter.orders_min, filter.orders_max)?;
        let sort = match self.sort.as_deref().map(str::trim) {
            None | Some("") => {
                if filter.q.is_some() {
                    Sort::Relevance
                } else {
                    Sort::Name
                }
            }
            Some("relevance") => Sort::Relevance,
            Some("lifetime_value") => Sort::LifetimeValue,
            Some("last_order") => Sort::LastOrder,
            Some("name") => Sort::Name,
            Some(other) => {
                return Err(ApiError::validation(
                    "sort",
                    format!(
                        "unknown sort '{other}' (expected relevance, lifetime_value, last_order or name)"
                    ),
                ));
            }
        };
        // A sort key may hold `|` (names do), so the digest is split off from the left and the
        // id and total from the right.
        let resume = self
            .cursor
            .as_deref()
            .map(|c| {
                key.open(c)
                    .and_then(|raw| {
                        let (search, rest) = raw.split_once('|')?;
                        let (rest, total) = rest.rsplit_once('|')?;
                        let (key, id) = rest.rsplit_once('|')?;
                        let after = After {
                            key: key.to_owned(),
                            id: id.parse().ok()?,
                        };
                        Some(Resume {
                            search: search.to_owned(),
                            after,
                            total: total.parse().ok().filter(|t| *t >= 0)?,
                        })
                    })
                    .ok_or_else(|| {
                        ApiError::validation("cursor", "cursor is not one this server issued")
                    })
            })
            .transpose()?;
        let limit = cursor::limit(int("limit", &self.limit)?)?;
        Ok(Asked {
            filter,
            segment: label(&self.segment),
            tag: label(&self.tag),
            sort,
            resume,
            limit,
        })
    }
}

#[utoipa::path(get, path = "/api/admin/customers/search", tag = "customers", security(("bearer" = [])),
    params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    admin: AuthAdmin,
    state: web::Data<AppState>,
    q: web::Query<SearchParams>,
) -> Result<HttpResponse, ApiError> {
    admin.require(Permission::ViewCustomer)?;
    let mut asked = q.parse(&state.cursor_key)?;
    asked.filter.q_matches_pii = admin.role.can(Permission::SeePii);
    let mut conn = state.pool.get().await?;
    asked.resolve(&mut conn).await?;
    let Asked {
        filter,
        sort,
        resume,
        limit,
        ..
    } = asked;
    let search = digest(&filter, sort);
    if resume.as_ref().is_some_and(|r| r.search != search) {
        return Err(ApiError::validation(
            "cursor",
            "cursor belongs to another search: page on with the q, filters and sort of its first page",
        ));
    }
    let after = resume.as_ref().map(|r| &r.after);
    let breadth = search::breadth(&mut conn, &filter, limit).await?;
    let page = |conn| search::page(conn, &filter, breadth, sort, after, limit);
    // The total of a broad query reads every match (all 100,000 for `q=example`: ~25 ms), so it
    // is counted on a second connection while the page runs. Only an idle or creatable
    // connection is borrowed for it, so a busy pool never makes a search wait for a second one.
    // A rare text's first page usually holds every match, and then is its total: counting
    // would repeat the page's work (a scan of the table for `q=qx`, too short for a trigram).
    // Later pages repeat the total their first page counted, which the cursor carries: paging
    // through a broad search costs a page each, and its total does not shift under the admin.
    let no_wait = Timeouts {
        wait: Some(Duration::ZERO),
        ..state.pool.timeouts()
    };
    let second = match (breadth, &resume) {
        (_, Some(_)) | (Breadth::OnePage, None) => None,
        (Breadth::Many | Breadth::Few, None) => state.pool.timeout_get(&no_wait).await.ok(),
    };
    let (mut rows, total) = match second {
        Some(mut second) => tokio::try_join!(page(&mut conn), search::count(&mut second, &filter))?,
        None => {
            let rows = page(&mut conn).await?;
            let total = match &resume {
                Some(r) => r.total,
                None if rows.len() as i64 <= limit => rows.len() as i64,
                None => search::count(&mut conn, &filter).await?,
            };
            (rows, total)
        }
    };
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            state
                .cursor_key
                .seal(&format!("{search}|{}|{}|{total}", r.sort_key, r.id))
        })
    } else {
        None
    };
    let masking = admin.masking();
    let items = rows
        .into_iter()
        .map(|r| SearchHit {
            id: r.id,
            name: r.name,
            email: masking.email(&r.email),
            phone: r.phone.map(|p| masking.phone(&p)),
            created_at: r.created_at,
            lifetime_value_cents: r.lifetime_value_cents,
            order_count: r.order_count,
            last_order_at: r.last_order_at,
            tier: r.tier,
            score: r.score,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SearchPage {
        total,
        items,
        next_cursor,
    }))
}
