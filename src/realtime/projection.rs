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
    /// same masking class.
    pub fn project(&self, view: &Value) -> Value {
        let mut out = view.clone();
        let own = match &self.notes {
            NotesScope::All => return out,
            NotesScope::PublicOnly => None,
            NotesScope::Own(viewer) => Some(viewer.as_str()),
        };
        let keep = |item: &Value| match private_author(item) {
            Some(author) => Some(author) == own,
            None => true,
        };
        if let Some(items) = out
            .pointer_mut("/notes/items")
            .and_then(Value::as_array_mut)
        {
            let before = items.len();
            items.retain(keep);
            let removed = (before - items.len()) as i64;
            if let Some(total) = out.pointer_mut("/notes/total") {
                *total = Value::from(total.as_i64().unwrap_or(0) - removed);
            }
        }
        if let Some(events) = out
            .pointer_mut("/timeline/events")
            .and_then(Value::as_array_mut)
        {
            events.retain(keep);
        }
        out
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
    for list in ["items", "events"] {
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

    fn view() -> Value {
        json!({
            "notes": {"total": 2, "items": [
                {"author_id": "a", "visibility": "private", "body": "x"},
                {"author_id": "b", "visibility": "public", "body": "y"}]},
            "timeline": {"events": [{"kind": "note", "author_id": "a", "visibility": "private"}, {"kind": "order", "author_id": null, "visibility": null}]}
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
        let b = b.project(&view);
        assert_eq!(b["notes"]["total"], 1);
        assert_eq!(b["timeline"]["events"].as_array().map(Vec::len), Some(1));
        let a = ProjectionKey::for_viewer("a", Role::Marketing, &authors);
        assert_eq!(a.notes, NotesScope::Own("a".into()));
        assert_eq!(a.project(&view)["notes"]["total"], 2);
        let admin = ProjectionKey::for_viewer("z", Role::Admin, &authors);
        assert_eq!(admin.notes, NotesScope::All);
        assert_eq!(admin.project(&view), view);
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
