//! JSON Patch (RFC 6902) between two versions of a slice, written straight out as JSON text.
//! Lists on a dashboard change at their head (a new order, a new timeline event, the oldest
//! one falling off the page), so arrays are aligned on a common prefix and suffix and on a
//! short shift at the front before any element is compared index by index: a new order is one
//! `add` and one `remove`, not a `replace` of every field of every row below it.

use serde_json::Value;

/// How far ahead an insertion or removal at the front of a list is looked for.
const MAX_SHIFT: usize = 8;

/// Appends the operations turning `old` into `new` at `path` (an RFC 6901 pointer) to `out`,
/// as comma-separated JSON objects; returns how many.
pub fn diff(old: &Value, new: &Value, path: &mut String, out: &mut String) -> usize {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut count = 0;
            for key in o.keys() {
                if !n.contains_key(key) {
                    let len = push_key(path, key);
                    count += op(out, "remove", path, None);
                    path.truncate(len);
                }
            }
            for (key, new_value) in n {
                let len = push_key(path, key);
                count += match o.get(key) {
                    Some(old_value) => diff(old_value, new_value, path, out),
                    None => op(out, "add", path, Some(new_value)),
                };
                path.truncate(len);
            }
            count
        }
        (Value::Array(o), Value::Array(n)) => diff_array(o, n, path, out),
        _ if old == new => 0,
        _ => op(out, "replace", path, Some(new)),
    }
}

fn diff_array(old: &[Value], new: &[Value], path: &mut String, out: &mut String) -> usize {
    diff_from(old, new, 0, path, out)
}

/// The operations turning slice `name` from `old` (None: the view lacked it) into `new`.
pub fn diff_slice(name: &str, old: Option<&Value>, new: &Value, out: &mut String) -> usize {
    let mut path = String::new();
    push_key(&mut path, name);
    match old {
        Some(old) => diff(old, new, &mut path, out),
        None => op(out, "add", &path, Some(new)),
    }
}

/// Aligns `old` (which starts at index `base` of the array being patched) with `new`.
fn diff_from(
    old: &[Value],
    new: &[Value],
    base: usize,
    path: &mut String,
    out: &mut String,
) -> usize {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old, new, base) = (&old[prefix..], &new[prefix..], base + prefix);
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old, new) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
    if old.is_empty() && new.is_empty() {
        return 0;
    }
    let mut count = 0;
    if let Some(first) = old.first()
        && let Some(k) = new.iter().take(MAX_SHIFT + 1).position(|v| v == first)
        && k > 0
    {
        for (i, value) in new[..k].iter().enumerate() {
            count += at(path, base + i, |p| op(out, "add", p, Some(value)));
        }
        return count + diff_from(old, &new[k..], base + k, path, out);
    }
    if let Some(first) = new.first()
        && let Some(k) = old.iter().take(MAX_SHIFT + 1).position(|v| v == first)
        && k > 0
    {
        for _ in 0..k {
            count += at(path, base, |p| op(out, "remove", p, None));
        }
        return count + diff_from(&old[k..], new, base, path, out);
    }
    let common = old.len().min(new.len());
    for i in 0..common {
        count += at(path, base + i, |p| diff(&old[i], &new[i], p, out));
    }
    for _ in common..old.len() {
        count += at(path, base + common, |p| op(out, "remove", p, None));
    }
    for (i, value) in new.iter().enumerate().skip(common) {
        count += at(path, base + i, |p| op(out, "add", p, Some(value)));
    }
    count
}

fn at(path: &mut String, index: usize, f: impl FnOnce(&mut String) -> usize) -> usize {
    let len = path.len();
    path.push('/');
    path.push_str(&index.to_string());
    let count = f(path);
    path.truncate(len);
    count
}

/// Appends `/key`, escaped per RFC 6901; returns the length to truncate back to.
fn push_key(path: &mut String, key: &str) -> usize {
    let len = path.len();
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    len
}

fn op(out: &mut String, name: &str, path: &str, value: Option<&Value>) -> usize {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(r#"{"op":""#);
    out.push_str(name);
    out.push_str(r#"","path":"#);
    out.push_str(&Value::from(path).to_string());
    if let Some(value) = value {
        out.push_str(r#","value":"#);
        out.push_str(&value.to_string());
    }
    out.push('}');
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn patch(old: &Value, new: &Value) -> (usize, Value) {
        let (mut path, mut out) = (String::new(), String::new());
        let n = diff(old, new, &mut path, &mut out);
        (n, serde_json::from_str(&format!("[{out}]")).unwrap())
    }

    fn applies(old: &Value, new: &Value) -> usize {
        let (n, ops) = patch(old, new);
        let ops: json_patch::Patch = serde_json::from_value(ops).unwrap();
        let mut doc = old.clone();
        json_patch::patch(&mut doc, &ops).unwrap();
        assert_eq!(&doc, new);
        n
    }

    #[test]
    fn a_new_head_of_a_full_page_is_one_add_and_one_remove() {
        let rows = |ids: std::ops::Range<i64>| -> Vec<Value> {
            ids.rev()
                .map(|i| json!({"id": i, "total": i * 100, "status": "paid"}))
                .collect()
        };
        let old = json!({"items": rows(1..21)});
        let new = json!({"items": rows(2..22)});
        assert_eq!(applies(&old, &new), 2);
        assert_eq!(applies(&new, &old), 2);
        assert_eq!(applies(&old, &old), 0);
    }

    #[test]
    fn keys_are_escaped() {
        let (_, ops) = patch(&json!({}), &json!({"a/b~c": 1}));
        assert_eq!(ops[0]["path"], "/a~1b~0c");
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..5).prop_map(Value::from),
            "[a-c/~]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-c/~]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the two documents, the patch turns one into the other.
        #[test]
        fn the_patch_always_applies(old in value(), new in value()) {
            applies(&old, &new);
        }

        /// Lists edited at the head, the tail or in place.
        #[test]
        fn list_edits_apply(base in prop::collection::vec(0i64..50, 0..12),
                            head in prop::collection::vec(50i64..60, 0..10),
                            drop_head in 0usize..10, drop_tail in 0usize..4) {
            let old = json!(base);
            let mut edited: Vec<i64> = head;
            edited.extend(base.iter().skip(drop_head));
            edited.truncate(edited.len().saturating_sub(drop_tail));
            applies(&old, &json!(edited));
        }
    }
}
