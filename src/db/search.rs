//! Customer search: free text over name (partial, case-insensitive, trigram-indexed), order
//! number (exact) and, for roles that see PII unmasked, email and phone (digits only, whatever
//! the formatting), combined with filters, sorted by relevance, lifetime value, last order or
//! name, paged by keyset.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel::{OptionalExtension, QueryResult};
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

/// A segment or tag named by id or by name (case-insensitive), as a search asks for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Id(i64),
    Name(String),
}

impl Label {
    /// A number is an id, anything else a name: so a tag's name may not be a number
    /// (`http::tags`), or no search could name it.
    pub fn parse(s: &str) -> Label {
        match s.parse::<i64>() {
            Ok(id) => Label::Id(id),
            Err(_) => Label::Name(s.to_owned()),
        }
    }
}

/// Which catalogue a [`Label`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    Segment,
    Tag,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub q: Option<String>,
    /// Whether `q` also matches email and phone. Only for roles that see them unmasked: a
    /// masked role could otherwise confirm an address or number it is not shown, or spell one
    /// out a substring at a time from which customers still match.
    pub q_matches_pii: bool,
    /// A segment's id ([`label_id`] finds it for a name).
    pub segment: Option<i64>,
    pub tier: Option<LoyaltyTier>,
    /// A tag's id.
    pub tag: Option<i64>,
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
#[derive(Default)]
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

/// What a search matches: its conditions on `customer_search cs` (and `customers c`,
/// `customer_stats s`, `loyalty_accounts la` when a condition or the sort reads them), its
/// relevance expression, and the ways a text can match, for ranking by relevance.
struct Matches {
    /// Any of the ways the text matches, when there is a text.
    text: Option<String>,
    conditions: Vec<String>,
    score: String,
    arms: Vec<Arm>,
    customers: bool,
    stats: bool,
    loyalty: bool,
}

/// One way a text can match (the name starts a word with it, the email contains it, …) and the
/// order in which such matches score from best to worst. A row's score is the best of its ways,
/// so the best `n` rows of a search are among the best `n` of each way: ranking reads a few
/// rows per way instead of scoring every match, which a broad query (`q=example`: every
/// customer) made cost a scan of the whole table per page.
struct Arm {
    condition: String,
    best_first: &'static str,
}

impl Matches {
    /// FROM and WHERE of the matches; without the text's condition when `text` is false (the
    /// filters alone, which an [`Arm`] adds its way of matching to).
    fn sql_from_where(&self, text: bool) -> String {
        let mut sql = " FROM customer_search cs".to_owned();
        if self.customers {
            sql.push_str(" JOIN customers c ON c.id = cs.customer_id");
        }
        if self.stats {
            sql.push_str(" JOIN customer_stats s ON s.customer_id = cs.customer_id");
        }
        if self.loyalty {
            sql.push_str(" LEFT JOIN loyalty_accounts la ON la.customer_id = cs.customer_id");
        }
        sql.push_str(" WHERE true");
        let text = self.text.as_ref().filter(|_| text);
        for c in text.into_iter().chain(&self.conditions) {
            sql.push_str(" AND ");
            sql.push_str(c);
        }
        sql
    }
}

/// How well a lowercased column matches the lowercased needle, 0–1: 0 without the needle in it;
/// otherwise 0.2, plus up to 0.6 for the share of the column the needle covers, plus 0.2 when the
/// needle starts the column or (given `word`, the needle after a space) one of its words. An exact
/// match scores 1. Cheap on purpose: a broad query scores every match, and trigram `similarity`
/// cost 120 ms for the 20,000 of `q=example.co.uk`. The arithmetic is float8 throughout (a bare
/// `0.2` is numeric: 15 ms more for those rows).
///
/// Coverage is measured in bytes: `octet_length` is free where `length` counts characters (10 ms
/// per 100,000 rows), and it lets [`Arm`]s walk matches by an index on the column's byte length.
fn text_score(column: &str, needle: &str, word: Option<&str>) -> String {
    let word = word
        .map(|w| format!(" OR strpos({column}, {w}) > 0"))
        .unwrap_or_default();
    format!(
        "CASE WHEN strpos({column}, {needle}) = 0 THEN 0::float8 ELSE 0.2::float8
           + 0.6::float8 * octet_length({needle}) / octet_length({column})
           + CASE WHEN starts_with({column}, {needle}){word} THEN 0.2::float8 ELSE 0::float8 END
         END"
    )
}

