//! How a hub holds its customer's view: as compact JSON text, slice by slice, rather than as a
//! tree of values (which takes about ten times the memory), with a slice that reads the same
//! in several projections held once. A recompute compares texts first and diffs only the
//! slices whose text changed, once per distinct change however many projections share it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytestring::ByteString;
use json_patch::PatchOperation;
use serde_json::{Map, Value};

use crate::realtime::projection::ProjectionKey;
use crate::realtime::protocol;
use crate::view;

/// A view as JSON text per slice name.
pub type Slices = BTreeMap<String, Arc<str>>;

/// Deltas kept per projection for clients reconnecting with `since`…
pub const HISTORY: usize = 64;
/// …and at most this many bytes of them: a hub's memory must not grow with its traffic.
pub const HISTORY_BYTES: usize = 64 * 1024;

/// The only slices that masking or private notes change; every other slice reads the same in
/// every projection.
const PERSONAL: [&str; 4] = ["profile", "loyalty", "notes", "timeline"];

/// One slice as a projection shows it: its text, and its value when that differs from the
/// clear slice's (None: the clear value).
pub struct Rendered {
    name: String,
    text: Arc<str>,
    value: Option<Value>,
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

/// `key`'s form of the slices in `values` (fresh clear slices, already in `clear`).
pub fn render(
    key: &ProjectionKey,
    clear: &Slices,
    values: &Map<String, Value>,
) -> Result<Vec<Rendered>, String> {
    let personal: Map<String, Value> = values
        .iter()
        .filter(|(name, _)| PERSONAL.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let mut shaped = if personal.is_empty() {
        Map::new()
    } else {
        let masked = view::mask_json(&Value::Object(personal), key.masking)
            .map_err(|e| format!("masking the view failed: {e}"))?;
        match key.project(&masked) {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    };
    let mut out = Vec::with_capacity(values.len());
    for name in values.keys() {
        let Some(clear_text) = clear.get(name) else {
            continue;
        };
        let rendered = match shaped.remove(name) {
            Some(value) => {
                let text = value.to_string();
                if text == **clear_text {
                    None
                } else {
                    Some(Rendered {
                        name: name.clone(),
                        text: Arc::from(text),
                        value: Some(value),
                    })
                }
            }
            None => None,
        };
        out.push(rendered.unwrap_or_else(|| Rendered {
            name: name.clone(),
            text: clear_text.clone(),
            value: None,
        }));
    }
    Ok(out)
}

/// Patches computed during one recompute, keyed by the (old, new) texts they turn one into the
/// other; the entries hold both texts so neither address can be reused meanwhile.
#[derive(Default)]
pub struct DiffCache {
    entries: HashMap<(usize, usize), Diffed>,
}

/// Old text, new text, and the operations between them.
type Diffed = (Option<Arc<str>>, Arc<str>, Vec<PatchOperation>);

fn address(text: &Arc<str>) -> usize {
    Arc::as_ptr(text) as *const u8 as usize
}

impl DiffCache {
    fn ops(
        &mut self,
        name: &str,
        old: Option<&Arc<str>>,
        new: &Arc<str>,
        new_value: impl FnOnce() -> Value,
    ) -> Vec<PatchOperation> {
        let key = (old.map_or(0, address), address(new));
        if let Some((_, _, ops)) = self.entries.get(&key) {
            return ops.clone();
        }
        let wrap = |value: Value| Value::Object(Map::from_iter([(name.to_owned(), value)]));
        let before = match old.map(|o| serde_json::from_str::<Value>(o)) {
            Some(Ok(value)) => wrap(value),
            // A text this module wrote always parses; without one the slice is new.
            _ => Value::Object(Map::new()),
        };
        let ops = json_patch::diff(&before, &wrap(new_value())).0;
        self.entries
            .insert(key, (old.cloned(), new.clone(), ops.clone()));
        ops
    }
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
        let personal: Map<String, Value> = PERSONAL
            .iter()
            .filter_map(|name| clear.get(*name).map(|text| (name, text)))
            .map(|(name, text)| {
                serde_json::from_str(text)
                    .map(|value| ((*name).to_owned(), value))
                    .map_err(|e| format!("a held slice does not parse: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let mut slices = clear.clone();
        for r in render(key, clear, &personal)? {
            slices.insert(r.name, r.text);
        }
        Ok(Projection {
            slices,
            epoch,
            version: 0,
            history: VecDeque::new(),
        })
    }

    /// Takes the rendered slices and returns the operations that turn what the sessions held
    /// into them (empty when nothing they see changed).
    pub fn update(
        &mut self,
        rendered: Vec<Rendered>,
        values: &Map<String, Value>,
        cache: &mut DiffCache,
    ) -> Vec<PatchOperation> {
        let mut ops = Vec::new();
        for r in rendered {
            let old = self.slices.get(&r.name);
            let unchanged = old.is_some_and(|o| Arc::ptr_eq(o, &r.text) || **o == *r.text);
            if !unchanged {
                let value = r.value;
                ops.extend(cache.ops(&r.name, old, &r.text, || {
                    value
                        .or_else(|| values.get(&r.name).cloned())
                        .unwrap_or(Value::Null)
                }));
            }
            self.slices.insert(r.name, r.text);
        }
        ops
    }

    /// Keeps a delta for resuming sessions, within the count and byte bounds.
    pub fn record(&mut self, frame: ByteString) {
        self.history.push_back((self.version, frame));
        let mut bytes: usize = self.history.iter().map(|(_, f)| f.len()).sum();
        while self.history.len() > HISTORY || (bytes > HISTORY_BYTES && self.history.len() > 1) {
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

    #[test]
    fn slices_no_projection_changes_are_held_once_and_diffed_once() {
        let first = values(json!({
            "orders": {"items": [{"id": 1}]},
            "notes": {"total": 1, "items": [{"author_id": "a", "visibility": "private", "body": "x"}]},
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
        let a = p_admin.update(render(&admin, &clear, &next).unwrap(), &next, &mut cache);
        let s = p_support.update(render(&support, &clear, &next).unwrap(), &next, &mut cache);
        assert_eq!(cache.entries.len(), 1, "the shared change is diffed once");
        assert!(!a.is_empty());
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&s).unwrap()
        );
        let mut held = json!({"orders": {"items": [{"id": 1}]}});
        json_patch::patch(&mut held, &a).unwrap();
        assert_eq!(held["orders"], next["orders"]);

        let again = p_admin.update(render(&admin, &clear, &next).unwrap(), &next, &mut cache);
        assert!(again.is_empty(), "an unchanged text gives no operation");
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
