//! The Customer 360 view: named slices, each with its own loader, and which slices a change
//! event of each kind affects. A whole view is a fixed number of queries, pipelined on one
//! connection (diesel-async sends them all before reading any answer).

pub mod analytics;
pub mod cache;
pub mod cursor;
pub mod insights;
pub mod labels;
pub mod loyalty;
pub mod marketing;
pub mod notes;
pub mod orders;
pub mod profile;
pub mod support;
pub mod timeline;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::masking::Masking;
use crate::domain::metrics::Metrics;

/// One row holding a slice as JSON, built by Postgres.
#[derive(diesel::QueryableByName)]
pub struct JsonRow {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    data: JsonText,
}

/// A `jsonb` value as the text Postgres sent. Decoding it straight into the slice's type skips
/// the tree of `serde_json::Value`s diesel would build first (and drop at once): building it
/// took 5 % of the server's CPU at 200 changes/s (load-tests/README.md).
struct JsonText(Vec<u8>);

impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for JsonText {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        // The binary form of jsonb: a version byte (1), then the text.
        match value.as_bytes().split_first() {
            Some((1, text)) => Ok(JsonText(text.to_vec())),
            _ => Err("unsupported jsonb encoding version".into()),
        }
    }
}

/// Decodes a slice built by SQL; a mismatch is a bug in this crate, reported as such.
pub fn decode<T: DeserializeOwned>(row: JsonRow) -> QueryResult<T> {
    serde_json::from_slice(&row.data.0)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Slice {
    Profile,
    Metrics,
    Orders,
    Loyalty,
    Marketing,
    Support,
    Timeline,
    Analytics,
    Health,
    Churn,
    Notes,
    Tags,
    Segments,
}

impl Slice {
    pub const ALL: [Slice; 13] = [
        Slice::Profile,
        Slice::Metrics,
        Slice::Orders,
        Slice::Loyalty,
        Slice::Marketing,
        Slice::Support,
        Slice::Timeline,
        Slice::Analytics,
        Slice::Health,
        Slice::Churn,
        Slice::Notes,
        Slice::Tags,
        Slice::Segments,
    ];

    /// The slice's key in the view.
    pub fn name(self) -> &'static str {
        match self {
            Slice::Profile => "profile",
            Slice::Metrics => "metrics",
            Slice::Orders => "orders",
            Slice::Loyalty => "loyalty",
            Slice::Marketing => "marketing",
            Slice::Support => "support",
            Slice::Timeline => "timeline",
            Slice::Analytics => "analytics",
            Slice::Health => "health",
            Slice::Churn => "churn",
            Slice::Notes => "notes",
            Slice::Tags => "tags",
            Slice::Segments => "segments",
        }
    }

    /// The slices a change event can alter; an unknown kind alters everything.
    pub fn affected_by(kind: &str, entity_id: &str, customer_id: i64) -> &'static [Slice] {
        use Slice::*;
        if is_derived_history(kind, entity_id, customer_id) {
            // The health trend; the churn slice shows no history.
            return &[Health];
        }
        if is_catalog_change(entity_id) {
            // A name changed: only the slices that show it (tags and segments show their
            // names only, as below).
            match kind {
                "marketing" => return &[Marketing, Timeline],
                "session" => return &[Analytics],
                _ => {}
            }
        }
        match kind {
            // Automatic segments follow orders and the profile through the derived worker,
            // whose assignment rows are `segment` events of their own.
            "order" => &[Orders, Metrics, Health, Churn, Timeline, Analytics],
            "loyalty" => &[Loyalty, Health, Timeline],
            "ticket" => &[Support, Health, Churn, Timeline],
            "marketing" => &[Marketing, Health, Churn, Timeline],
            "session" => &[Analytics, Health, Timeline],
            "note" => &[Notes, Timeline],
            "tag" => &[Tags, Timeline],
            "segment" => &[Segments, Marketing, Timeline],
            "profile" => &[Profile, Health, Churn],
            _ => &Slice::ALL,
        }
    }
}

/// Whether a change event is a catalog row's change (migration 11: a campaign, tag, segment or
/// category renamed), whose entity names the catalog (`campaign:12`) where others hold a row id.
pub fn is_catalog_change(entity_id: &str) -> bool {
    entity_id.contains(':')
}

