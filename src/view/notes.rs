//! The notes slice: pinned notes first, then newest first. Private notes are seen by their
//! author and by roles with `see_others_private_notes` only. The slice is loaded once for every
//! viewer (hubs hold it, the read cache keeps it): the public notes, and apart from them each
//! author's newest private notes with how many each has, so that `narrowed` can give every
//! viewer exactly the page and total that viewer may read (others' private notes neither take
//! places on the page nor count).

use std::collections::BTreeMap;

use crate::db::prepared::{bind, prepared};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};

use crate::db::enums::NoteVisibility;
use crate::domain::roles::{Permission, Role};
use crate::view::{JsonRow, decode};

/// Notes shown in the 360 view; older ones page through the notes route.
pub const NOTES_IN_VIEW: i64 = 50;

#[derive(
    Debug,
    Clone,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    diesel::Queryable,
    diesel::Selectable,
)]
#[diesel(table_name = crate::db::schema::customer_notes)]
pub struct Note {
    pub id: i64,
    pub author_id: String,
    pub author_name: String,
    pub body: String,
    pub visibility: NoteVisibility,
    pub pinned: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotesSlice {
    pub items: Vec<Note>,
    pub total: i64,
    /// As loaded for every viewer: each author's newest private notes, `NOTES_IN_VIEW` at most
    /// (enough for any viewer's page), folded into `items` by `narrowed`; never sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub private: Vec<Note>,
    /// How many private notes each author has; never sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(ignore)]
    pub private_counts: BTreeMap<String, i64>,
}

/// Whether a viewer may read a note.
pub fn visible_to(
    visibility: NoteVisibility,
    author_id: &str,
    viewer_id: &str,
    role: Role,
) -> bool {
    visible(
        visibility,
        author_id,
        viewer_id,
        role.can(Permission::SeeOthersPrivateNotes),
    )
}

/// Whether a viewer who may (or may not) read others' private notes may read this one.
pub fn visible(
    visibility: NoteVisibility,
    author_id: &str,
    viewer_id: &str,
    sees_others_private: bool,
) -> bool {
    visibility == NoteVisibility::Public || author_id == viewer_id || sees_others_private
}

const SQL: &str = "SELECT jsonb_build_object(
    'total', (SELECT count(*) FROM customer_notes WHERE customer_id = $1 AND visibility = 'public'),
    'items', (SELECT coalesce(jsonb_agg(n ORDER BY n.pinned DESC, n.created_at DESC, n.id DESC), '[]') FROM
        (SELECT id, author_id, author_name, body, visibility, pinned, created_at, updated_at FROM customer_notes
         WHERE customer_id = $1 AND visibility = 'public'
         ORDER BY pinned DESC, created_at DESC, id DESC LIMIT $2) n),
    'private', (SELECT coalesce(jsonb_agg(to_jsonb(n) - 'rank' ORDER BY n.pinned DESC, n.created_at DESC, n.id DESC), '[]') FROM
        (SELECT id, author_id, author_name, body, visibility, pinned, created_at, updated_at,
                row_number() OVER (PARTITION BY author_id ORDER BY pinned DESC, created_at DESC, id DESC) AS rank
         FROM customer_notes WHERE customer_id = $1 AND visibility = 'private') n
        WHERE n.rank <= $2),
    'private_counts', (SELECT coalesce(jsonb_object_agg(author_id, n), '{}') FROM
        (SELECT author_id, count(*) AS n FROM customer_notes
         WHERE customer_id = $1 AND visibility = 'private' GROUP BY author_id) c)
  ) AS data";

pub async fn load(mut conn: &AsyncPgConnection, customer_id: i64) -> QueryResult<NotesSlice> {
    decode(
        prepared(
            SQL,
            vec![
                bind::<BigInt, _>(customer_id),
                bind::<BigInt, _>(NOTES_IN_VIEW),
            ],
        )
        .get_result::<JsonRow>(&mut conn)
        .await?,
    )
}

/// The slice's order, as its SQL sorts: pinned notes first, then newest first.
fn page_order(n: &Note) -> std::cmp::Reverse<(bool, DateTime<Utc>, i64)> {
    std::cmp::Reverse((n.pinned, n.created_at, n.id))
}

impl NotesSlice {
    /// The slice as this viewer may read it.
    pub fn visible_to(self, viewer_id: &str, role: Role) -> NotesSlice {
        let others = role.can(Permission::SeeOthersPrivateNotes);
        self.narrowed(|author| others || author == viewer_id)
    }

