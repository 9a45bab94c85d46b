//! How Swift's object versioning names versions: a versioned container keeps them in
//! the hidden container `\0versions\0<container>`, each named
//! `\0<object>\0<inverted version id>`, and a version id is a Swift timestamp.
//! The embedded store writes these names; the proxy reads them in a cluster's answers.

/// Version ids count in Swift's timestamp resolution: 10 µs.
pub(crate) const TICKS_PER_SECOND: f64 = 100_000.0;
const MAX_TICKS: u64 = 999_999_999_999_999;

pub(crate) fn ticks_of(ts: f64) -> u64 {
    // the whole part of a Duration of that many seconds: 0 for what is not a time
    std::time::Duration::try_from_secs_f64((ts * TICKS_PER_SECOND).round())
        .map_or(0, |d| d.as_secs())
}

/// A version id as Swift writes timestamps: `1700000000.12345`.
pub(crate) fn version_id(ticks: u64) -> String {
    format!("{:010}.{:05}", ticks / 100_000, ticks % 100_000)
}

/// Parses a version id (a Swift timestamp, possibly with an `_<offset>` suffix).
pub(crate) fn parse_version(v: &str) -> Option<u64> {
    let v = v.split('_').next()?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let f: f64 = v.parse().ok()?;
    (f < 1e10).then(|| ticks_of(f))
}

/// The hidden container that holds a container's versions.
pub(crate) fn hidden_container(container: &str) -> String {
    format!("\0versions\0{container}")
}

pub(crate) fn version_object(object: &str, ticks: u64) -> String {
    format!("\0{object}\0{}", version_id(MAX_TICKS - ticks))
}

/// The object name and version of a name in the hidden container.
pub(crate) fn split_version_object(name: &str) -> Option<(&str, u64)> {
    let (object, inv) = name.strip_prefix('\0')?.rsplit_once('\0')?;
    Some((object, MAX_TICKS.checked_sub(parse_version(inv)?)?))
}

/// The container whose versions a hidden container holds.
pub(crate) fn versioned_container(hidden: &str) -> Option<&str> {
    hidden.strip_prefix("\0versions\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let ticks = ticks_of(1796168828.69973);
        assert_eq!(version_id(ticks), "1796168828.69973");
        let name = version_object("a/b", ticks);
        assert_eq!(name, "\0a/b\08203831171.30026");
        assert_eq!(split_version_object(&name), Some(("a/b", ticks)));
        assert_eq!(versioned_container(&hidden_container("c")), Some("c"));
        assert_eq!(versioned_container("c"), None);
        assert_eq!(parse_version("1e5"), None);
    }
}
