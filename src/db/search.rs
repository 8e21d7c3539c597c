//! Customer search: free text over name (partial, case-insensitive, trigram-indexed), email,
//! phone (digits only, whatever the formatting) and order number (exact), combined with
//! filters, sorted by relevance, lifetime value, last order or name, paged by keyset.

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::LoyaltyTier;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Relevance,
    LifetimeValue,
    LastOrder,
    Name,
}

/// A segment or tag named by id or by name (case-insensitive).
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Id(i64),
    Name(String),
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub q: Option<String>,
    pub segment: Option<Label>,
    pub tier: Option<LoyaltyTier>,
    pub tag: Option<Label>,
    pub signup_from: Option<DateTime<Utc>>,
    pub signup_to: Option<DateTime<Utc>>,
    pub last_order_from: Option<DateTime<Utc>>,
    pub last_order_to: Option<DateTime<Utc>>,
    pub clv_min: Option<i64>,
    pub clv_max: Option<i64>,
    pub orders_min: Option<i64>,
    pub orders_max: Option<i64>,
}

/// Where the next page starts: the last row's sort key (as text) and id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub key: String,
    pub id: i64,
}

#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Row {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub phone: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub lifetime_value_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub order_count: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_order_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub tier: Option<String>,
    #[diesel(sql_type = Double)]
    pub score: f64,
    /// The sort key of the row, as text, for the cursor.
    #[diesel(sql_type = Text)]
    pub sort_key: String,
}

#[derive(diesel::QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// SQL text with numbered placeholders and their values, built together.
struct Builder {
    sql: String,
    binds: Vec<Bind>,
}

enum Bind {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl Builder {
    fn param(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    fn query(
        self,
    ) -> diesel::query_builder::BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
        let mut q = diesel::sql_query(self.sql).into_boxed::<Pg>();
        for b in self.binds {
            q = match b {
                Bind::Text(v) => q.bind::<Text, _>(v),
                Bind::Int(v) => q.bind::<BigInt, _>(v),
                Bind::Time(v) => q.bind::<Timestamptz, _>(v),
            };
        }
        q
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The shared FROM/WHERE of the page and count queries; returns the relevance expression.
fn from_where(b: &mut Builder, f: &Filter) -> String {
    b.push(
        " FROM customers c JOIN customer_stats s ON s.customer_id = c.id
          LEFT JOIN loyalty_accounts la ON la.customer_id = c.id WHERE true",
    );
    let mut score = "0::float8".to_owned();
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let like = b.param(Bind::Text(format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )));
        let exact = b.param(Bind::Text(q.to_owned()));
        // Every arm can use an index (trigram on name, email and phone digits; the primary key
        // for the ids of an exact order number), so Postgres ORs their bitmaps and reads each
        // matching customer once.
        let mut arms = vec![
            format!("c.name ILIKE {like}"),
            format!("c.email ILIKE {like}"),
            format!(
                "c.id = ANY(ARRAY(SELECT customer_id FROM orders WHERE order_number = {exact}))"
            ),
        ];
        let d = digits(q);
        let mut phone_score = "0".to_owned();
        if d.len() >= 3 {
            let phone = b.param(Bind::Text(format!("%{d}%")));
            arms.push(format!("c.phone_digits LIKE {phone}"));
            phone_score = format!("CASE WHEN c.phone_digits LIKE {phone} THEN 0.9 ELSE 0 END");
        }
        b.push(&format!(" AND ({})", arms.join(" OR ")));
        score = format!(
            "greatest(similarity(c.name, {exact}), similarity(c.email, {exact}), {phone_score},
              CASE WHEN EXISTS (SELECT 1 FROM orders o WHERE o.order_number = {exact} AND o.customer_id = c.id) THEN 1 ELSE 0 END)::float8"
        );
    }
    let label = |b: &mut Builder, table: &str, label_table: &str, column: &str, l: &Label| match l {
        Label::Id(id) => {
            let p = b.param(Bind::Int(*id));
            format!(
                " AND EXISTS (SELECT 1 FROM {table} x WHERE x.customer_id = c.id AND x.{column} = {p})"
            )
        }
        Label::Name(name) => {
            let p = b.param(Bind::Text(name.clone()));
            format!(
                " AND EXISTS (SELECT 1 FROM {table} x JOIN {label_table} l ON l.id = x.{column}
                   WHERE x.customer_id = c.id AND lower(l.name) = lower({p}))"
            )
        }
    };
    if let Some(s) = &f.segment {
        let sql = label(
            b,
            "customer_segment_assignments",
            "customer_segments",
            "segment_id",
            s,
        );
        b.push(&sql);
    }
    if let Some(t) = &f.tag {
        let sql = label(b, "customer_tag_assignments", "customer_tags", "tag_id", t);
        b.push(&sql);
    }
    if let Some(tier) = f.tier {
        let p = b.param(Bind::Text(tier.as_str().to_owned()));
        b.push(&format!(" AND la.tier = {p}::loyalty_tier"));
    }
    let range = |b: &mut Builder, column: &str, op: &str, bind: Option<Bind>| {
        if let Some(bind) = bind {
            let p = b.param(bind);
            b.push(&format!(" AND {column} {op} {p}"));
        }
    };
    range(b, "c.created_at", ">=", f.signup_from.map(Bind::Time));
    range(b, "c.created_at", "<", f.signup_to.map(Bind::Time));
    range(
        b,
        "s.last_order_at",
        ">=",
        f.last_order_from.map(Bind::Time),
    );
    range(b, "s.last_order_at", "<", f.last_order_to.map(Bind::Time));
    range(b, "s.lifetime_value_cents", ">=", f.clv_min.map(Bind::Int));
    range(b, "s.lifetime_value_cents", "<=", f.clv_max.map(Bind::Int));
    range(b, "s.order_count", ">=", f.orders_min.map(Bind::Int));
    range(b, "s.order_count", "<=", f.orders_max.map(Bind::Int));
    score
}