    /// The slice for a viewer who reads the private notes of the authors `reads` accepts: the
    /// first `NOTES_IN_VIEW` of the public notes and those, and how many there are in all. Exact
    /// because each author's first `NOTES_IN_VIEW` private notes are held.
    pub fn narrowed(self, reads: impl Fn(&str) -> bool) -> NotesSlice {
        let NotesSlice {
            mut items,
            total,
            private,
            private_counts,
        } = self;
        let readable = |n: &Note| n.visibility == NoteVisibility::Public || reads(&n.author_id);
        // `items` holds public notes only; a private one there is refused all the same.
        items.retain(readable);
        items.extend(private.into_iter().filter(readable));
        items.sort_by_key(page_order);
        items.truncate(usize::try_from(NOTES_IN_VIEW).unwrap_or(usize::MAX));
        let private_total: i64 = private_counts
            .iter()
            .filter(|(author, _)| reads(author))
            .map(|(_, n)| n)
            .sum();
        NotesSlice {
            items,
            total: total + private_total,
            private: Vec::new(),
            private_counts: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_notes() {
        assert!(visible_to(NoteVisibility::Public, "a", "b", Role::Analyst));
        assert!(visible_to(
            NoteVisibility::Private,
            "a",
            "a",
            Role::Marketing
        ));
        assert!(!visible_to(
            NoteVisibility::Private,
            "a",
            "b",
            Role::Support
        ));
        assert!(visible_to(NoteVisibility::Private, "a", "b", Role::Admin));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Every viewer's notes, folded from the slice loaded for all (the public page, each
        /// author's first private notes and counts apart), are the first notes and the count of
        /// those the viewer may read, however many private notes others wrote.
        #[test]
        fn every_viewer_reads_their_own_notes_page(
            // Public notes (often fewer than a view's, sometimes none) and private ones of two
            // authors, which often pass the `NOTES_IN_VIEW` held of each.
            public in proptest::collection::vec((0usize..2, proptest::bool::ANY, 0i64..200), 0..60),
            private in proptest::collection::vec((0usize..2, proptest::bool::ANY, 0i64..200), 0..200),
        ) {
            let notes = public
                .iter()
                .map(|(author, pinned, secs)| (*author, false, *pinned, *secs))
                .chain(private.iter().map(|(author, pinned, secs)| (*author, true, *pinned, *secs)));
            let all: Vec<Note> = notes
                .enumerate()
                .map(|(id, (author, private, pinned, secs))| Note {
                    id: id as i64,
                    author_id: ["ann", "bob"][author].to_owned(),
                    author_name: String::new(),
                    body: String::new(),
                    visibility: if private { NoteVisibility::Private } else { NoteVisibility::Public },
                    pinned,
                    // unwrap: small, valid timestamps.
                    created_at: DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap(),
                    updated_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                })
                .collect();
            let first = |mut notes: Vec<Note>| {
                notes.sort_by_key(page_order);
                notes.truncate(NOTES_IN_VIEW as usize);
                notes
            };
            let public: Vec<Note> = all.iter().filter(|n| n.visibility == NoteVisibility::Public).cloned().collect();
            let mut private = Vec::new();
            let mut private_counts = BTreeMap::new();
            for author in ["ann", "bob", "cy"] {
                let theirs: Vec<Note> = all
                    .iter()
                    .filter(|n| n.visibility == NoteVisibility::Private && n.author_id == author)
                    .cloned()
                    .collect();
                if !theirs.is_empty() {
                    private_counts.insert(author.to_owned(), theirs.len() as i64);
                }
                private.extend(first(theirs));
            }
            let shared = NotesSlice { total: public.len() as i64, items: first(public), private, private_counts };
            for (viewer, role) in [("ann", Role::Support), ("bob", Role::Marketing), ("dee", Role::Analyst), ("zed", Role::Admin)] {
                let readable: Vec<Note> = all
                    .iter()
                    .filter(|n| visible_to(n.visibility, &n.author_id, viewer, role))
                    .cloned()
                    .collect();
                let expected = NotesSlice {
                    total: readable.len() as i64,
                    items: first(readable),
                    private: Vec::new(),
                    private_counts: BTreeMap::new(),
                };
                proptest::prop_assert_eq!(shared.clone().visible_to(viewer, role), expected, "{} as {:?}", viewer, role);
            }
        }
    }
}
