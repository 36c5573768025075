//! Mutations for fuzzing the parsers of files a user or an attacker controls (bundle manifests,
//! configs, quant.json, safetensors): a valid file with a few values replaced by hostile ones,
//! keys removed, bytes overwritten or the end cut off. `proptest` drives them on the stable
//! toolchain, bounded in cases, and keeps each failing input under `proptest-regressions/`.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::Value;

/// The seed CI fuzzes from: the same cases in every run, so a red CI is a change's doing.
pub const SEED: u64 = 0x0e30_ed9e;

/// A fuzz target's settings: `cases` cases from [`SEED`]. `PROPTEST_RNG_SEED=<n>` and
/// `PROPTEST_CASES=<n>` explore further, e.g.
/// `PROPTEST_RNG_SEED=$RANDOM PROPTEST_CASES=20000 cargo test fuzz`; keep what fails in the
/// `*.proptest-regressions` file proptest writes beside the test, and fix it.
pub fn config(cases: u32) -> ProptestConfig {
    let from_env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { from_env.cases } else { cases },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            from_env.rng_seed
        } else {
            RngSeed::Fixed(SEED)
        },
        ..from_env
    }
}

/// One change to a file.
#[derive(Debug, Clone)]
pub enum Edit {
    /// The `at`-th JSON value (pre-order, modulo their count) becomes `with`.
    Replace { at: usize, with: Value },
    /// The `at`-th member of an object or element of an array is removed.
    Remove { at: usize },
    /// Bytes from `at` (modulo the length) are overwritten.
    Overwrite { at: usize, bytes: Vec<u8> },
    /// The file ends at `at` (modulo the length).
    Truncate { at: usize },
}

/// Values that have broken parsers: extremes, wrong types, paths out of a folder, special files.
pub fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![Just(0i64), Just(-1), Just(1), Just(2), Just(i64::MIN), Just(i64::MAX), -300i64..300]
            .prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(1u64 << 53), Just(u64::from(u32::MAX) + 1)].prop_map(Value::from),
        prop_oneof![Just(1e300), Just(-1e300), Just(1e-300), Just(-0.0), Just(0.5), -10.0f64..10.0]
            .prop_map(Value::from),
        prop_oneof![
            Just(String::new()),
            Just("../../etc/passwd".to_string()),
            Just("/dev/zero".to_string()),
            Just("fp32/frame.onnx".to_string()),
            Just("NaN".to_string()),
            Just("a".repeat(10_000)),
            "\\PC{0,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One to four edits, mostly to values (which get past the JSON parser to the checks behind it).
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        6 => (any::<usize>(), hostile_value()).prop_map(|(at, with)| Edit::Replace { at, with }),
        2 => any::<usize>().prop_map(|at| Edit::Remove { at }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Edit::Overwrite { at, bytes }),
        1 => any::<usize>().prop_map(|at| Edit::Truncate { at }),
    ];
    prop::collection::vec(edit, 1..=4)
}

/// `text` (a JSON document) with `edits` applied, as bytes: value edits first, byte edits on
/// the result.
pub fn apply_json(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(text).expect("the file to mutate is valid JSON");
    for edit in edits {
        match edit {
            Edit::Replace { at, with } => {
                let n = count(&value);
                if let Some(target) = nth(&mut value, at % n) {
                    *target = with.clone();
                }
            }
            Edit::Remove { at } => {
                let n = count(&value);
                remove_child(&mut value, at % n);
            }
            Edit::Overwrite { .. } | Edit::Truncate { .. } => {}
        }
    }
    let bytes = serde_json::to_vec_pretty(&value).expect("a JSON value serialises");
    apply_bytes(&bytes, edits)
}

/// `bytes` with the byte-level edits (overwrites, truncations) applied.
pub fn apply_bytes(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for edit in edits {
        match edit {
            Edit::Overwrite { at, bytes } if !out.is_empty() => {
                let start = at % out.len();
                for (i, b) in bytes.iter().enumerate() {
                    if let Some(slot) = out.get_mut(start + i) {
                        *slot = *b;
                    }
                }
            }
            Edit::Truncate { at } if !out.is_empty() => out.truncate(at % out.len()),
            _ => {}
        }
    }
    out
}

fn count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count).sum(),
        Value::Object(members) => members.values().map(count).sum(),
        _ => 0,
    }
}

fn nth(value: &mut Value, n: usize) -> Option<&mut Value> {
    if n == 0 {
        return Some(value);
    }
    let mut skipped = 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(members) => members.values_mut().collect(),
        _ => return None,
    };
    for child in children {
        let size = count(child);
        if n < skipped + size {
            return nth(child, n - skipped);
        }
        skipped += size;
    }
    None
}

/// Removes one child of the `n`-th value, if it has any.
fn remove_child(value: &mut Value, n: usize) {
    match nth(value, n) {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.pop();
        }
        Some(Value::Object(members)) => {
            if let Some(key) = members.keys().next().cloned() {
                members.remove(&key);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_reach_nested_values_and_bytes() {
        let text = r#"{"a": [1, {"b": 2}], "c": "x"}"#;
        // Pre-order: 0 root, 1 a, 2 1, 3 {b}, 4 2, 5 c.
        let replaced = apply_json(text, &[Edit::Replace { at: 4, with: Value::from("z") }]);
        let value: Value = serde_json::from_slice(&replaced).unwrap();
        assert_eq!(value["a"][1]["b"], "z");
        let removed = apply_json(text, &[Edit::Remove { at: 1 }]);
        assert_eq!(serde_json::from_slice::<Value>(&removed).unwrap()["a"], serde_json::json!([1]));
        assert_eq!(apply_bytes(b"abcdef", &[Edit::Overwrite { at: 8, bytes: vec![b'X'; 9] }]), b"abXXXX");
        assert_eq!(apply_bytes(b"abcdef", &[Edit::Truncate { at: 3 }]), b"abc");
    }
}
