//! `X-Delete-At` and `X-Delete-After`, as Swift reads them: whole numbers (Swift's
//! `int()`), a time to come, capped at Swift's largest timestamp.

use http::{HeaderMap, HeaderValue};

use crate::error::{Error, Result};
use crate::http_util::header_str;

/// Swift's largest timestamp (its `normalize_delete_at_timestamp`).
const LARGEST: u64 = 9_999_999_999;

/// A whole number as Python's `int()` reads one from text: blanks around it, a sign,
/// digits. Past `u64` it is as large as any time the cap allows.
fn whole(text: &str) -> Option<(bool, u64)> {
    let t = text.trim();
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((negative, digits.parse().unwrap_or(u64::MAX)))
}

/// When a PUT or POST asks its object to be deleted, at `now` (Unix seconds): 400 for
/// a value that is not a whole number or not in the future. As in Swift, an
/// `X-Delete-After` takes the place of any `X-Delete-At` beside it.
pub(crate) fn delete_at(headers: &HeaderMap, now: u64) -> Result<Option<u64>> {
    if let Some(v) = header_str(headers, "x-delete-after")? {
        let Some((negative, after)) = whole(v) else {
            return Err(Error::bad_request("Non-integer X-Delete-After"));
        };
        if negative || after == 0 {
            return Err(Error::bad_request("X-Delete-After in past"));
        }
        return Ok(Some(now.saturating_add(after).min(LARGEST)));
    }
    if let Some(v) = header_str(headers, "x-delete-at")? {
        let Some((negative, at)) = whole(v) else {
            return Err(Error::bad_request("Non-integer X-Delete-At"));
        };
        if negative || at <= now {
            return Err(Error::bad_request("X-Delete-At in past"));
        }
        return Ok(Some(at.min(LARGEST)));
    }
    Ok(None)
}

/// Checks a request's expiry headers and sends on the one `X-Delete-At` they mean, as
/// Swift's proxy does, so that a cluster is never asked what it cannot read.
pub(crate) fn normalize(headers: &mut HeaderMap, now: u64) -> Result<()> {
    if let Some(at) = delete_at(headers, now)? {
        headers.remove("x-delete-after");
        headers.insert("x-delete-at", HeaderValue::from(at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &'static str, value: &'static str) -> Result<Option<u64>> {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(value));
        delete_at(&h, 1_000)
    }

    #[test]
    fn expiry_is_a_whole_time_to_come_as_swift_reads_it() {
        assert_eq!(at("x-delete-at", " 2000 ").ok(), Some(Some(2000)));
        assert_eq!(at("x-delete-at", "+2000").ok(), Some(Some(2000)));
        assert_eq!(
            at("x-delete-at", &*"9".repeat(400).leak()).ok(),
            Some(Some(LARGEST))
        );
        assert_eq!(at("x-delete-after", "10").ok(), Some(Some(1010)));
        assert_eq!(
            at("x-delete-after", "99999999999999999999999").ok(),
            Some(Some(LARGEST))
        );
        for bad in ["1e400", "NaN", "inf", "1.5", "0x10", "", "abc", "1_000"] {
            assert!(at("x-delete-at", bad).is_err(), "{bad:?}");
            assert!(at("x-delete-after", bad).is_err(), "{bad:?}");
        }
        for past in ["1", "-5", "1000"] {
            assert!(at("x-delete-at", past).is_err(), "{past:?}");
        }
        assert!(at("x-delete-after", "0").is_err());
        assert!(at("x-delete-after", "-1").is_err());
    }

    #[test]
    fn an_x_delete_after_takes_the_place_of_an_x_delete_at_beside_it() {
        for beside in ["abc", "5000", "1"] {
            let mut h = HeaderMap::new();
            h.insert("x-delete-at", HeaderValue::from_static(beside));
            h.insert("x-delete-after", HeaderValue::from_static("50"));
            assert_eq!(delete_at(&h, 1_000).ok(), Some(Some(1_050)), "{beside:?}");
        }
    }
}