fn matches(b: &mut Builder, f: &Filter) -> Matches {
    let mut m = Matches {
        text: None,
        conditions: Vec::new(),
        score: "0::float8".to_owned(),
        arms: Vec::new(),
        customers: false,
        stats: false,
        loyalty: false,
    };
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = b.param(Bind::Text(format!("%{escaped}%")));
        let starts = b.param(Bind::Text(format!("{escaped}%")));
        let word_starts = b.param(Bind::Text(format!("% {escaped}%")));
        let exact = b.param(Bind::Text(q.to_owned()));
        // Folded to constants when the statement is planned for its parameters (as each search
        // is): the needle is lowercased once, not in every row's score.
        let needle = format!("lower({exact})");
        let word = format!("(' ' || lower({exact}))");
        // The customers with an order of exactly that number, found once (an init plan).
        let ordered =
            format!("ANY(ARRAY(SELECT customer_id FROM orders WHERE order_number = {exact}))");
        let name_contains = format!("cs.name_lc LIKE lower({like})");
        let has_order = format!("cs.customer_id = {ordered}");
        // Each alternative can use an index (trigram on the lowercased name and email and on
        // the phone digits; the primary key for the ids of an exact order number), so Postgres
        // ORs their bitmaps and reads each matching customer once.
        let mut any_of = vec![name_contains.clone(), has_order.clone()];
        let by_name_length = "octet_length(cs.name_lc), cs.customer_id DESC";
        let by_email_length = "octet_length(cs.email_lc), cs.customer_id DESC";
        // Within one way every match scores the same but for its length (shorter is covered
        // more): so its best come first in the order of the length indexes. Starting a column or
        // word adds a bonus, so those matches are a way of their own.
        m.arms = vec![
            Arm {
                condition: format!(
                    "(cs.name_lc LIKE lower({starts}) OR cs.name_lc LIKE lower({word_starts}))"
                ),
                best_first: by_name_length,
            },
            Arm {
                condition: name_contains,
                best_first: by_name_length,
            },
            Arm {
                condition: has_order.clone(),
                best_first: "cs.customer_id DESC",
            },
        ];
        let mut scores = vec![
            text_score("cs.name_lc", &needle, Some(&word)),
            format!("CASE WHEN {has_order} THEN 1::float8 ELSE 0 END"),
        ];
        if f.q_matches_pii {
            let email_contains = format!("cs.email_lc LIKE lower({like})");
            any_of.push(email_contains.clone());
            m.arms.push(Arm {
                condition: format!("cs.email_lc LIKE lower({starts})"),
                best_first: by_email_length,
            });
            m.arms.push(Arm {
                condition: email_contains,
                best_first: by_email_length,
            });
            // An email has no spaces, so no words to start.
            scores.push(text_score("cs.email_lc", &needle, None));
            let d = digits(q);
            if d.len() >= 3 {
                let phone = b.param(Bind::Text(format!("%{d}%")));
                let phone_contains = format!("cs.phone_digits LIKE {phone}");
                scores.push(format!(
                    "CASE WHEN {phone_contains} THEN 0.9::float8 ELSE 0 END"
                ));
                any_of.push(phone_contains.clone());
                m.arms.push(Arm {
                    condition: phone_contains,
                    best_first: "cs.customer_id DESC",
                });
            }
        }
        m.text = Some(format!("({})", any_of.join(" OR ")));
        m.score = format!("greatest({})", scores.join(", "));
    }
    let mut member = |table: &str, column: &str, id: Option<i64>| {
        if let Some(id) = id {
            let p = b.param(Bind::Int(id));
            m.conditions.push(format!(
                "EXISTS (SELECT 1 FROM {table} x WHERE x.customer_id = cs.customer_id AND x.{column} = {p})"
            ));
        }
    };
    member("customer_segment_assignments", "segment_id", f.segment);
    member("customer_tag_assignments", "tag_id", f.tag);
    if let Some(tier) = f.tier {
        let p = b.param(Bind::Text(tier.as_str().to_owned()));
        m.conditions.push(format!("la.tier = {p}::loyalty_tier"));
        m.loyalty = true;
    }
    let mut range = |column: &str, op: &str, bind: Option<Bind>| {
        if let Some(bind) = bind {
            let p = b.param(bind);
            m.customers |= column.starts_with("c.");
            m.stats |= column.starts_with("s.");
            m.conditions.push(format!("{column} {op} {p}"));
        }
    };
    range("c.created_at", ">=", f.signup_from.map(Bind::Time));
    range("c.created_at", "<", f.signup_to.map(Bind::Time));
    range("s.last_order_at", ">=", f.last_order_from.map(Bind::Time));
    range("s.last_order_at", "<", f.last_order_to.map(Bind::Time));
    range("s.lifetime_value_cents", ">=", f.clv_min.map(Bind::Int));
    range("s.lifetime_value_cents", "<=", f.clv_max.map(Bind::Int));
    range("s.order_count", ">=", f.orders_min.map(Bind::Int));
    range("s.order_count", "<=", f.orders_max.map(Bind::Int));
    m
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The id of the segment or tag a label names, `None` when there is none. A search filters by
/// the id, never by a name looked up inside its statement: Postgres then plans for that
/// segment's own share of customers (Dormant: 25,722, where an average segment is 8,886), and
/// `q=example&segment=Dormant` counts its total by a hash join, not by 25,722 index probes (p99
/// 42 → 25 ms).
pub async fn label_id(
    conn: &mut AsyncPgConnection,
    kind: LabelKind,
    label: &Label,
) -> QueryResult<Option<i64>> {
    let table = match kind {
        LabelKind::Segment => "customer_segments",
        LabelKind::Tag => "customer_tags",
    };
    let found = match label {
        Label::Id(id) => {
            diesel::sql_query(format!("SELECT id FROM {table} WHERE id = $1"))
                .bind::<BigInt, _>(*id)
                .get_result::<Id>(conn)
                .await
        }
        Label::Name(name) => {
            diesel::sql_query(format!(
                "SELECT id FROM {table} WHERE lower(name) = lower($1)"
            ))
            .bind::<Text, _>(name)
            .get_result::<Id>(conn)
            .await
        }
    };
    Ok(found.optional()?.map(|found| found.id))
}

