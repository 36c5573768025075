//! Typed records to and from `gst::Structure`s, through their serde fields: a record's
//! `snake_case` field is the structure's `kebab-case` field, so the element's structures carry
//! exactly the fields of the record they are written from (results, statistics), and
//! applications read them back typed instead of field by field.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The structure `name` with `record`'s fields; a `None` field is left out.
pub fn to_structure<T: Serialize>(name: &str, record: &T) -> gst::Structure {
    let mut structure = gst::Structure::new_empty(name);
    // A record that does not serialize to an object (never ours) gives an empty structure.
    if let Ok(Value::Object(fields)) = serde_json::to_value(record) {
        for (field, value) in fields {
            if !value.is_null() {
                structure.set_value(field.replace('_', "-").as_str(), to_value(&value));
            }
        }
    }
    structure
}

/// The record `s` was written from; the error names the field that is missing or mistyped.
pub fn from_structure<T: DeserializeOwned>(s: &gst::StructureRef) -> Result<T, String> {
    let mut fields = serde_json::Map::new();
    for (field, value) in s.iter() {
        let value = from_value(value).map_err(|e| format!("field `{field}` of `{}`: {e}", s.name()))?;
        fields.insert(field.replace('-', "_"), value);
    }
    serde_json::from_value(Value::Object(fields)).map_err(|e| format!("`{}` structure: {e}", s.name()))
}

fn to_value(value: &Value) -> glib::SendValue {
    match value {
        Value::Bool(b) => b.to_send_value(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.to_send_value(),
            (None, Some(i)) => i.to_send_value(),
            // A NaN became JSON null inside an array (below); floats stay doubles.
            _ => n.as_f64().unwrap_or(f64::NAN).to_send_value(),
        },
        Value::String(text) => text.to_send_value(),
        Value::Array(items) => gst::Array::new(items.iter().map(to_value)).to_send_value(),
        // A float that was not a number: serde_json writes NaN as null.
        Value::Null => f64::NAN.to_send_value(),
        Value::Object(_) => gst::Structure::new_empty("unsupported").to_send_value(),
    }
}

fn from_value(value: &glib::SendValue) -> Result<Value, String> {
    let number = |n: Option<serde_json::Number>| n.map(Value::Number).ok_or("not a finite number".to_string());
    if let Ok(b) = value.get::<bool>() {
        Ok(Value::Bool(b))
    } else if let Ok(u) = value.get::<u64>() {
        Ok(Value::from(u))
    } else if let Ok(u) = value.get::<u32>() {
        Ok(Value::from(u))
    } else if let Ok(i) = value.get::<i64>() {
        Ok(Value::from(i))
    } else if let Ok(i) = value.get::<i32>() {
        Ok(Value::from(i))
    } else if let Ok(f) = value.get::<f64>() {
        number(serde_json::Number::from_f64(f))
    } else if let Ok(text) = value.get::<String>() {
        Ok(Value::String(text))
    } else if let Ok(array) = value.get::<gst::Array>() {
        array.iter().map(from_value).collect::<Result<Vec<_>, _>>().map(Value::Array)
    } else {
        Err(format!("a {} is not a record field", value.type_()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        frames: u64,
        ratio: f32,
        values: Vec<f32>,
        name: String,
        ok: bool,
        error: Option<String>,
    }

    #[test]
    fn a_record_comes_back_from_its_structure_with_kebab_case_fields() {
        gst::init().unwrap();
        let sample = Sample { frames: 7, ratio: 0.1, values: vec![1.0, 0.25], name: "a".into(), ok: true, error: None };
        let s = to_structure("sample", &sample);
        assert_eq!(s.get::<u64>("frames").unwrap(), 7);
        assert!(!s.has_field("error"), "None is left out");
        assert_eq!(from_structure::<Sample>(&s).unwrap(), sample);
        let mut s = s;
        s.set("frames", "seven");
        let e = from_structure::<Sample>(&s).unwrap_err();
        assert!(e.contains("frames") || e.contains("invalid type"), "{e}");
    }
}
