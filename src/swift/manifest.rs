//! Static large object manifests as clients upload them (`PUT ?multipart-manifest=put`):
//! a JSON list of segments, each naming an object by `path` or holding inline `data`.
//! One reading for the embedded store, the policies and the proxy. A body it cannot
//! read is refused here, before anything judges it: what Swift would read in it (a
//! UTF-16 text, a byte-order mark, a number Rust's JSON cannot hold) must never reach a
//! store unjudged.

use serde_json::Value;

use crate::error::{Error, Result};

/// The segments of an uploaded manifest, in order.
pub(crate) fn parse(body: &[u8]) -> Result<Vec<Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Array(segments)) => Ok(segments),
        Ok(_) => Err(Error::bad_request("Manifest must be a list.\n")),
        Err(_) => Err(Error::bad_request("Manifest must be valid JSON.\n")),
    }
}

/// The `path` each segment names, as text, in order; segments of inline `data` name
/// none. A segment that is not an object with one of `path` and `data`, or a `path`
/// that is not text, is refused (as Swift refuses them; some it cannot even read).
pub(crate) fn paths(segments: &[Value]) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let Some(fields) = s.as_object() else {
            return Err(Error::bad_request(format!(
                "Index {i}: not a JSON object\n"
            )));
        };
        if fields.contains_key("path") == fields.contains_key("data") {
            return Err(Error::bad_request(format!(
                "Index {i}: expected exactly one of \"path\" or \"data\"\n"
            )));
        }
        match s.get("path") {
            None => {}
            Some(Value::String(p)) => out.push(p.as_str()),
            Some(_) => {
                return Err(Error::bad_request(format!(
                    "Index {i}: \"path\" must be a string\n"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rust_cannot_read_is_refused() {
        let utf16: Vec<u8> =
            r#"[{"path":"/priv/secret"}]"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let bom = [b"\xef\xbb\xbf".as_slice(), br#"[{"path":"/priv/secret"}]"#].concat();
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for body in [
            utf16.as_slice(),
            bom.as_slice(),
            deep.as_bytes(),
            br#"[{"path":"/c/o","size_bytes":1e400}]"#,
            br#"[{"path":"/c/o","size_bytes":NaN}]"#,
            b"\xed\xa0\x80",
            b"",
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
        assert!(parse(br#"{"path":"/c/o"}"#).is_err());
    }

    #[test]
    fn paths_are_text_or_refused() {
        let segments = parse(br#"[{"path":"/a/b"},{"data":"eA=="},{"path":"c/d"}]"#).unwrap();
        assert_eq!(paths(&segments).unwrap(), ["/a/b", "c/d"]);
        for body in [
            br#"[{"path":["/priv/secret"]}]"#.as_slice(),
            br#"[{"path":null}]"#,
            br#"[{"path":7}]"#,
            br#"[null]"#,
            br#"[1]"#,
            br#"[{}]"#,
            br#"[{"path":"/a/b","data":"eA=="}]"#,
        ] {
            assert!(paths(&parse(body).unwrap()).is_err(), "{body:?}");
        }
        // a key given twice means its last value, as Python's json reads it
        let twice = parse(br#"[{"path":"/ok/x","path":"/priv/secret"}]"#).unwrap();
        assert_eq!(paths(&twice).unwrap(), ["/priv/secret"]);
    }
}
