//! The analytics slice: what the customer buys (by category, with how often they browse each),
//! how they visit (sessions, devices, sources) and when they shop (a weekday-by-hour heatmap,
//! UTC, Monday first).

use std::collections::BTreeMap;

use crate::db::prepared::{bind, prepared};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::view::{JsonRow, decode};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryStat {
    pub category: String,
    pub revenue_cents: i64,
    pub units: i64,
    pub orders: i64,
    pub views: i64,
    /// Share of the customer's item revenue, 0–1.
    pub share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionStats {
    pub count: i64,
    pub last_30_days: i64,
    pub average_duration_seconds: Option<f64>,
    pub average_page_views: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analytics {
    pub categories: Vec<CategoryStat>,
    pub sessions: SessionStats,
    pub devices: BTreeMap<String, i64>,
    pub sources: BTreeMap<String, i64>,
    /// `heatmap[weekday][hour]`: orders placed, weekday 0 = Monday, hours in UTC.
    pub heatmap: Vec<Vec<i64>>,
}

#[derive(Deserialize)]
struct Raw {
    bought: Vec<(String, i64, i64, i64)>,
    viewed: BTreeMap<String, i64>,
    sessions: SessionStats,
    devices: BTreeMap<String, i64>,
    sources: BTreeMap<String, i64>,
    heatmap: Vec<(usize, usize, i64)>,
}

const SQL: &str = "SELECT jsonb_build_object(
    'bought', (SELECT coalesce(jsonb_agg(jsonb_build_array(pc.name, x.revenue, x.units, x.orders)), '[]') FROM
        (SELECT category_id, sum(quantity * unit_price_cents) AS revenue, sum(quantity) AS units,
                count(DISTINCT order_id) AS orders
         FROM order_items WHERE customer_id = $1 GROUP BY category_id) x
        JOIN product_categories pc ON pc.id = x.category_id),
    'viewed', (SELECT coalesce(jsonb_object_agg(pc.name, v.n), '{}') FROM
        (SELECT category_id, count(*) AS n FROM category_views WHERE customer_id = $1 GROUP BY category_id) v
        JOIN product_categories pc ON pc.id = v.category_id),
    'sessions', (SELECT jsonb_build_object('count', count(*),
            'last_30_days', count(*) FILTER (WHERE started_at > now() - interval '30 days'),
            'average_duration_seconds', round(avg(duration_seconds)::numeric, 1),
            'average_page_views', round(avg(page_views)::numeric, 1))
        FROM web_sessions WHERE customer_id = $1),
    'devices', (SELECT coalesce(jsonb_object_agg(device, n), '{}') FROM
        (SELECT device, count(*) AS n FROM web_sessions WHERE customer_id = $1 GROUP BY device) d),
    'sources', (SELECT coalesce(jsonb_object_agg(source, n), '{}') FROM
        (SELECT source, count(*) AS n FROM web_sessions WHERE customer_id = $1 GROUP BY source) s),
    'heatmap', (SELECT coalesce(jsonb_agg(jsonb_build_array(dow, hour, n)), '[]') FROM
        (SELECT extract(isodow FROM placed_at AT TIME ZONE 'UTC')::int - 1 AS dow,
                extract(hour FROM placed_at AT TIME ZONE 'UTC')::int AS hour, count(*) AS n
         FROM orders WHERE customer_id = $1 GROUP BY 1, 2) h)
  ) AS data";

pub async fn load(mut conn: &AsyncPgConnection, customer_id: i64) -> QueryResult<Analytics> {
    let raw: Raw = decode(
        prepared(SQL, vec![bind::<BigInt, _>(customer_id)])
            .get_result::<JsonRow>(&mut conn)
            .await?,
    )?;
    let total: i64 = raw.bought.iter().map(|b| b.1).sum();
    let mut categories: Vec<CategoryStat> = raw
        .bought
        .iter()
        .map(|(category, revenue_cents, units, orders)| CategoryStat {
            category: category.clone(),
            revenue_cents: *revenue_cents,
            units: *units,
            orders: *orders,
            views: raw.viewed.get(category).copied().unwrap_or(0),
            share: if total > 0 {
                *revenue_cents as f64 / total as f64
            } else {
                0.0
            },
        })
        .collect();
    for (category, views) in &raw.viewed {
        if !categories.iter().any(|c| &c.category == category) {
            categories.push(CategoryStat {
                category: category.clone(),
                revenue_cents: 0,
                units: 0,
                orders: 0,
                views: *views,
                share: 0.0,
            });
        }
    }
    categories.sort_by(|a, b| {
        b.revenue_cents
            .cmp(&a.revenue_cents)
            .then(b.views.cmp(&a.views))
            .then(a.category.cmp(&b.category))
    });
    let mut heatmap = vec![vec![0i64; 24]; 7];
    for (dow, hour, n) in raw.heatmap {
        if let Some(cell) = heatmap.get_mut(dow).and_then(|row| row.get_mut(hour)) {
            *cell = n;
        }
    }
    Ok(Analytics {
        categories,
        sessions: raw.sessions,
        devices: raw.devices,
        sources: raw.sources,
        heatmap,
    })
}