/// Whether a change event is a health or churn history row written by the derived worker:
/// kind `profile` like a change of the customer's own row, but its entity is the history row.
/// (A history row numbered like its customer reads as a profile change: a reload more, never
/// one fewer.)
pub fn is_derived_history(kind: &str, entity_id: &str, customer_id: i64) -> bool {
    kind == "profile" && entity_id != customer_id.to_string()
}

/// Everything an admin sees about one customer. The top-level keys are the slice names.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub profile: profile::Profile,
    pub metrics: Metrics,
    pub orders: orders::OrdersSlice,
    pub loyalty: loyalty::LoyaltySlice,
    pub marketing: marketing::MarketingSlice,
    pub support: support::SupportSlice,
    pub timeline: timeline::TimelinePage,
    pub analytics: analytics::Analytics,
    pub health: insights::HealthSlice,
    pub churn: insights::ChurnSlice,
    pub notes: notes::NotesSlice,
    pub tags: Vec<labels::AssignedTag>,
    pub segments: Vec<labels::AssignedSegment>,
}

impl CustomerView {
    /// The view as one viewer may read it: others' private notes (and their timeline events)
    /// go unless the role may read them.
    pub fn for_viewer(mut self, viewer_id: &str, role: crate::domain::roles::Role) -> CustomerView {
        self.notes = self.notes.visible_to(viewer_id, role);
        self.timeline = self.timeline.visible_to(viewer_id, role);
        self
    }
}

/// Loads the whole view of a customer for one masking class, all slices from one snapshot (a
/// read-only repeatable-read transaction) so they agree with each other. The notes and the
/// timeline hold every author's private notes apart from the public ones; `for_viewer` folds
/// in those each viewer may read before anything leaves the server. `Err(NotFound)` when there
/// is no such customer.
pub async fn load(
    conn: &mut AsyncPgConnection,
    customer_id: i64,
    masking: Masking,
    now: DateTime<Utc>,
) -> QueryResult<CustomerView> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn: &mut AsyncPgConnection| {
            load_in_snapshot(conn, customer_id, masking, now).await
        })
        .await
}

async fn load_in_snapshot(
    conn: &AsyncPgConnection,
    customer_id: i64,
    masking: Masking,
    now: DateTime<Utc>,
) -> QueryResult<CustomerView> {
    let start = cursor::Cursor::start();
    let (
        profile,
        facts,
        orders,
        loyalty,
        marketing,
        support,
        timeline,
        analytics,
        history,
        notes,
        tags,
        segments,
    ) = futures_util::try_join!(
        profile::load(conn, customer_id),
        insights::load_facts(conn, customer_id, now),
        orders::load_page(conn, customer_id, &start, cursor::DEFAULT_LIMIT),
        loyalty::load(conn, customer_id, now),
        marketing::load(conn, customer_id),
        support::load_page(conn, customer_id, &start, cursor::DEFAULT_LIMIT),
        timeline::load_shared(conn, customer_id),
        analytics::load(conn, customer_id),
        insights::load_history(conn, customer_id, now),
        notes::load(conn, customer_id),
        labels::load_tags(conn, customer_id),
        labels::load_segments(conn, customer_id),
    )?;
    let derived = insights::derive(&facts, now);
    let mut marketing = marketing;
    marketing.segments = segments.iter().map(|s| s.name.clone()).collect();
    Ok(CustomerView {
        profile: profile.masked(masking),
        metrics: derived.metrics.clone(),
        orders,
        loyalty: loyalty.masked(masking),
        marketing,
        support,
        timeline,
        analytics,
        health: insights::HealthSlice::new(&derived, &history),
        churn: insights::ChurnSlice::new(&derived),
        notes,
        tags,
        segments,
    })
}

/// A change event of the customer committed in the snapshot a view was loaded from.
#[derive(Debug, Clone, diesel::QueryableByName)]
pub struct Committed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub kind: String,
    /// created, updated or deleted.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub op: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub entity_id: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub at: DateTime<Utc>,
}

/// What a hub asks of a reload.
pub struct Reload<'a> {
    pub customer_id: i64,
    pub masking: Masking,
    /// The slices to load…
    pub slices: &'a [Slice],
    /// …for these changes.
    pub batch: &'a [Committed],
    /// Events the hub has shown already, or that are in `batch`.
    pub known: &'a std::collections::HashSet<uuid::Uuid>,
    /// The timeline's first page as the hub shows it (JSON), so that only the kinds of events
    /// that changed are read again. None: read it whole.
    pub shown_timeline: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// The customer's change events from this time on are returned.
    pub events_since: DateTime<Utc>,
}