/// How many customers a search is expected to match, which decides how it is best run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breadth {
    /// Likely to fit on its first page, which then is its total.
    OnePage,
    /// Few enough to score every match.
    Few,
    /// Ranked by relevance from each way's best rows.
    Many,
}

/// Above how many estimated matches relevance is ranked from the best few rows of each way of
/// matching ([`Arm`]) rather than by scoring every match. A few thousand matches score in a few
/// milliseconds, while a way's walk reads about (page size ÷ share of rows matching) rows, which
/// grows long for rare matches and for filters the estimate takes as independent of the text
/// (`q=sophia&tier=silver&orders_min=3`, ~1,200 expected: walks of 12,000 rows, 33 ms for the
/// page; the search's p50 47 ms, against 22 ms scoring them all). And a text too short for a trigram (`qx`) matching few customers has
/// no index to serve its ways: each way would be a scan of the table where scoring needs one.
const RANK_BY_ARMS_ABOVE: f64 = 5_000.0;

#[derive(diesel::QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// The breadth of a text search shown `limit` rows a page, from Postgres's estimate of its
/// matches (its statistics: no rows are read, ~1 ms of planning). A search without text is
/// `Many`: its filters have indexes of their own and it is run as it always was.
pub async fn breadth(conn: &mut AsyncPgConnection, f: &Filter, limit: i64) -> QueryResult<Breadth> {
    let mut explain = Builder::default();
    let m = matches(&mut explain, f);
    if m.text.is_none() {
        return Ok(Breadth::Many);
    }
    explain.push(&format!(
        "EXPLAIN (FORMAT JSON) SELECT 1{}",
        m.sql_from_where(true)
    ));
    let plan = explain.query().get_result::<Plan>(conn).await?.plan;
    let rows = serde_json::from_str::<serde_json::Value>(&plan)
        .ok()
        .and_then(|v| v[0]["Plan"]["Plan Rows"].as_f64());
    // An unreadable plan only costs the choice of the cheaper way to run it, never the result.
    Ok(match rows {
        Some(rows) if rows > RANK_BY_ARMS_ABOVE => Breadth::Many,
        // Postgres never expects fewer than a handful of rows, so a rare text is a page's worth.
        Some(rows) if rows > (2 * limit) as f64 => Breadth::Few,
        _ => Breadth::OnePage,
    })
}

