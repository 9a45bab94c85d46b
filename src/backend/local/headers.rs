//! Swift's header conventions: timestamps, user metadata and its limits, conditional
//! requests and byte ranges.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode};

use super::db::Meta;
use crate::error::{Error, Result};
use crate::swift::limits::{
    MAX_META_COUNT, MAX_META_NAME_LENGTH, MAX_META_OVERALL_SIZE, MAX_META_VALUE_LENGTH, not_text,
};

pub(super) fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `x` rounded down to a whole number: 0 for negatives and for what is not a number,
/// `u64::MAX` past it.
pub(super) fn whole(x: f64) -> u64 {
    match Duration::try_from_secs_f64(x) {
        Ok(d) => d.as_secs(),
        Err(_) if x > 0.0 => u64::MAX,
        Err(_) => 0,
    }
}

/// `X-Timestamp`: seconds with five decimals, zero-padded to 16 characters.
pub(super) fn x_timestamp(ts: f64) -> String {
    format!("{ts:016.5}")
}

fn system_time(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0))
}

/// `Last-Modified`: whole seconds, rounded up, as Swift does.
pub(super) fn http_date(ts: f64) -> String {
    httpdate::fmt_http_date(system_time(ts.ceil()))
}

/// `last_modified` in listings: ISO 8601 with microseconds, no zone.
pub(super) fn iso(ts: f64) -> String {
    let micros = whole((ts * 1_000_000.0).round());
    let t = UNIX_EPOCH + Duration::from_micros(micros);
    let s = humantime::format_rfc3339_micros(t).to_string();
    s.trim_end_matches('Z').to_owned()
}

/// A header value to store: UTF-8 text, or refused (the embedded store keeps text, and a
/// value must come back as the bytes it was sent as).
pub(super) fn value_text(name: &str, v: &HeaderValue) -> Result<String> {
    std::str::from_utf8(v.as_bytes())
        .map(str::to_owned)
        .map_err(|_| not_text(name))
}

/// A stored value back as header bytes.
pub(super) fn text_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(s.as_bytes()).ok()
}

/// `x-object-meta-foo-bar` → `X-Object-Meta-Foo-Bar`.
pub(super) fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks the user metadata a request carries (`x-<kind>-meta-*`), as Swift's
/// `check_metadata` does: name and value lengths, count, overall size.
pub(super) fn check_metadata(headers: &HeaderMap, kind: &str) -> Result<()> {
    let prefix = format!("x-{kind}-meta-");
    let (mut count, mut size) = (0, 0);
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix(&prefix) else {
            continue;
        };
        if key.is_empty() {
            return Err(Error::bad_request("Metadata name cannot be empty"));
        }
        let value = value.as_bytes();
        count += 1;
        size += key.len() + value.len();
        if key.len() > MAX_META_NAME_LENGTH {
            return Err(Error::bad_request(format!(
                "Metadata name too long: {prefix}{key}"
            )));
        }
        if value.len() > MAX_META_VALUE_LENGTH {
            return Err(Error::bad_request(format!(
                "Metadata value longer than {MAX_META_VALUE_LENGTH}: {prefix}{key}"
            )));
        }
        check_totals(count, size)?;
    }
    Ok(())
}

/// Swift's limits on the number and the total size of user metadata items.
fn check_totals(count: usize, size: usize) -> Result<()> {
    if count > MAX_META_COUNT {
        return Err(Error::bad_request(format!(
            "Too many metadata items; max {MAX_META_COUNT}"
        )));
    }
    if size > MAX_META_OVERALL_SIZE {
        return Err(Error::bad_request(format!(
            "Total metadata too large; max {MAX_META_OVERALL_SIZE}"
        )));
    }
    Ok(())
}

/// Checks the stored user metadata after a merge: a POST that is fine by itself may
/// still take the total over Swift's limits.
pub(super) fn check_merged(meta: &Meta, kind: &str) -> Result<()> {
    let prefix = format!("x-{kind}-meta-");
    let (mut count, mut size) = (0, 0);
    for (k, v) in meta {
        if let Some(key) = k.strip_prefix(&prefix) {
            count += 1;
            size += key.len() + v.chars().count();
        }
    }
    check_totals(count, size)
}

