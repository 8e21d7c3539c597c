//! The notes slice: pinned notes first, then newest first. Private notes are seen by their
//! author and by roles with `see_others_private_notes` only (`visible_to`).

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
    'total', (SELECT count(*) FROM customer_notes WHERE customer_id = $1),
    'items', (SELECT coalesce(jsonb_agg(n ORDER BY n.pinned DESC, n.created_at DESC, n.id DESC), '[]') FROM
        (SELECT id, author_id, author_name, body, visibility, pinned, created_at, updated_at FROM customer_notes
         WHERE customer_id = $1 ORDER BY pinned DESC, created_at DESC, id DESC LIMIT $2) n)
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

impl NotesSlice {
    /// The notes this viewer may read; `total` counts only those loaded and visible.
    pub fn visible_to(mut self, viewer_id: &str, role: Role) -> NotesSlice {
        let before = self.items.len() as i64;
        self.items
            .retain(|n| visible_to(n.visibility, &n.author_id, viewer_id, role));
        self.total -= before - self.items.len() as i64;
        self
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
}
