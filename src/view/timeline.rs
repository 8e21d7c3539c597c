//! The timeline: orders, loyalty movements, tickets, campaign events, sessions, notes, tags,
//! segments and quick-action emails merged newest first, strictly ordered by (time, kind, id)
//! descending, filtered by kind and date range, paged with a cursor, each event formatted for
//! display.

use std::sync::LazyLock;

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::{Array, BigInt, Bool, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::enums::NoteVisibility;
use crate::domain::roles::{Permission, Role};
use crate::view::cursor::{Cursor, DEFAULT_LIMIT, finish_page};
use crate::view::{JsonRow, decode};

/// Every kind of timeline event.
pub const KINDS: [&str; 9] = [
    "order", "loyalty", "ticket", "campaign", "session", "note", "tag", "segment", "email",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    /// `kind:entity id`, unique across the timeline.
    pub id: String,
    pub kind: String,
    pub entity_id: i64,
    pub at: DateTime<Utc>,
    pub title: String,
    pub summary: String,
    /// Icon key for the front end (cart, star, lifebuoy, megaphone, monitor, note, tag, users, mail).
    pub icon: String,
    /// Where the event leads in the admin UI.
    pub link: String,
    /// For notes: who wrote it (null for other kinds).
    pub author_id: Option<String>,
    /// For notes: public or private (null for other kinds).
    pub visibility: Option<NoteVisibility>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelinePage {
    pub events: Vec<TimelineEvent>,
    pub next_cursor: Option<String>,
    /// The first page as loaded for every viewer (`load_shared`) holds the public events in
    /// `events` and, here, each author's newest private note events, folded in per viewer by
    /// `narrowed`; never sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub private: Vec<TimelineEvent>,
}

#[derive(Debug, Clone)]
pub struct TimelineQuery {
    pub kinds: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub after: Cursor,
    pub limit: i64,
    /// Private notes of other authors are included only when true…
    pub all_private_notes: bool,
    /// …and otherwise only this viewer's own.
    pub viewer_id: String,
}

impl TimelineQuery {
    pub fn first_page(all_private_notes: bool) -> TimelineQuery {
        TimelineQuery {
            kinds: KINDS.iter().map(|k| (*k).to_owned()).collect(),
            // unwrap: constant, valid timestamps.
            from: DateTime::from_timestamp(0, 0).unwrap(),
            to: Cursor::start().at,
            after: Cursor::start(),
            limit: DEFAULT_LIMIT,
            all_private_notes,
            viewer_id: String::new(),
        }
    }
}

#[derive(Deserialize)]
struct RawEvent {
    at: DateTime<Utc>,
    kind: String,
    id: i64,
    data: Value,
}

/// One source of timeline events: its time and id columns, the event's data, and the rows
/// of the customer ($1) it reads.
struct Source {
    kind: &'static str,
    at: &'static str,
    id: &'static str,
    data: &'static str,
    rows: &'static str,
}

/// A note event's data, public or private.
const NOTE_DATA: &str = "jsonb_build_object('author_id', author_id, 'author_name', author_name, \
                         'visibility', visibility, 'pinned', pinned, 'excerpt', left(body, 140))";

const SOURCES: [Source; 9] = [
    Source {
        kind: "order",
        at: "placed_at",
        id: "id",
        data: "jsonb_build_object('order_number', order_number, 'status', status, \
               'total_cents', total_cents, 'currency', currency, 'channel', channel)",
        rows: "orders WHERE customer_id = $1",
    },
    Source {
        kind: "loyalty",
        at: "created_at",
        id: "id",
        data: "jsonb_build_object('points', points, 'reason', reason, 'admin_name', admin_name)",
        rows: "loyalty_transactions WHERE customer_id = $1",
    },
    Source {
        kind: "ticket",
        at: "created_at",
        id: "id",
        data: "jsonb_build_object('subject', subject, 'status', status, 'priority', priority)",
        rows: "support_tickets WHERE customer_id = $1",
    },
    Source {
        kind: "campaign",
        at: "e.occurred_at",
        id: "e.id",
        data: "jsonb_build_object('campaign', c.name, 'event', e.event_type, 'channel', c.channel)",
        rows: "campaign_events e JOIN campaigns c ON c.id = e.campaign_id WHERE e.customer_id = $1",
    },
    Source {
        kind: "session",
        at: "started_at",
        id: "id",
        data: "jsonb_build_object('device', device, 'duration_seconds', duration_seconds, \
               'page_views', page_views, 'source', source)",
        rows: "web_sessions WHERE customer_id = $1",
    },
    Source {
        kind: "note",
        at: "created_at",
        id: "id",
        data: NOTE_DATA,
        rows: "customer_notes WHERE customer_id = $1 AND (visibility = 'public' OR $9 OR author_id = $10)",
    },
    Source {
        kind: "tag",
        at: "a.assigned_at",
        id: "a.id",
        data: "jsonb_build_object('tag', t.name, 'color', t.color, 'by', a.assigned_by_name)",
        rows: "customer_tag_assignments a JOIN customer_tags t ON t.id = a.tag_id WHERE a.customer_id = $1",
    },
    Source {
        kind: "segment",
        at: "a.assigned_at",
        id: "a.id",
        data: "jsonb_build_object('segment', s.name, 'source', a.source, 'by', a.assigned_by)",
        rows: "customer_segment_assignments a JOIN customer_segments s ON s.id = a.segment_id \
               WHERE a.customer_id = $1",
    },
    Source {
        kind: "email",
        at: "created_at",
        id: "id",
        data: "jsonb_build_object('subject', subject, 'status', status, 'queued_by', queued_by)",
        rows: "email_outbox WHERE customer_id = $1",
    },
];

/// Each source reads at most a page of its newest rows in the window ($2 kinds, $3..$4 time,
/// before the cursor $5..$7, $8 rows), so only those are built as JSON: a customer with
/// hundreds of orders and sessions costs a page per source, not every row (2.1 → 0.8 ms for
/// a customer with 330 events). The page is the newest of them.
fn page_sql(sources: &[Source]) -> String {
    let sources: Vec<String> = sources
        .iter()
        .map(|s| {
            let Source {
                kind,
                at,
                id,
                data,
                rows,
            } = s;
            format!(
                "(SELECT {at} AS at, '{kind}' AS kind, {id} AS id, {data} AS data FROM {rows}
                    AND '{kind}' = ANY($2) AND {at} >= $3 AND {at} < $4 AND ({at}, '{kind}', {id}) < ($5, $6, $7)
                  ORDER BY {at} DESC, {id} DESC LIMIT $8)"
            )
        })
        .collect();
    format!(
        "SELECT coalesce(jsonb_agg(jsonb_build_object('at', at, 'kind', kind, 'id', id, 'data', data)
                ORDER BY at DESC, kind DESC, id DESC), '[]') AS data
         FROM (SELECT * FROM ({}) ev ORDER BY at DESC, kind DESC, id DESC LIMIT $8) page",
        sources.join(" UNION ALL ")
    )
}