/// How a reload reads the timeline: only the kinds of events that changes touched, merged into
/// the page shown (`timeline::refresh_first_page`), or the whole page.
#[derive(Debug, Clone, PartialEq)]
enum TimelineRead<'a> {
    Kinds {
        shown: &'a timeline::TimelinePage,
        changed: timeline::Changed,
    },
    Whole,
}

impl<'a> TimelineRead<'a> {
    /// Nothing changed yet on the page shown; the whole page when the hub shows none.
    fn from(shown: Option<&'a timeline::TimelinePage>) -> Self {
        match shown {
            Some(shown) => TimelineRead::Kinds {
                shown,
                changed: timeline::Changed::default(),
            },
            None => TimelineRead::Whole,
        }
    }

    /// For `changes` of the customer, starting from `self`.
    fn with<'c>(
        mut self,
        changes: impl IntoIterator<Item = &'c Committed>,
        customer_id: i64,
    ) -> Self {
        for c in changes {
            if !Slice::affected_by(&c.kind, &c.entity_id, customer_id).contains(&Slice::Timeline) {
                continue;
            }
            let TimelineRead::Kinds { changed, .. } = &mut self else {
                return self;
            };
            let Some(kinds) = timeline::kinds_changed_by(&c.kind) else {
                return TimelineRead::Whole;
            };
            match c.op.as_str() {
                "created" | "updated" => {}
                "deleted" => changed.deletions = true,
                _ => return TimelineRead::Whole,
            }
            for k in kinds {
                if !changed.kinds.contains(k) {
                    changed.kinds.push(k);
                }
            }
        }
        self
    }
}

/// Loads `slices` (as JSON, for the live hubs) from one snapshot like `load`, with the
/// customer's change events written since `events_since` that the snapshot shows. A hub names
/// those events as causes of what it sends, so their own arrival later needs no recompute; to
/// make that true of every one of them, the slices of any such event not `known` to the hub
/// already (the derived worker's rows that followed the change, typically) are loaded too, in
/// the same snapshot. The timeline is read only for the kinds of events that changed and merged
/// into `shown_timeline` where the hub shows one (`timeline::refresh_first_page`). Returns the
/// slices, which can be more than asked, and the events.
pub async fn load_slices(
    conn: &mut AsyncPgConnection,
    reload: &Reload<'_>,
) -> QueryResult<(serde_json::Map<String, serde_json::Value>, Vec<Committed>)> {
    use crate::db::prepared::{bind, prepared};
    use diesel::sql_types::{BigInt, Timestamptz};
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    const EVENTS: &str = "SELECT event_id, kind, op, entity_id, at FROM change_events
                          WHERE customer_id = $1 AND at >= $2 ORDER BY at";
    let customer_id = reload.customer_id;
    let shown_timeline: Option<timeline::TimelinePage> = reload
        .shown_timeline
        .and_then(|text| serde_json::from_str(text).ok());
    let shown_timeline = shown_timeline.as_ref();
    let first_read = TimelineRead::from(shown_timeline).with(reload.batch, customer_id);
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn: &mut AsyncPgConnection| {
            // Every query here looks up one customer's rows by index, whoever the customer:
            // the plan cached for the connection fits all of them, and replanning each time
            // (which Postgres chooses for the events query, whose custom plans it estimates
            // cheaper) costs more than running it.
            conn.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan")
                .await?;
            let conn: &AsyncPgConnection = conn;
            let events = async {
                let mut conn = conn;
                prepared(
                    EVENTS,
                    vec![
                        bind::<BigInt, _>(customer_id),
                        bind::<Timestamptz, _>(reload.events_since),
                    ],
                )
                .load::<Committed>(&mut conn)
                .await
            };
            let read_kinds = timeline::ReadKinds::default();
            let first = Loads {
                customer_id,
                masking: reload.masking,
                slices: reload.slices,
                timeline: &first_read,
                read_kinds: &read_kinds,
                now: reload.now,
            };
            // Sent together: the events' answer decides only what more to load.
            let (mut view, events) =
                futures_util::try_join!(slices_in_snapshot(conn, first), events)?;
            let unseen: Vec<&Committed> = events
                .iter()
                .filter(|e| !reload.known.contains(&e.event_id))
                .collect();
            let mut more: Vec<Slice> = unseen
                .iter()
                .flat_map(|e| Slice::affected_by(&e.kind, &e.entity_id, customer_id))
                .copied()
                .filter(|s| !view.contains_key(s.name()))
                .collect();
            // A timeline read in part is merged again if these events changed other kinds:
            // from the page shown, with every kind that changed (one merge to reason about),
            // reading only the kinds not read yet. A page read whole is current already.
            let second_read = match &first_read {
                _ if read_kinds.read_whole() => None,
                TimelineRead::Kinds { .. } if view.contains_key(Slice::Timeline.name()) => {
                    match first_read.clone().with(unseen.iter().copied(), customer_id) {
                        wider if wider == first_read => None,
                        wider => Some(wider),
                    }
                }
                TimelineRead::Kinds { .. } if more.contains(&Slice::Timeline) => Some(
                    TimelineRead::from(shown_timeline).with(unseen.iter().copied(), customer_id),
                ),
                // Read whole already, or to be read whole with `more`.
                _ => None,
            };
            if second_read.is_some() {
                view.remove(Slice::Timeline.name());
                more.push(Slice::Timeline);
            }
            let second_read = second_read.unwrap_or(TimelineRead::Whole);
            more.sort_by_key(|s| *s as u8);
            more.dedup();
            if !more.is_empty() {
                ::metrics::counter!("hub_reload_extra_slices_total").increment(1);
                let second = Loads {
                    slices: &more,
                    timeline: &second_read,
                    ..first
                };
                view.extend(slices_in_snapshot(conn, second).await?);
            }
            Ok((view, events))
        })
        .await
}

