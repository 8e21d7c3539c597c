//! How a hub holds its customer's view: as compact JSON text, slice by slice, rather than as a
//! tree of values (which takes about ten times the memory), with a slice that reads the same
//! in several projections held once. A recompute compares texts first and diffs only the
//! slices whose text changed, once per distinct change however many projections share it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytestring::ByteString;
use serde_json::{Map, Value};

use crate::domain::masking::Masking;
use crate::realtime::diff;
use crate::realtime::projection::{NotesScope, ProjectionKey};
use crate::realtime::protocol;
use crate::view;

/// A view as JSON text per slice name.
pub type Slices = BTreeMap<String, Arc<str>>;

/// Deltas kept per projection for clients reconnecting with `since`…
pub const HISTORY: usize = 64;
/// …and at most this many bytes of them, or the size of the view itself if that is less: a
/// replay longer than the view costs the client more than a snapshot of it, so older deltas
/// would only hold memory (at 500 changes/s, tens of kilobytes per projection).
pub const HISTORY_BYTES: usize = 64 * 1024;

/// One slice as a projection shows it: its text, and its value when that differs from the
/// clear slice's (None: the clear value).
#[derive(Clone)]
pub struct Rendered {
    name: String,
    text: Arc<str>,
    value: Option<Arc<Value>>,
}

/// Stores fresh clear slices, keeping the old text (and its sharing) where nothing changed.
pub fn store_clear(clear: &mut Slices, values: &Map<String, Value>) {
    for (name, value) in values {
        let text = value.to_string();
        if clear.get(name).is_none_or(|old| **old != *text) {
            clear.insert(name.clone(), Arc::from(text));
        }
    }
}

/// Renders fresh clear slices for every projection of a hub, doing each piece of work once:
/// masking changes only the profile and loyalty slices and is done once per masking class;
/// private notes change only the notes and timeline slices and are filtered once per notes
/// scope; every other slice is the clear one, shared.
pub struct Renderer<'a> {
    clear: &'a Slices,
    values: &'a Map<String, Value>,
    by_masking: HashMap<Masking, Vec<Rendered>>,
    by_scope: HashMap<NotesScope, Vec<Rendered>>,
}

const MASKED_SLICES: [&str; 2] = ["profile", "loyalty"];
const NOTE_SLICES: [&str; 2] = ["notes", "timeline"];

impl<'a> Renderer<'a> {
    /// `values`: fresh clear slices, already stored in `clear`.
    pub fn new(clear: &'a Slices, values: &'a Map<String, Value>) -> Renderer<'a> {
        Renderer {
            clear,
            values,
            by_masking: HashMap::new(),
            by_scope: HashMap::new(),
        }
    }

    pub fn render(&mut self, key: &ProjectionKey) -> Result<Vec<Rendered>, String> {
        if !self.by_masking.contains_key(&key.masking) {
            let part = self.part(&MASKED_SLICES);
            let masked = view::mask_json(&Value::Object(part), key.masking)
                .map_err(|e| format!("masking the view failed: {e}"))?;
            let rendered = self.shaped(masked);
            self.by_masking.insert(key.masking, rendered);
        }
        if !self.by_scope.contains_key(&key.notes) {
            let part = self.part(&NOTE_SLICES);
            let projection = ProjectionKey {
                masking: key.masking,
                notes: key.notes.clone(),
            };
            let projected = projection
                .project(&Value::Object(part))
                .map_err(|e| format!("a held notes or timeline slice does not parse: {e}"))?;
            let rendered = self.shaped(projected);
            self.by_scope.insert(key.notes.clone(), rendered);
        }
        let mut out: Vec<Rendered> = self
            .values
            .keys()
            .filter(|name| {
                !MASKED_SLICES.contains(&name.as_str()) && !NOTE_SLICES.contains(&name.as_str())
            })
            .filter_map(|name| self.clear_slice(name))
            .collect();
        out.extend(self.by_masking[&key.masking].iter().cloned());
        out.extend(self.by_scope[&key.notes].iter().cloned());
        Ok(out)
    }

    fn part(&self, names: &[&str]) -> Map<String, Value> {
        names
            .iter()
            .filter_map(|name| {
                self.values
                    .get(*name)
                    .map(|v| ((*name).to_owned(), v.clone()))
            })
            .collect()
    }

    fn clear_slice(&self, name: &str) -> Option<Rendered> {
        self.clear.get(name).map(|text| Rendered {
            name: name.to_owned(),
            text: text.clone(),
            value: None,
        })
    }

    /// Texts of reshaped slices, sharing the clear text wherever reshaping changed nothing.
    fn shaped(&self, shaped: Value) -> Vec<Rendered> {
        let Value::Object(map) = shaped else {
            return Vec::new();
        };
        map.into_iter()
            .filter_map(|(name, value)| {
                let clear = self.clear_slice(&name)?;
                let text = value.to_string();
                Some(if text == *clear.text {
                    clear
                } else {
                    Rendered {
                        name,
                        text: Arc::from(text),
                        value: Some(Arc::new(value)),
                    }
                })
            })
            .collect()
    }
}