static SQL: LazyLock<String> = LazyLock::new(|| page_sql(&SOURCES));

/// One statement per source, in the order of `KINDS`, for refreshing a page in part, so that
/// a reload's second round reuses the kinds its first round read. (Per read, the page's own
/// statement with the other kinds filtered out costs about the same: load-tests/README.md.)
static KIND_SQL: LazyLock<Vec<String>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .map(|s| page_sql(std::slice::from_ref(s)))
        .collect()
});

pub async fn load_page(
    conn: &AsyncPgConnection,
    customer_id: i64,
    q: &TimelineQuery,
) -> QueryResult<TimelinePage> {
    let mut events = load_events(conn, customer_id, SQL.as_str(), q).await?;
    let next_cursor = finish_page(&mut events, q.limit, cursor_of);
    Ok(TimelinePage {
        events,
        next_cursor,
        private: Vec::new(),
    })
}

/// Each author's newest private note events, a page and one each: with the public page, what
/// any viewer's first page is made of (`TimelinePage::narrowed`).
static PRIVATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let data = NOTE_DATA;
    format!(
        "SELECT coalesce(jsonb_agg(jsonb_build_object('at', at, 'kind', 'note', 'id', id, 'data', data)
                ORDER BY at DESC, id DESC), '[]') AS data
         FROM (SELECT created_at AS at, id, {data} AS data,
                      row_number() OVER (PARTITION BY author_id ORDER BY created_at DESC, id DESC) AS rank
               FROM customer_notes WHERE customer_id = $1 AND visibility = 'private'
                 AND created_at >= $3 AND created_at < $4) p
         WHERE rank <= $2"
    )
});

