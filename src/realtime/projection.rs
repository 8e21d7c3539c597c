//! What each viewer may see of a hub's view: the masking class decides the personal data, and
//! private notes (and their timeline events) are kept for their author and for roles allowed
//! to read others' private notes. Sessions with the same projection share every frame; viewers
//! without private notes in the view share one projection per masking class, so a hub keeps
//! (and diffs) a handful of projections however many admins watch.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::db::enums::NoteVisibility;
use crate::domain::masking::Masking;
use crate::domain::roles::{Permission, Role};
use crate::view::notes::NotesSlice;
use crate::view::timeline::TimelinePage;

/// Which private notes a projection keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NotesScope {
    /// Every one: roles allowed to read others' private notes.
    All,
    /// None: a viewer whose own private notes the view does not show.
    PublicOnly,
    /// This viewer's own.
    Own(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectionKey {
    pub masking: Masking,
    pub notes: NotesScope,
}

impl ProjectionKey {
    /// `private_authors`: the authors of the private notes the view shows.
    pub fn for_viewer(
        viewer_id: &str,
        role: Role,
        private_authors: &BTreeSet<String>,
    ) -> ProjectionKey {
        let notes = if role.can(Permission::SeeOthersPrivateNotes) {
            NotesScope::All
        } else if private_authors.contains(viewer_id) {
            NotesScope::Own(viewer_id.to_owned())
        } else {
            NotesScope::PublicOnly
        };
        ProjectionKey {
            masking: Masking::for_role(role),
            notes,
        }
    }

    /// The view (or the slices of it given) of this projection, from the hub's view of the
    /// same masking class: the notes and the timeline as loaded for every viewer, narrowed to
    /// the private notes this projection reads.
    pub fn project(&self, view: &Value) -> Result<Value, serde_json::Error> {
        let reads = |author: &str| match &self.notes {
            NotesScope::All => true,
            NotesScope::PublicOnly => false,
            NotesScope::Own(viewer) => viewer == author,
        };
        let mut out = view.clone();
        if let Some(slice) = out.get_mut("notes") {
            let notes: NotesSlice = serde_json::from_value(slice.take())?;
            *slice = serde_json::to_value(notes.narrowed(reads))?;
        }
        if let Some(slice) = out.get_mut("timeline") {
            let page: TimelinePage = serde_json::from_value(slice.take())?;
            *slice = serde_json::to_value(page.narrowed(reads))?;
        }
        Ok(out)
    }
}

/// The author of a private note or note event; None for anything public.
fn private_author(item: &Value) -> Option<&str> {
    let private = item["visibility"]
        .as_str()
        .and_then(|v| v.parse::<NoteVisibility>().ok())
        == Some(NoteVisibility::Private);
    if private {
        item["author_id"].as_str()
    } else {
        None
    }
}

/// The authors of the private notes and note events in a notes or timeline slice.
pub fn private_authors_in(slice: &Value, into: &mut BTreeSet<String>) {
    for list in ["items", "events", "private"] {
        for item in slice[list].as_array().into_iter().flatten() {
            if let Some(author) = private_author(item) {
                into.insert(author.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(id: i64, author: &str, visibility: &str) -> Value {
        json!({"id": id, "author_id": author, "author_name": author, "body": "x",
               "visibility": visibility, "pinned": false,
               "created_at": format!("2026-12-0{id}T10:00:00Z"), "updated_at": "2026-12-01T10:00:00Z"})
    }

    fn event(kind: &str, id: i64, author: Option<&str>) -> Value {
        json!({"id": format!("{kind}:{id}"), "kind": kind, "entity_id": id,
               "at": format!("2026-12-0{id}T10:00:00Z"), "title": "", "summary": "", "icon": "",
               "link": "", "author_id": author, "visibility": author.map(|_| "private")})
    }

    /// Notes and timeline as loaded for every viewer: a public note by b, a private one by a.
    fn view() -> Value {
        json!({
            "notes": {"total": 1, "items": [note(1, "b", "public")],
                      "private": [note(2, "a", "private")], "private_counts": {"a": 1}},
            "timeline": {"events": [event("order", 1, None)], "next_cursor": null,
                         "private": [event("note", 2, Some("a"))]}
        })
    }

    #[test]
    fn private_notes_of_others_are_removed() {
        let view = view();
        let mut authors = BTreeSet::new();
        private_authors_in(&view["notes"], &mut authors);
        private_authors_in(&view["timeline"], &mut authors);
        assert_eq!(authors.iter().collect::<Vec<_>>(), ["a"]);
        let b = ProjectionKey::for_viewer("b", Role::Support, &authors);
        assert_eq!(b.notes, NotesScope::PublicOnly);
        let b = b.project(&view).unwrap();
        assert_eq!(b["notes"]["total"], 1);
        assert_eq!(b["notes"]["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["timeline"]["events"].as_array().map(Vec::len), Some(1));
        assert!(b["notes"].get("private").is_none() && b["timeline"].get("private").is_none());
        let a = ProjectionKey::for_viewer("a", Role::Marketing, &authors);
        assert_eq!(a.notes, NotesScope::Own("a".into()));
        let a = a.project(&view).unwrap();
        assert_eq!(a["notes"]["total"], 2);
        assert_eq!(a["notes"]["items"][0]["id"], 2, "newest first");
        assert_eq!(a["timeline"]["events"][0]["id"], "note:2");
        let admin = ProjectionKey::for_viewer("z", Role::Admin, &authors);
        assert_eq!(admin.notes, NotesScope::All);
        assert_eq!(
            admin.project(&view).unwrap(),
            a,
            "the author and admins read the same"
        );
    }

    #[test]
    fn viewers_without_private_notes_share_a_projection() {
        let authors = BTreeSet::from(["a".to_owned()]);
        assert_eq!(
            ProjectionKey::for_viewer("c", Role::Support, &authors),
            ProjectionKey::for_viewer("d", Role::Support, &authors)
        );
        assert_ne!(
            ProjectionKey::for_viewer("a", Role::Support, &authors),
            ProjectionKey::for_viewer("d", Role::Support, &authors)
        );
    }
}