/// The metadata change of an account or container request: merge its headers, then
/// check the totals; refused with the reason.
pub(super) fn merge_checked(
    headers: HeaderMap,
    kind: &'static str,
    extra: &'static [&'static str],
) -> impl FnOnce(&mut Meta) -> std::result::Result<(), String> + Send + 'static {
    move |meta| {
        merge_metadata(&headers, kind, extra, meta)
            .and_then(|()| check_merged(meta, kind))
            .map_err(|e| e.to_string())
    }
}

/// Merges the `x-<kind>-meta-*` headers of an account or container request into its
/// stored metadata: a value sets, an empty value or `x-remove-<kind>-meta-*` removes.
/// `extra` names other headers stored the same way (ACLs, quotas, versioning).
pub(super) fn merge_metadata(
    headers: &HeaderMap,
    kind: &str,
    extra: &[&str],
    meta: &mut Meta,
) -> Result<()> {
    let prefix = format!("x-{kind}-meta-");
    let remove = format!("x-remove-{kind}-meta-");
    for (name, value) in headers {
        let name = name.as_str();
        if let Some(key) = name.strip_prefix(&remove) {
            meta.remove(&format!("{prefix}{key}"));
        } else if name.starts_with(&prefix) || extra.contains(&name) {
            let v = value_text(name, value)?;
            // an empty value, or an empty JSON ACL, removes what was stored
            if v.is_empty() || (name.ends_with("-access-control") && v.trim() == "{}") {
                meta.remove(name);
            } else {
                meta.insert(name.to_owned(), v);
            }
        } else if let Some(base) = name.strip_prefix("x-remove-")
            && extra.contains(&format!("x-{base}").as_str())
        {
            meta.remove(&format!("x-{base}"));
        }
    }
    Ok(())
}

/// Strips quotes from an entity tag.
pub(super) fn unquote(etag: &str) -> &str {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(e)
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || unquote(t) == etag
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Evaluates `If-None-Match`, `If-Match`, `If-Modified-Since` and `If-Unmodified-Since`
/// for a GET or HEAD of an existing object, in the order Swift's `swob` does (each one
/// judged whatever the others say): `Some(304 | 412)` when the request stops here.
pub(crate) fn conditional(headers: &HeaderMap, etag: &str, timestamp: f64) -> Option<StatusCode> {
    let modified = whole(timestamp.ceil());
    let date = |name| {
        header(headers, name)
            .and_then(|s| httpdate::parse_http_date(s).ok())
            .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if header(headers, "if-none-match").is_some_and(|m| etag_matches(m, etag)) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    if header(headers, "if-match").is_some_and(|m| !etag_matches(m, etag)) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if date("if-modified-since").is_some_and(|since| modified <= since) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    if date("if-unmodified-since").is_some_and(|since| modified > since) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    None
}

/// A byte range, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub(super) fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ranges {
    /// No `Range` header, or one Swift ignores (malformed): the whole body.
    Whole,
    Some(Vec<ByteRange>),
    Unsatisfiable,
}

/// Parses `Range: bytes=…` against a body of `size` bytes, as Swift does: a
/// malformed header is ignored; satisfiable ranges are kept in order; none → 416.
pub(crate) fn ranges(headers: &HeaderMap, size: u64) -> Ranges {
    let Some(spec) = header(headers, "range") else {
        return Ranges::Whole;
    };
    let Some((unit, list)) = spec.split_once('=') else {
        return Ranges::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ranges::Whole;
    }
    let mut parsed = Vec::new();
    for part in list.split(',') {
        let part = part.trim();
        let Some((a, b)) = part.split_once('-') else {
            return Ranges::Whole;
        };
        let (a, b) = (a.trim(), b.trim());
        let r = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
            (Some(s), Some(e)) if e >= s && a.bytes().all(|c| c.is_ascii_digit()) => {
                (Some(s), Some(e))
            }
            (Some(s), None) if b.is_empty() => (Some(s), None),
            (None, Some(n)) if a.is_empty() => (None, Some(n)),
            _ => return Ranges::Whole,
        };
        parsed.push(r);
    }
    if parsed.is_empty() || parsed.len() > 100 {
        return Ranges::Whole;
    }
    let mut out = Vec::new();
    for r in parsed {
        let range = match r {
            (Some(s), Some(e)) if s < size => Some(ByteRange {
                start: s,
                end: e.min(size - 1),
            }),
            (Some(s), None) if s < size => Some(ByteRange {
                start: s,
                end: size - 1,
            }),
            (None, Some(n)) if n > 0 && size > 0 => Some(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }),
            _ => None,
        };
        out.extend(range);
    }
    if out.is_empty() {
        Ranges::Unsatisfiable
    } else {
        Ranges::Some(out)
    }
}