async fn load_private(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
) -> QueryResult<Vec<TimelineEvent>> {
    // The first page's window, so the notes are those the page's own query could show.
    let window = TimelineQuery::first_page(false);
    let row = prepared(
        PRIVATE_SQL.as_str(),
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<BigInt, _>(DEFAULT_LIMIT + 1),
            bind::<Timestamptz, _>(window.from),
            bind::<Timestamptz, _>(window.to),
        ],
    )
    .get_result::<JsonRow>(&mut conn)
    .await?;
    formatted(customer_id, row)
}

/// The first page as loaded for every viewer: public events, and private notes apart.
pub async fn load_shared(conn: &AsyncPgConnection, customer_id: i64) -> QueryResult<TimelinePage> {
    let q = TimelineQuery::first_page(false);
    let (page, private) = futures_util::try_join!(
        load_page(conn, customer_id, &q),
        load_private(conn, customer_id)
    )?;
    Ok(TimelinePage { private, ..page })
}

/// Up to a page and one of the events `sql` reads, newest first, formatted.
async fn load_events(
    mut conn: &AsyncPgConnection,
    customer_id: i64,
    sql: &'static str,
    q: &TimelineQuery,
) -> QueryResult<Vec<TimelineEvent>> {
    let row = prepared(
        sql,
        vec![
            bind::<BigInt, _>(customer_id),
            bind::<Array<Text>, _>(q.kinds.clone()),
            bind::<Timestamptz, _>(q.from),
            bind::<Timestamptz, _>(q.to),
            bind::<Timestamptz, _>(q.after.at),
            bind::<Text, _>(q.after.kind.clone()),
            bind::<BigInt, _>(q.after.id),
            bind::<BigInt, _>(q.limit + 1),
            bind::<Bool, _>(q.all_private_notes),
            bind::<Text, _>(q.viewer_id.clone()),
        ],
    )
    .get_result::<JsonRow>(&mut conn)
    .await?;
    formatted(customer_id, row)
}

/// The events a page statement answered, formatted for display.
fn formatted(customer_id: i64, row: JsonRow) -> QueryResult<Vec<TimelineEvent>> {
    let raw: Vec<RawEvent> = decode(row)?;
    Ok(raw
        .into_iter()
        .map(|e| format_event(customer_id, e))
        .collect())
}

fn cursor_of(e: &TimelineEvent) -> Cursor {
    Cursor {
        at: e.at,
        kind: e.kind.clone(),
        id: e.entity_id,
    }
}

/// The timeline kinds a change event of `kind` can alter: None for a kind this crate does not
/// know, which can alter any.
pub fn kinds_changed_by(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "order" => &["order"],
        "loyalty" => &["loyalty"],
        "ticket" => &["ticket"],
        "marketing" => &["campaign", "email"],
        "session" => &["session"],
        "note" => &["note"],
        "tag" => &["tag"],
        "segment" => &["segment"],
        "profile" => &[],
        _ => return None,
    })
}