/// How many customers match, over all pages.
pub async fn count(conn: &mut AsyncPgConnection, f: &Filter) -> QueryResult<i64> {
    let mut count = Builder::default();
    let m = matches(&mut count, f);
    count.push(&format!(
        "SELECT count(*) AS total{}",
        m.sql_from_where(true)
    ));
    Ok(count.query().get_result::<Total>(conn).await?.total)
}

/// One page: newest sort key first (best score first for relevance), or names A–Z.
///
/// The matches are found and ordered with only the tables their conditions and sort read; the
/// page's rows alone are then joined to their stats and tier for display. Relevance over
/// `Many` matches is ranked from the best rows of each [`Arm`].
pub async fn page(
    conn: &mut AsyncPgConnection,
    f: &Filter,
    breadth: Breadth,
    sort: Sort,
    after: Option<&After>,
    limit: i64,
) -> QueryResult<Vec<Row>> {
    let mut page = Builder::default();
    let mut m = matches(&mut page, f);
    // (sort value over the matching rows — relevance sorts by the score itself —, the value
    // the page is ordered and cut by, direction, cast of a cursor key). A key travels in the
    // cursor as Postgres's text form of the value, which reads back exactly (floats included).
    let (value, order_value, descending, cast) = match sort {
        Sort::Relevance => ("NULL::text", "score", true, "::float8"),
        Sort::LifetimeValue => ("s.lifetime_value_cents", "sort_value", true, "::bigint"),
        Sort::LastOrder => (
            "coalesce(s.last_order_at, '-infinity'::timestamptz)",
            "sort_value",
            true,
            "::timestamptz",
        ),
        Sort::Name => ("cs.name_lc", "sort_value", false, "::text"),
    };
    m.stats |= matches!(sort, Sort::LifetimeValue | Sort::LastOrder);
    let op = if descending { "<" } else { ">" };
    let cursor = after.map(|after| {
        let k = page.param(Bind::Text(after.key.clone()));
        let id = page.param(Bind::Int(after.id));
        (k, id)
    });
    let lim = page.param(Bind::Int(limit + 1));
    let by_arms = sort == Sort::Relevance && !m.arms.is_empty() && breadth == Breadth::Many;
    let from_where = if by_arms {
        let after_cursor = cursor
            .as_ref()
            .map(|(k, id)| format!(" AND ({}, cs.customer_id) < ({k}::float8, {id})", m.score))
            .unwrap_or_default();
        let filters = m.sql_from_where(false);
        let arms: Vec<String> = m
            .arms
            .iter()
            .map(|arm| {
                format!(
                    "(SELECT cs.customer_id{filters}{after_cursor} AND {}
                      ORDER BY {} LIMIT {lim})",
                    arm.condition, arm.best_first
                )
            })
            .collect();
        format!(
            " FROM customer_search cs WHERE cs.customer_id IN ({})",
            arms.join(" UNION ALL ")
        )
    } else {
        m.sql_from_where(true)
    };
    page.push(&format!(
        "SELECT c.id, c.name, c.email, c.phone, c.created_at, s.lifetime_value_cents,
                s.order_count::bigint AS order_count, s.last_order_at, la.tier::text AS tier,
                m.score, m.{order_value}::text AS sort_key
         FROM (SELECT * FROM (
                 SELECT cs.customer_id AS id, {score} AS score, {value} AS sort_value{from_where}) r",
        score = m.score,
    ));
    if let Some((k, id)) = &cursor {
        page.push(&format!(
            " WHERE (r.{order_value}, r.id) {op} ({k}{cast}, {id})"
        ));
    }
    let direction = if descending { "DESC" } else { "ASC" };
    page.push(&format!(
        " ORDER BY r.{order_value} {direction}, r.id {direction} LIMIT {lim}) m
         JOIN customers c ON c.id = m.id
         JOIN customer_stats s ON s.customer_id = m.id
         LEFT JOIN loyalty_accounts la ON la.customer_id = m.id
         ORDER BY m.{order_value} {direction}, m.id {direction}"
    ));
    page.query().load(conn).await
}