/// `X-Delete-At` / `X-Delete-After` of a PUT or POST, as a Unix time.
pub(crate) fn delete_at(headers: &HeaderMap) -> Result<Option<u64>> {
    crate::swift::expiry::delete_at(headers, whole(now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn range_parsing() {
        let r = |s: &str, size| ranges(&h(&[("range", s)]), size);
        assert_eq!(
            r("bytes=0-9", 100),
            Ranges::Some(vec![ByteRange { start: 0, end: 9 }])
        );
        assert_eq!(
            r("bytes=90-", 100),
            Ranges::Some(vec![ByteRange { start: 90, end: 99 }])
        );
        assert_eq!(
            r("bytes=-5", 100),
            Ranges::Some(vec![ByteRange { start: 95, end: 99 }])
        );
        assert_eq!(
            r("bytes=-500", 100),
            Ranges::Some(vec![ByteRange { start: 0, end: 99 }])
        );
        assert_eq!(
            r("bytes=95-200", 100),
            Ranges::Some(vec![ByteRange { start: 95, end: 99 }])
        );
        assert_eq!(r("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(
            r("bytes=0-1,5-6", 100),
            Ranges::Some(vec![
                ByteRange { start: 0, end: 1 },
                ByteRange { start: 5, end: 6 }
            ])
        );
        assert_eq!(r("bytes=5-1", 100), Ranges::Whole);
        assert_eq!(r("chars=0-1", 100), Ranges::Whole);
        assert_eq!(r("bytes=x-1", 100), Ranges::Whole);
        assert_eq!(
            r("BYTES = 0 - 9 ", 100),
            Ranges::Some(vec![ByteRange { start: 0, end: 9 }])
        );
        assert_eq!(r("bytes=-0", 100), Ranges::Unsatisfiable);
    }

    #[test]
    fn conditions() {
        let ts = 1_700_000_000.2;
        assert_eq!(conditional(&h(&[("if-match", "\"abc\"")]), "abc", ts), None);
        assert_eq!(
            conditional(&h(&[("if-match", "xyz")]), "abc", ts),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            conditional(&h(&[("if-none-match", "*")]), "abc", ts),
            Some(StatusCode::NOT_MODIFIED)
        );
        let later = http_date(ts + 10.0);
        assert_eq!(
            conditional(&h(&[("if-modified-since", &later)]), "abc", ts),
            Some(StatusCode::NOT_MODIFIED)
        );
        let earlier = http_date(ts - 10.0);
        assert_eq!(
            conditional(&h(&[("if-unmodified-since", &earlier)]), "abc", ts),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        // together, in Swift's order: If-None-Match, If-Match, then the dates, each
        // judged whatever the others said
        let both =
            |a: (&'static str, &str), b: (&'static str, &str)| conditional(&h(&[a, b]), "abc", ts);
        assert_eq!(
            both(("if-match", "nope"), ("if-none-match", "*")),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            both(("if-none-match", "\"xyz\""), ("if-modified-since", &later)),
            Some(StatusCode::NOT_MODIFIED)
        );
        assert_eq!(
            both(("if-match", "\"abc\""), ("if-unmodified-since", &earlier)),
            Some(StatusCode::PRECONDITION_FAILED)
        );
    }

    #[test]
    fn formats() {
        assert_eq!(x_timestamp(1.5), "0000000001.50000");
        assert_eq!(iso(1_700_000_000.123456), "2023-11-14T22:13:20.123456");
        assert_eq!(title_case("x-object-meta-foo-bar"), "X-Object-Meta-Foo-Bar");
    }

    #[test]
    fn metadata_merge_and_limits() {
        let mut meta = Meta::new();
        meta.insert("x-container-meta-old".into(), "1".into());
        meta.insert("x-container-meta-gone".into(), "1".into());
        merge_metadata(
            &h(&[
                ("x-container-meta-new", "v"),
                ("x-container-meta-old", ""),
                ("x-remove-container-meta-gone", "x"),
                ("x-container-read", ".r:*"),
            ]),
            "container",
            &["x-container-read"],
            &mut meta,
        )
        .unwrap();
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            ["x-container-meta-new", "x-container-read"]
        );
        let long = "v".repeat(257);
        assert!(check_metadata(&h(&[("x-object-meta-a", &long)]), "object").is_err());
        assert!(check_metadata(&h(&[("x-object-meta-a", "ok")]), "object").is_ok());
    }
}