/// Patches computed during one recompute, keyed by the (old, new) texts they turn one into the
/// other; the entries hold both texts so neither address can be reused meanwhile.
#[derive(Default)]
pub struct DiffCache {
    entries: HashMap<(usize, usize), Diffed>,
}

/// Old text, new text, and the operations between them as JSON text.
type Diffed = (Option<Arc<str>>, Arc<str>, String);

fn address(text: &Arc<str>) -> usize {
    Arc::as_ptr(text) as *const u8 as usize
}

impl DiffCache {
    fn ops(
        &mut self,
        name: &str,
        old: Option<&Arc<str>>,
        new: &Arc<str>,
        new_value: impl FnOnce() -> Option<Arc<Value>>,
    ) -> &str {
        let key = (old.map_or(0, address), address(new));
        let entry = self.entries.entry(key).or_insert_with(|| {
            // A text this module wrote always parses; without one the slice is new.
            let before = old.and_then(|o| serde_json::from_str::<Value>(o).ok());
            let after = new_value()
                .or_else(|| serde_json::from_str::<Value>(new).ok().map(Arc::new))
                .unwrap_or_default();
            let mut ops = String::new();
            diff::diff_slice(name, before.as_ref(), &after, &mut ops);
            (old.cloned(), new.clone(), ops)
        });
        &entry.2
    }
}

/// What an update changed for a projection's sessions.
pub struct Update {
    /// The operations, as comma-separated JSON (empty when nothing they see changed).
    pub ops: String,
    /// Whether the notes they see changed: only then may they learn of a note event.
    pub notes_changed: bool,
}

/// What the sessions of one projection hold, and the deltas that led there.
pub struct Projection {
    slices: Slices,
    pub epoch: String,
    pub version: u64,
    /// (version, delta frame), oldest first.
    pub history: VecDeque<(u64, ByteString)>,
}