/// One page (newest sort key first, or names A–Z) and the total number of matches.
pub async fn search(
    conn: &mut AsyncPgConnection,
    f: &Filter,
    sort: Sort,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<(Vec<Row>, i64)> {
    let mut count = Builder {
        sql: "SELECT count(*) AS total".to_owned(),
        binds: Vec::new(),
    };
    from_where(&mut count, f);
    let total: Total = count.query().get_result(conn).await?;

    let mut page = Builder {
        sql: String::new(),
        binds: Vec::new(),
    };
    let mut body = Builder {
        sql: String::new(),
        binds: Vec::new(),
    };
    let score = from_where(&mut body, f);
    // (sort expression, its text form for the cursor, direction, cast of a cursor key)
    let (key, key_text, descending, cast) = match sort {
        Sort::Relevance => (
            score.clone(),
            format!("to_char({score}, 'FM0.000000000')"),
            true,
            "::float8",
        ),
        Sort::LifetimeValue => (
            "s.lifetime_value_cents".to_owned(),
            "s.lifetime_value_cents::text".to_owned(),
            true,
            "::bigint",
        ),
        Sort::LastOrder => (
            "coalesce(s.last_order_at, '-infinity'::timestamptz)".to_owned(),
            "coalesce(s.last_order_at, '-infinity'::timestamptz)::text".to_owned(),
            true,
            "::timestamptz",
        ),
        Sort::Name => (
            "lower(c.name)".to_owned(),
            "lower(c.name)".to_owned(),
            false,
            "::text",
        ),
    };
    page.sql = format!(
        "SELECT * FROM (SELECT c.id, c.name, c.email, c.phone, c.created_at, s.lifetime_value_cents,
                s.order_count::bigint AS order_count, s.last_order_at, la.tier::text AS tier,
                {score} AS score, {key_text} AS sort_key, {key} AS sort_value{}",
        body.sql
    );
    page.binds = body.binds;
    page.push(") r");
    if let Some(after) = after {
        let k = page.param(Bind::Text(after.key.clone()));
        let id = page.param(Bind::Int(after.id));
        // Relevance keys are compared as the rounded text the cursor carries.
        let value = if sort == Sort::Relevance {
            "r.sort_key::float8".to_owned()
        } else {
            "r.sort_value".to_owned()
        };
        let op = if descending { "<" } else { ">" };
        page.push(&format!(" WHERE ({value}, r.id) {op} ({k}{cast}, {id})"));
    }
    let direction = if descending { "DESC" } else { "ASC" };
    let order_value = if sort == Sort::Relevance {
        "r.sort_key::float8"
    } else {
        "r.sort_value"
    };
    let lim = page.param(Bind::Int(limit + 1));
    page.push(&format!(
        " ORDER BY {order_value} {direction}, r.id {direction} LIMIT {lim}"
    ));
    let rows: Vec<Row> = page.query().load(conn).await?;
    Ok((rows, total.total))
}
