//! What each viewer may see of a hub's view: the masking class decides the personal data, and
//! private notes (and their timeline events) are kept for their author and for roles allowed
//! to read others' private notes. Sessions with the same projection share every frame.

use serde_json::Value;

use crate::db::enums::NoteVisibility;
use crate::domain::masking::Masking;
use crate::domain::roles::{Permission, Role};
use crate::view::notes::visible;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectionKey {
    pub masking: Masking,
    /// None: every private note; Some(id): only this viewer's own.
    pub own_notes_of: Option<String>,
}

impl ProjectionKey {
    pub fn for_viewer(viewer_id: &str, role: Role) -> ProjectionKey {
        ProjectionKey {
            masking: Masking::for_role(role),
            own_notes_of: (!role.can(Permission::SeeOthersPrivateNotes))
                .then(|| viewer_id.to_owned()),
        }
    }

    /// The view of this projection, from the hub's view of the same masking class.
    pub fn project(&self, view: &Value) -> Value {
        let mut out = view.clone();
        let Some(viewer) = &self.own_notes_of else {
            return out;
        };
        let keep = |item: &Value| {
            let visibility = item["visibility"]
                .as_str()
                .and_then(|v| v.parse::<NoteVisibility>().ok());
            match (visibility, item["author_id"].as_str()) {
                (Some(v), Some(author)) => visible(v, author, viewer, false),
                _ => true,
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_notes_of_others_are_removed() {
        let view = json!({
            "notes": {"total": 2, "items": [
                {"author_id": "a", "visibility": "private", "body": "x"},
                {"author_id": "b", "visibility": "public", "body": "y"}]},
            "timeline": {"events": [{"kind": "note", "author_id": "a", "visibility": "private"}, {"kind": "order", "author_id": null, "visibility": null}]}
        });
        let b = ProjectionKey::for_viewer("b", Role::Support).project(&view);
        assert_eq!(b["notes"]["total"], 1);
        assert_eq!(b["timeline"]["events"].as_array().map(Vec::len), Some(1));
        let a = ProjectionKey::for_viewer("a", Role::Marketing).project(&view);
        assert_eq!(a["notes"]["total"], 2);
        let admin = ProjectionKey::for_viewer("z", Role::Admin);
        assert_eq!(admin.own_notes_of, None);
        assert_eq!(admin.project(&view), view);
    }
}