/// The kinds of events a hub's timeline page must be refreshed for, and whether any of them
/// was deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changed {
    pub kinds: Vec<&'static str>,
    pub deletions: bool,
}

/// What a reload has read of the timeline so far, in one snapshot: the newest events of each
/// kind, so that a second round reads only the kinds the first did not, and whether it read the
/// whole page, which then needs no second round.
#[derive(Default)]
pub struct ReadKinds(std::sync::Mutex<Read>);

#[derive(Default)]
struct Read {
    kinds: Vec<(&'static str, Vec<TimelineEvent>)>,
    whole: bool,
}

impl ReadKinds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a refresh read the whole page instead.
    pub fn read_whole(&self) -> bool {
        self.lock().whole
    }
}

/// The first page as hubs hold it (`load_shared`) after changes to events of the `changed`
/// kinds only: those kinds are read again (one statement each, unless `read` holds them from
/// this snapshot already), and the other events are kept from `shown`, the page as it was.
/// When `merge_first_page` cannot vouch for the result, the whole page is read instead. The
/// private notes are read again when notes changed, and kept from `shown` otherwise.
pub async fn refresh_first_page(
    conn: &AsyncPgConnection,
    customer_id: i64,
    shown: &TimelinePage,
    changed: &Changed,
    read: &ReadKinds,
) -> QueryResult<TimelinePage> {
    let notes_changed = changed.kinds.contains(&"note");
    let private = async {
        if notes_changed {
            load_private(conn, customer_id).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (page, private) = futures_util::try_join!(
        refresh_public_page(conn, customer_id, shown, changed, read),
        private
    )?;
    let private = match private {
        Some(private) => private,
        // A page read whole is taken as current for every kind (no second round reads the
        // timeline again), so its private notes must be read in this snapshot too.
        None if read.read_whole() => load_private(conn, customer_id).await?,
        None => shown.private.clone(),
    };
    Ok(TimelinePage { private, ..page })
}

async fn refresh_public_page(
    conn: &AsyncPgConnection,
    customer_id: i64,
    shown: &TimelinePage,
    changed: &Changed,
    read: &ReadKinds,
) -> QueryResult<TimelinePage> {
    let q = TimelineQuery::first_page(false);
    let missing: Option<Vec<(&'static str, &'static str)>> = {
        let read = read.lock();
        changed
            .kinds
            .iter()
            .filter(|k| !read.kinds.iter().any(|(have, _)| have == *k))
            .map(|k| {
                let i = KINDS.iter().position(|known| known == k)?;
                Some((*k, KIND_SQL[i].as_str()))
            })
            .collect()
    };
    if let Some(missing) = missing {
        let loaded = futures_util::future::try_join_all(missing.iter().map(|(kind, sql)| async {
            Ok::<_, diesel::result::Error>((*kind, load_events(conn, customer_id, sql, &q).await?))
        }))
        .await?;
        let fresh: Vec<TimelineEvent> = {
            let mut read = read.lock();
            read.kinds.extend(loaded);
            read.kinds
                .iter()
                .filter(|(kind, _)| changed.kinds.contains(kind))
                .flat_map(|(_, events)| events.iter().cloned())
                .collect()
        };
        if let Some(page) = merge_first_page(shown, changed, fresh, q.limit) {
            return Ok(page);
        }
    }
    ::metrics::counter!("timeline_refresh_fallbacks_total").increment(1);
    read.lock().whole = true;
    load_page(conn, customer_id, &q).await
}

/// Newest first, as the page's SQL sorts (the nine kinds are plain lowercase words, which
/// Postgres's collations order as bytes do).
fn newest_first(a: &TimelineEvent, b: &TimelineEvent) -> std::cmp::Ordering {
    (b.at, &b.kind, b.entity_id).cmp(&(a.at, &a.kind, a.entity_id))
}

/// The first page of `limit` events after events of the `changed` kinds were created, updated
/// or deleted: `fresh` holds up to `limit + 1` of the newest events of each of those kinds,
/// `shown` the page before. None when that cannot be known without reading the whole page.
///
/// Why it holds: every candidate (a fresh event, or an event of another kind on `shown`) is
/// current. An event that is not a candidate is either of a changed kind and behind `limit + 1`
/// candidates of its kind, or of another kind and behind the last event `shown` held (`shown`
/// held every event newer than that one). So once the page's last candidate is no further back
/// than `shown`'s last event, no other event belongs on it. Whether more follow the page is
/// known when a candidate is left over, when `shown` had no more (then every event is a
/// candidate), or when nothing was deleted (there are at least as many events as before).
pub fn merge_first_page(
    shown: &TimelinePage,
    changed: &Changed,
    fresh: Vec<TimelineEvent>,
    limit: i64,
) -> Option<TimelinePage> {
    let is_changed = |e: &TimelineEvent| changed.kinds.contains(&e.kind.as_str());
    let mut events: Vec<TimelineEvent> = shown
        .events
        .iter()
        .filter(|e| !is_changed(e))
        .cloned()
        .chain(fresh)
        .collect();
    events.sort_by(newest_first);
    let had_more = shown.next_cursor.is_some();
    if had_more {
        let last_shown = shown.events.last()?;
        let last = events.get(usize::try_from(limit).ok()?.checked_sub(1)?)?;
        if newest_first(last, last_shown).is_gt() {
            return None;
        }
        if events.len() as i64 == limit && changed.deletions {
            return None;
        }
    }
    let next_cursor = finish_page(&mut events, limit, cursor_of).or_else(|| {
        had_more
            .then(|| events.last().map(|e| cursor_of(e).encode()))
            .flatten()
    });
    Some(TimelinePage {
        events,
        next_cursor,
        private: Vec::new(),
    })
}

impl TimelinePage {
    /// The first page as this viewer may read it.
    pub fn visible_to(self, viewer_id: &str, role: Role) -> TimelinePage {
        let others = role.can(Permission::SeeOthersPrivateNotes);
        self.narrowed(|author| others || author == viewer_id)
    }

    /// The first page for a viewer who reads the private notes of the authors `reads` accepts.
    ///
    /// Why it is exact: an event on that viewer's page has fewer than a page of the viewer's
    /// events before it, so fewer than a page of public events (all held, or the page held
    /// says more follow) and of its author's private notes (a page and one of each author's are
    /// held). Whether more follow: yes when the public page says so, or when more than a page
    /// is held for the viewer; otherwise every event the viewer may read is held.
    pub fn narrowed(self, reads: impl Fn(&str) -> bool) -> TimelinePage {
        let TimelinePage {
            mut events,
            next_cursor,
            private,
        } = self;
        let readable = |e: &TimelineEvent| match (&e.author_id, e.visibility) {
            (Some(author), Some(NoteVisibility::Private)) => reads(author),
            _ => true,
        };
        // `events` holds public events only; a private note there is refused all the same.
        events.retain(readable);
        let public_had_more = next_cursor.is_some();
        events.extend(private.into_iter().filter(readable));
        events.sort_by(newest_first);
        let next_cursor = finish_page(&mut events, DEFAULT_LIMIT, cursor_of).or_else(|| {
            public_had_more
                .then(|| events.last().map(|e| cursor_of(e).encode()))
                .flatten()
        });
        TimelinePage {
            events,
            next_cursor,
            private: Vec::new(),
        }
    }
}

fn text(data: &Value, key: &str) -> String {
    match &data[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn format_event(customer_id: i64, e: RawEvent) -> TimelineEvent {
    let d = &e.data;
    let base = format!("/customers/{customer_id}");
    let (title, summary, icon, link) = match e.kind.as_str() {
        "order" => (
            format!("Order {}", text(d, "order_number")),
            format!(
                "{} · {} via {}",
                text(d, "status"),
                crate::domain::money::format_cents(
                    d["total_cents"].as_i64().unwrap_or(0),
                    &text(d, "currency")
                ),
                text(d, "channel")
            ),
            "cart",
            format!("{base}/orders/{}", e.id),
        ),
        "loyalty" => {
            let points = d["points"].as_i64().unwrap_or(0);
            let by = text(d, "admin_name");
            (
                if points >= 0 {
                    format!("Earned {points} points")
                } else {
                    format!("Used {} points", -points)
                },
                if by.is_empty() {
                    text(d, "reason")
                } else {
                    format!("{} (by {by})", text(d, "reason"))
                },
                "star",
                format!("{base}/loyalty"),
            )
        }
        "ticket" => (
            format!("Ticket: {}", text(d, "subject")),
            format!("{} priority, {}", text(d, "priority"), text(d, "status")),
            "lifebuoy",
            format!("{base}/support/{}", e.id),
        ),
        "campaign" => (
            format!("Campaign {}", text(d, "event")),
            format!("{} ({})", text(d, "campaign"), text(d, "channel")),
            "megaphone",
            format!("{base}/marketing"),
        ),
        "session" => (
            format!("Visit on {}", text(d, "device")),
            format!(
                "{} pages in {} min from {}",
                text(d, "page_views"),
                d["duration_seconds"].as_i64().unwrap_or(0) / 60,
                text(d, "source")
            ),
            "monitor",
            format!("{base}/analytics"),
        ),
        "note" => (
            format!(
                "{} by {}",
                if text(d, "visibility") == "private" {
                    "Private note"
                } else {
                    "Note"
                },
                text(d, "author_name")
            ),
            text(d, "excerpt"),
            "note",
            format!("{base}/notes/{}", e.id),
        ),
        "tag" => (
            format!("Tagged {}", text(d, "tag")),
            format!("by {}", text(d, "by")),
            "tag",
            format!("{base}/tags"),
        ),
        "segment" => (
            format!("Joined segment {}", text(d, "segment")),
            format!("{} assignment", text(d, "source")),
            "users",
            format!("{base}/segments"),
        ),
        _ => (
            format!("Email: {}", text(d, "subject")),
            format!("{} by {}", text(d, "status"), text(d, "queued_by")),
            "mail",
            format!("{base}/marketing"),
        ),
    };
    let is_note = e.kind == "note";
    let author_id = is_note.then(|| text(d, "author_id"));
    let visibility = if is_note {
        text(d, "visibility").parse::<NoteVisibility>().ok()
    } else {
        None
    };
    TimelineEvent {
        id: format!("{}:{}", e.kind, e.id),
        kind: e.kind,
        entity_id: e.id,
        at: e.at,
        title,
        summary,
        icon: icon.to_owned(),
        link,
        author_id,
        visibility,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    #[test]
    fn every_kind_has_one_source() {
        let kinds: Vec<&str> = SOURCES.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, KINDS);
    }

    fn event(kind: &str, id: i64, secs: i64, title: &str) -> TimelineEvent {
        TimelineEvent {
            id: format!("{kind}:{id}"),
            kind: kind.to_owned(),
            entity_id: id,
            // unwrap: small, valid timestamps.
            at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
            title: title.to_owned(),
            summary: String::new(),
            icon: String::new(),
            link: String::new(),
            author_id: None,
            visibility: None,
        }
    }

    /// The event's kind as `Changed` names it (every test event has one of `KINDS`).
    fn kind_of(e: &TimelineEvent) -> &'static str {
        KINDS
            .iter()
            .copied()
            .find(|k| *k == e.kind)
            .unwrap_or("order")
    }

    /// What the page's SQL answers for a customer whose events are `all`.
    fn reference_page(all: &[TimelineEvent], limit: i64) -> TimelinePage {
        let mut events = all.to_vec();
        events.sort_by(newest_first);
        let next_cursor = finish_page(&mut events, limit, cursor_of);
        TimelinePage {
            events,
            next_cursor,
            private: Vec::new(),
        }
    }

    /// What the per-kind statements answer: up to `limit + 1` of each kind's newest events.
    fn fresh_of(all: &[TimelineEvent], kinds: &[&str], limit: i64) -> Vec<TimelineEvent> {
        kinds
            .iter()
            .flat_map(|k| {
                let mut of_kind: Vec<TimelineEvent> =
                    all.iter().filter(|e| e.kind == *k).cloned().collect();
                of_kind.sort_by(newest_first);
                of_kind.truncate(limit as usize + 1);
                of_kind
            })
            .collect()
    }

    /// A change to the customer's events: created, updated in place, updated to another
    /// time, deleted.
    #[derive(Debug, Clone)]
    enum Edit {
        Create { kind: usize, secs: i64 },
        Update { index: usize },
        Move { index: usize, secs: i64 },
        Delete { index: usize },
    }

    fn edits() -> impl Strategy<Value = Vec<Edit>> {
        let edit = prop_oneof![
            (0usize..KINDS.len(), 0i64..60).prop_map(|(kind, secs)| Edit::Create { kind, secs }),
            any::<usize>().prop_map(|index| Edit::Update { index }),
            (any::<usize>(), 0i64..60).prop_map(|(index, secs)| Edit::Move { index, secs }),
            any::<usize>().prop_map(|index| Edit::Delete { index }),
        ];
        proptest::collection::vec(edit, 0..8)
    }

    #[test]
    fn a_deletion_behind_the_page_leaves_unknown_whether_more_follow() {
        let all = [
            event("order", 3, 30, ""),
            event("order", 2, 20, ""),
            event("order", 1, 10, ""),
        ];
        let shown = reference_page(&all, 2);
        assert!(shown.next_cursor.is_some());
        // Order 1, behind the page, is gone: the fresh orders are exactly the page.
        let fresh = all[..2].to_vec();
        let deleted = Changed {
            kinds: vec!["order"],
            deletions: true,
        };
        assert_eq!(merge_first_page(&shown, &deleted, fresh.clone(), 2), None);
        // Had order 3 been updated instead, order 1 would still follow the page.
        let updated = Changed {
            kinds: vec!["order"],
            deletions: false,
        };
        let page = merge_first_page(&shown, &updated, fresh, 2);
        assert_eq!(page, Some(shown));
    }

    /// A note event by `author` (one of a few), public or private.
    fn note(id: i64, secs: i64, author: usize, private: bool) -> TimelineEvent {
        TimelineEvent {
            author_id: Some(["ann", "bob", "cy"][author % 3].to_owned()),
            visibility: Some(if private {
                NoteVisibility::Private
            } else {
                NoteVisibility::Public
            }),
            ..event("note", id, secs, "")
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Every viewer's first page, folded from the page loaded for all (`load_shared`: the
        /// public page, each author's newest private notes apart), is the page the viewer's own
        /// query reads: others' private notes take no place on it and hide nothing behind it.
        #[test]
        fn every_viewer_reads_the_page_of_their_own_query(
            // Public events and notes (often fewer than a page, in a quarter of cases none) and
            // private notes of two authors, which often pass the page and one held of each.
            public in prop_oneof![
                Just(Vec::new()),
                proptest::collection::vec((0usize..KINDS.len(), 0i64..80, any::<bool>()), 0..30),
            ],
            private in proptest::collection::vec((0i64..80, 0usize..2), 0..60),
        ) {
            let public_events = public.iter().map(|(kind, secs, author)| {
                (KINDS[*kind], *secs, usize::from(*author), false)
            });
            let note_events = private
                .iter()
                .map(|(secs, author)| ("note", *secs, *author, true));
            let all: Vec<TimelineEvent> = public_events
                .chain(note_events)
                .enumerate()
                .map(|(id, (kind, secs, author, private))| match kind {
                    "note" => note(id as i64, secs, author, private),
                    other => event(other, id as i64, secs, ""),
                })
                .collect();
            let is_private =
                |e: &TimelineEvent| e.visibility == Some(NoteVisibility::Private);
            let public: Vec<TimelineEvent> = all.iter().filter(|e| !is_private(e)).cloned().collect();
            let mut private = Vec::new();
            for author in ["ann", "bob", "cy"] {
                let mut theirs: Vec<TimelineEvent> = all
                    .iter()
                    .filter(|e| is_private(e) && e.author_id.as_deref() == Some(author))
                    .cloned()
                    .collect();
                theirs.sort_by(newest_first);
                theirs.truncate(DEFAULT_LIMIT as usize + 1);
                private.extend(theirs);
            }
            let shared = TimelinePage { private, ..reference_page(&public, DEFAULT_LIMIT) };
            for (viewer, role) in [
                ("ann", Role::Support),
                ("bob", Role::Marketing),
                ("dee", Role::Analyst),
                ("zed", Role::Admin),
            ] {
                let own_query: Vec<TimelineEvent> = all
                    .iter()
                    .filter(|e| match (&e.author_id, e.visibility) {
                        (Some(author), Some(visibility)) => {
                            crate::view::notes::visible_to(visibility, author, viewer, role)
                        }
                        _ => true,
                    })
                    .cloned()
                    .collect();
                prop_assert_eq!(
                    shared.clone().visible_to(viewer, role),
                    reference_page(&own_query, DEFAULT_LIMIT),
                    "{} as {:?}", viewer, role
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Refreshing the changed kinds into the shown page gives exactly the page read whole,
        /// or declines; it always answers when events were only created or updated in place.
        #[test]
        fn a_refreshed_page_is_the_page_read_whole(
            start in proptest::collection::vec((0usize..KINDS.len(), 0i64..60), 0..40),
            edits in edits(),
            limit in 1i64..8,
        ) {
            let mut all: Vec<TimelineEvent> = start
                .iter()
                .enumerate()
                .map(|(id, (kind, secs))| event(KINDS[*kind], id as i64, *secs, "before"))
                .collect();
            let shown = reference_page(&all, limit);
            let mut kinds: Vec<&'static str> = Vec::new();
            let mut in_place = true;
            let mut deletions = false;
            let mut next_id = all.len() as i64;
            for edit in edits {
                let touched = match edit {
                    Edit::Create { kind, secs } => {
                        next_id += 1;
                        all.push(event(KINDS[kind], next_id, secs, "created"));
                        Some(KINDS[kind])
                    }
                    Edit::Update { index } if !all.is_empty() => {
                        let i = index % all.len();
                        all[i].title = "updated".to_owned();
                        Some(kind_of(&all[i]))
                    }
                    Edit::Move { index, secs } if !all.is_empty() => {
                        in_place = false;
                        let i = index % all.len();
                        all[i].at = DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap_or(all[i].at);
                        Some(kind_of(&all[i]))
                    }
                    Edit::Delete { index } if !all.is_empty() => {
                        in_place = false;
                        deletions = true;
                        let gone = all.remove(index % all.len());
                        Some(kind_of(&gone))
                    }
                    _ => None,
                };
                if let Some(kind) = touched && !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            let fresh = fresh_of(&all, &kinds, limit);
            let changed = Changed { kinds, deletions };
            let merged = merge_first_page(&shown, &changed, fresh, limit);
            let whole = reference_page(&all, limit);
            match merged {
                Some(page) => prop_assert_eq!(page, whole),
                None => prop_assert!(!in_place, "declined creations and updates in place"),
            }
        }
    }
}