impl Projection {
    /// A projection built from the clear view held.
    pub fn build(key: &ProjectionKey, clear: &Slices, epoch: String) -> Result<Projection, String> {
        let personal: Map<String, Value> = MASKED_SLICES
            .iter()
            .chain(&NOTE_SLICES)
            .filter_map(|name| clear.get(*name).map(|text| (name, text)))
            .map(|(name, text)| {
                serde_json::from_str(text)
                    .map(|value| ((*name).to_owned(), value))
                    .map_err(|e| format!("a held slice does not parse: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let mut slices = clear.clone();
        for r in Renderer::new(clear, &personal).render(key)? {
            slices.insert(r.name, r.text);
        }
        Ok(Projection {
            slices,
            epoch,
            version: 0,
            history: VecDeque::new(),
        })
    }

    /// Takes the rendered slices and returns what turns what the sessions held into them.
    pub fn update(
        &mut self,
        rendered: Vec<Rendered>,
        values: &Map<String, Value>,
        cache: &mut DiffCache,
    ) -> Update {
        let mut ops = String::new();
        let mut notes_changed = false;
        for r in rendered {
            let old = self.slices.get(&r.name);
            let unchanged = old.is_some_and(|o| Arc::ptr_eq(o, &r.text) || **o == *r.text);
            if !unchanged {
                notes_changed |= r.name == "notes";
                let value = r.value;
                let slice_ops = cache.ops(&r.name, old, &r.text, || {
                    value.or_else(|| values.get(&r.name).cloned().map(Arc::new))
                });
                if !slice_ops.is_empty() {
                    if !ops.is_empty() {
                        ops.push(',');
                    }
                    ops.push_str(slice_ops);
                }
            }
            self.slices.insert(r.name, r.text);
        }
        Update { ops, notes_changed }
    }

    /// Keeps a delta for resuming sessions, within the count and byte bounds; the latest is
    /// always kept.
    pub fn record(&mut self, frame: ByteString) {
        self.history.push_back((self.version, frame));
        let view: usize = self.slices.values().map(|text| text.len()).sum();
        let bound = HISTORY_BYTES.min(view);
        let mut bytes: usize = self.history.iter().map(|(_, f)| f.len()).sum();
        while self.history.len() > HISTORY || (bytes > bound && self.history.len() > 1) {
            if let Some((_, dropped)) = self.history.pop_front() {
                bytes -= dropped.len();
            }
        }
    }

    pub fn snapshot(&self, customer_id: i64) -> ByteString {
        protocol::snapshot_frame(
            customer_id,
            &self.epoch,
            self.version,
            self.slices
                .iter()
                .map(|(name, text)| (name.as_str(), &**text)),
        )
    }

    /// The view as a value (for the HTTP route served from a live hub).
    pub fn to_value(slices: &Slices) -> Result<Value, serde_json::Error> {
        slices
            .iter()
            .map(|(name, text)| Ok((name.clone(), serde_json::from_str(text)?)))
            .collect::<Result<Map<String, Value>, _>>()
            .map(Value::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roles::Role;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn values(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// A private note of author `a`, as the notes slice holds it.
    fn private_note() -> Value {
        json!({"id": 1, "author_id": "a", "author_name": "A", "body": "x", "visibility": "private",
               "pinned": false, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z"})
    }

    #[test]
    fn slices_no_projection_changes_are_held_once_and_diffed_once() {
        let first = values(json!({
            "orders": {"items": [{"id": 1}]},
            "notes": {"total": 0, "items": [], "private": [private_note()], "private_counts": {"a": 1}},
        }));
        let mut clear = Slices::new();
        store_clear(&mut clear, &first);
        let admin = ProjectionKey::for_viewer("z", Role::Admin, &BTreeSet::new());
        let support = ProjectionKey::for_viewer("s", Role::Support, &BTreeSet::new());
        let mut p_admin = Projection::build(&admin, &clear, "e-1".into()).unwrap();
        let mut p_support = Projection::build(&support, &clear, "e-2".into()).unwrap();
        assert!(Arc::ptr_eq(
            &p_admin.slices["orders"],
            &p_support.slices["orders"]
        ));
        assert!(!Arc::ptr_eq(
            &p_admin.slices["notes"],
            &p_support.slices["notes"]
        ));
        assert_eq!(
            serde_json::from_str::<Value>(&p_support.slices["notes"]).unwrap(),
            json!({"items": [], "total": 0})
        );

        let next = values(json!({"orders": {"items": [{"id": 2}, {"id": 1}]}}));
        store_clear(&mut clear, &next);
        let mut cache = DiffCache::default();
        let mut renderer = Renderer::new(&clear, &next);
        let a = p_admin
            .update(renderer.render(&admin).unwrap(), &next, &mut cache)
            .ops;
        let s = p_support
            .update(renderer.render(&support).unwrap(), &next, &mut cache)
            .ops;
        assert_eq!(cache.entries.len(), 1, "the shared change is diffed once");
        assert!(!a.is_empty());
        assert_eq!(a, s);
        let mut held = json!({"orders": {"items": [{"id": 1}]}});
        let ops: json_patch::Patch = serde_json::from_str(&format!("[{a}]")).unwrap();
        json_patch::patch(&mut held, &ops).unwrap();
        assert_eq!(held["orders"], next["orders"]);

        let again = p_admin.update(renderer.render(&admin).unwrap(), &next, &mut cache);
        assert!(again.ops.is_empty(), "an unchanged text gives no operation");
        assert!(!again.notes_changed);
    }

    #[test]
    fn deltas_are_kept_up_to_the_size_of_the_view() {
        let mut clear = Slices::new();
        store_clear(
            &mut clear,
            &values(json!({"tags": [{"name": "x".repeat(1_000)}]})),
        );
        let key = ProjectionKey::for_viewer("z", Role::Admin, &BTreeSet::new());
        let mut p = Projection::build(&key, &clear, "e1".into()).unwrap();
        let view: usize = p.slices.values().map(|t| t.len()).sum();
        for _ in 0..10 {
            p.version += 1;
            p.record(ByteString::from("d".repeat(300)));
        }
        let kept: usize = p.history.iter().map(|(_, f)| f.len()).sum();
        assert!(kept <= view, "{kept} bytes kept for a view of {view}");
        assert_eq!(p.history.len(), view / 300, "as many as fit");
        assert_eq!(
            p.history.back().map(|(v, _)| *v),
            Some(10),
            "the latest kept"
        );
        p.version += 1;
        p.record(ByteString::from("d".repeat(5_000)));
        assert_eq!(
            p.history.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            [11],
            "a delta larger than the view is kept alone"
        );
    }

    #[test]
    fn snapshots_are_valid_json_of_every_slice() {
        let mut clear = Slices::new();
        store_clear(
            &mut clear,
            &values(json!({"tags": [], "churn": {"level": "low"}})),
        );
        let key = ProjectionKey::for_viewer("z", Role::Admin, &BTreeSet::new());
        let frame = Projection::build(&key, &clear, "e1".into())
            .unwrap()
            .snapshot(7);
        let parsed: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(
            parsed["view"],
            json!({"tags": [], "churn": {"level": "low"}})
        );
        assert_eq!(
            (parsed["customer_id"].as_i64(), parsed["version"].as_u64()),
            (Some(7), Some(0))
        );
    }
}