fn to_json<T: Serialize>(value: T) -> QueryResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// One round of slice loads in a snapshot.
#[derive(Clone, Copy)]
struct Loads<'a> {
    customer_id: i64,
    masking: Masking,
    slices: &'a [Slice],
    timeline: &'a TimelineRead<'a>,
    /// What this snapshot has read of the timeline so far.
    read_kinds: &'a timeline::ReadKinds,
    now: DateTime<Utc>,
}

async fn slices_in_snapshot(
    conn: &AsyncPgConnection,
    round: Loads<'_>,
) -> QueryResult<serde_json::Map<String, serde_json::Value>> {
    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;
    type Loaded<'a> = BoxFuture<'a, QueryResult<Vec<(&'static str, serde_json::Value)>>>;
    let Loads {
        customer_id,
        masking,
        slices,
        timeline: timeline_read,
        read_kinds,
        now,
    } = round;
    let start = cursor::Cursor::start();
    let start = &start;
    let mut loads: Vec<Loaded<'_>> = Vec::new();
    let wants = |s: Slice| slices.contains(&s);
    if wants(Slice::Profile) {
        loads.push(
            async move {
                Ok(vec![(
                    "profile",
                    to_json(profile::load(conn, customer_id).await?.masked(masking))?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Metrics) || wants(Slice::Health) || wants(Slice::Churn) {
        loads.push(
            async move {
                let (facts, history) = futures_util::try_join!(
                    insights::load_facts(conn, customer_id, now),
                    insights::load_history(conn, customer_id, now)
                )?;
                let derived = insights::derive(&facts, now);
                Ok(vec![
                    ("metrics", to_json(&derived.metrics)?),
                    (
                        "health",
                        to_json(insights::HealthSlice::new(&derived, &history))?,
                    ),
                    ("churn", to_json(insights::ChurnSlice::new(&derived))?),
                ])
            }
            .boxed(),
        );
    }
    if wants(Slice::Orders) {
        loads.push(
            async move {
                Ok(vec![(
                    "orders",
                    to_json(
                        orders::load_page(conn, customer_id, start, cursor::DEFAULT_LIMIT).await?,
                    )?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Loyalty) {
        loads.push(
            async move {
                Ok(vec![(
                    "loyalty",
                    to_json(loyalty::load(conn, customer_id, now).await?.masked(masking))?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Marketing) || wants(Slice::Segments) {
        loads.push(
            async move {
                let (mut marketing, segments) = futures_util::try_join!(
                    marketing::load(conn, customer_id),
                    labels::load_segments(conn, customer_id)
                )?;
                marketing.segments = segments.iter().map(|s| s.name.clone()).collect();
                Ok(vec![
                    ("marketing", to_json(marketing)?),
                    ("segments", to_json(segments)?),
                ])
            }
            .boxed(),
        );
    }
    if wants(Slice::Support) {
        loads.push(
            async move {
                Ok(vec![(
                    "support",
                    to_json(
                        support::load_page(conn, customer_id, start, cursor::DEFAULT_LIMIT).await?,
                    )?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Timeline) {
        loads.push(
            async move {
                let page = match timeline_read {
                    TimelineRead::Kinds { shown, changed } => {
                        timeline::refresh_first_page(conn, customer_id, shown, changed, read_kinds)
                            .await?
                    }
                    TimelineRead::Whole => timeline::load_shared(conn, customer_id).await?,
                };
                Ok(vec![("timeline", to_json(page)?)])
            }
            .boxed(),
        );
    }
    if wants(Slice::Analytics) {
        loads.push(
            async move {
                Ok(vec![(
                    "analytics",
                    to_json(analytics::load(conn, customer_id).await?)?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Notes) {
        loads.push(
            async move {
                Ok(vec![(
                    "notes",
                    to_json(notes::load(conn, customer_id).await?)?,
                )])
            }
            .boxed(),
        );
    }
    if wants(Slice::Tags) {
        loads.push(
            async move {
                Ok(vec![(
                    "tags",
                    to_json(labels::load_tags(conn, customer_id).await?)?,
                )])
            }
            .boxed(),
        );
    }
    let mut out = serde_json::Map::new();
    for group in futures_util::future::try_join_all(loads).await? {
        out.extend(group.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }
    Ok(out)
}

/// The masked form of a clear view (JSON, as hubs hold it): only the profile and the loyalty
/// referrals carry personal data.
pub fn mask_json(view: &serde_json::Value, masking: Masking) -> QueryResult<serde_json::Value> {
    let decode_err =
        |e: serde_json::Error| diesel::result::Error::DeserializationError(Box::new(e));
    let mut out = view.clone();
    if masking == Masking::Clear {
        return Ok(out);
    }
    if let Some(p) = out.get_mut("profile") {
        let profile: profile::Profile = serde_json::from_value(p.take()).map_err(decode_err)?;
        *p = to_json(profile.masked(masking))?;
    }
    if let Some(l) = out.get_mut("loyalty") {
        let loyalty: loyalty::LoyaltySlice =
            serde_json::from_value(l.take()).map_err(decode_err)?;
        *l = to_json(loyalty.masked(masking))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_row_reloads_only_the_health_trend_and_feeds_nothing_derived() {
        assert!(is_derived_history("profile", "9001", 42));
        assert_eq!(Slice::affected_by("profile", "9001", 42), &[Slice::Health]);
        assert!(!crate::derived::event_feeds_derived_state(
            "profile", "9001", 42
        ));
        // The customer's own row: a profile change, which derived state follows.
        assert!(!is_derived_history("profile", "42", 42));
        assert!(Slice::affected_by("profile", "42", 42).contains(&Slice::Profile));
        assert!(crate::derived::event_feeds_derived_state(
            "profile", "42", 42
        ));
        assert!(!is_derived_history("order", "9001", 42));
    }

    #[test]
    fn a_catalog_rename_reloads_the_slices_showing_names_and_feeds_nothing_derived() {
        use crate::derived::event_feeds_derived_state;
        assert_eq!(
            Slice::affected_by("marketing", "campaign:12", 42),
            &[Slice::Marketing, Slice::Timeline]
        );
        assert_eq!(
            Slice::affected_by("session", "category:3", 42),
            &[Slice::Analytics]
        );
        assert!(!event_feeds_derived_state("marketing", "campaign:12", 42));
        assert!(!event_feeds_derived_state("session", "category:3", 42));
        // A campaign event of the customer's own (its row id) still feeds the scores.
        assert!(event_feeds_derived_state("marketing", "12", 42));
    }

    proptest::proptest! {
        /// A view travels as JSON text (the read cache, the hubs' held slices) and is parsed
        /// back: every float must come back as the same number, or a cached GET …/360 and a
        /// WebSocket view differ from the uncached view in the last digit (serde_json's
        /// `float_roundtrip`).
        #[test]
        fn numbers_read_back_from_json_text_are_the_numbers_written(
            x in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO
        ) {
            let text = serde_json::to_string(&x).expect("a finite float serialises");
            proptest::prop_assert_eq!(serde_json::from_str::<f64>(&text).ok(), Some(x));
            let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            proptest::prop_assert_eq!(value.to_string(), text);
        }
    }
}
