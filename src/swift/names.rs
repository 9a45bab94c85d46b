//! Names in storage paths and in every other place a request names an object or a
//! container (copy sources and destinations, symlink targets, manifests, bulk bodies,
//! archive containers): one set of rules for all of them, so that no way in accepts a
//! name a direct PUT refuses. Names beginning with NUL are the store's own (hidden
//! containers of object versioning); a name with a NUL is refused wherever it comes from.

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::swift::versions;

/// Swift's limits, in characters (Swift counts the decoded name, not its bytes).
pub(crate) const MAX_OBJECT_NAME_LENGTH: usize = 1024;
pub(crate) const MAX_CONTAINER_NAME_LENGTH: usize = 256;

/// Swift's answer to a name that is not UTF-8 or holds a NUL.
fn invalid(what: &str) -> Error {
    Error::PreconditionFailed(format!(
        "Invalid UTF8 or contains NULL: {what} must be UTF-8 text without NUL"
    ))
}

/// A percent-encoded name, decoded: `None` when it is not UTF-8 or holds a NUL.
pub(crate) fn decode(raw: &str) -> Option<String> {
    let s = percent_decode_str(raw).decode_utf8().ok()?;
    (!s.contains('\0')).then(|| s.into_owned())
}

/// A name a header gives as text (not percent-encoded): refused when it holds a NUL.
pub(crate) fn plain<'a>(value: &'a str, what: &str) -> Result<&'a str> {
    if value.contains('\0') {
        return Err(invalid(what));
    }
    Ok(value)
}

/// A container name a request creates or writes to.
pub(crate) fn check_container(name: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(invalid("a container name"));
    }
    let n = name.chars().count();
    if n > MAX_CONTAINER_NAME_LENGTH {
        return Err(Error::bad_request(format!(
            "Container name length of {n} longer than {MAX_CONTAINER_NAME_LENGTH}"
        )));
    }
    if name.contains('/') {
        return Err(Error::bad_request("Container name cannot contain slashes"));
    }
    Ok(())
}

/// An object name a request creates or writes to.
pub(crate) fn check_object(name: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(invalid("an object name"));
    }
    let n = name.chars().count();
    if n > MAX_OBJECT_NAME_LENGTH {
        return Err(Error::bad_request(format!(
            "Object name length of {n} longer than {MAX_OBJECT_NAME_LENGTH}"
        )));
    }
    Ok(())
}

/// A place a header or a body names as `[/]<container>[/<object>]`, percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub container: String,
    /// Empty when only the container is named.
    pub object: String,
}

/// Swift's answer to a reference that does not have the shape its header needs.
fn shape(what: &str) -> Error {
    Error::PreconditionFailed(format!(
        "{what} header must be of the form <container name>/<object name>"
    ))
}

/// `[/]<container>[/<object>]` split; `None` without a container.
fn split(decoded: &str) -> Option<(&str, &str)> {
    let rest = decoded.trim_start_matches('/');
    let (container, object) = rest.split_once('/').unwrap_or((rest, ""));
    (!container.is_empty()).then_some((container, object))
}

impl Reference {
    /// Decodes `raw`; `what` names its source in refusals. The container must be there;
    /// the names pass the same checks as those of a direct PUT.
    pub(crate) fn parse(raw: &str, what: &str) -> Result<Reference> {
        Reference::from_text(&decode(raw).ok_or_else(|| invalid(what))?, what)
    }

    /// As `parse`, for a place given as text, not percent-encoded (an SLO segment).
    pub(crate) fn from_text(text: &str, what: &str) -> Result<Reference> {
        let (container, object) = split(plain(text, what)?)
            .ok_or_else(|| Error::PreconditionFailed(format!("{what} must name a container")))?;
        Reference::checked(container, object)
    }

    /// `parse`, for a header that must name an object (`X-Copy-From`, `Destination`,
    /// `X-Symlink-Target`).
    pub(crate) fn object(raw: &str, header: &str) -> Result<Reference> {
        let decoded = decode(raw).ok_or_else(|| invalid(header))?;
        let (container, object) = split(&decoded)
            .filter(|(_, o)| !o.is_empty())
            .ok_or_else(|| shape(header))?;
        Reference::checked(container, object)
    }

    fn checked(container: &str, object: &str) -> Result<Reference> {
        check_container(container)?;
        if !object.is_empty() {
            check_object(object)?;
        }
        Ok(Reference {
            container: container.to_owned(),
            object: object.to_owned(),
        })
    }
}

/// An account a header names (`X-Copy-From-Account`, `Destination-Account`,
/// `X-Symlink-Target-Account`), percent-decoded.
pub(crate) fn account(raw: &str, header: &str) -> Result<String> {
    let a = decode(raw).ok_or_else(|| invalid(header))?;
    if a.is_empty() || a.contains('/') {
        return Err(Error::PreconditionFailed(format!(
            "{header} must name one account"
        )));
    }
    Ok(a)
}

/// Where an answer's data came from, as a cluster's `Content-Location` says: an object,
/// or one version of it (`?version-id=`, or its name in the hidden container of its
/// container's versions, which is how Swift names the target of a link to a versioned
/// object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub account: String,
    pub container: String,
    pub object: String,
    pub version: Option<String>,
}

impl Location {
    /// `None` when the value is not `/v1/<account>/<container>/<object>[?version-id=…]`.
    pub(crate) fn parse(value: &str) -> Option<Location> {
        let (path, query) = value.split_once('?').unwrap_or((value, ""));
        let mut parts = path.trim_start_matches('/').splitn(4, '/');
        let (_version, account, container, object) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // the hidden names hold NULs: decoded as they are, then taken apart
        let raw = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        let (account, container, object) = (decode(account)?, raw(container)?, raw(object)?);
        let version = crate::swift::query::query_pairs(Some(query))
            .ok()?
            .iter()
            .rev()
            .find(|(k, _)| k == "version-id")
            .map(|(_, v)| v.clone());
        if let Some(primary) = versions::versioned_container(&container) {
            let (object, ticks) = versions::split_version_object(&object)?;
            return Some(Location {
                account,
                container: primary.to_owned(),
                object: object.to_owned(),
                version: Some(versions::version_id(ticks)),
            });
        }
        if container.is_empty()
            || object.is_empty()
            || container.contains('\0')
            || object.contains('\0')
        {
            return None;
        }
        Some(Location {
            account,
            container,
            object,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<Reference>) -> u16 {
        match r {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn references_pass_the_checks_of_a_direct_put() {
        let r = Reference::object("/c/a%20b/c", "Destination").unwrap();
        assert_eq!((r.container.as_str(), r.object.as_str()), ("c", "a b/c"));
        for bad in ["c/a%00b", "%00versions%00c/x", "c/%ff", "%00/%00"] {
            assert_eq!(status(Reference::object(bad, "Destination")), 412, "{bad}");
        }
        assert_eq!(status(Reference::object("c", "Destination")), 412);
        assert_eq!(status(Reference::object("/", "Destination")), 412);
        let long = format!("c/{}", "é".repeat(1025));
        assert_eq!(status(Reference::object(&long, "Destination")), 400);
        let fits = format!("c/{}", "é".repeat(1024));
        assert_eq!(status(Reference::object(&fits, "Destination")), 200);
        let long_container = format!("{}/o", "c".repeat(257));
        assert_eq!(
            status(Reference::object(&long_container, "X-Copy-From")),
            400
        );
        assert_eq!(status(Reference::from_text("/c/a\0b", "a segment")), 412);
        assert_eq!(
            Reference::parse("c", "X-Object-Manifest").unwrap().object,
            ""
        );
    }

    #[test]
    fn lengths_count_characters() {
        assert!(check_object(&"é".repeat(1024)).is_ok());
        assert!(check_object(&"é".repeat(1025)).is_err());
        assert!(check_container(&"é".repeat(256)).is_ok());
        assert!(check_container(&"é".repeat(257)).is_err());
        assert!(check_container("a/b").is_err());
        assert!(check_object("a\0b").is_err());
    }

    #[test]
    fn locations_name_the_container_a_version_is_of() {
        let hidden =
            Location::parse("/v1/AUTH_a/%00versions%00private/%00dir/obj%008203831171.30026")
                .unwrap();
        assert_eq!(hidden.container, "private");
        assert_eq!(hidden.object, "dir/obj");
        assert_eq!(hidden.version.as_deref(), Some("1796168828.69973"));
        let queried = Location::parse("/v1/AUTH_a/g/slo?version-id=1796168806.49845").unwrap();
        assert_eq!(
            (queried.container.as_str(), queried.object.as_str()),
            ("g", "slo")
        );
        assert_eq!(queried.version.as_deref(), Some("1796168806.49845"));
        let plain = Location::parse("/v1/AUTH_a/c/o%20x").unwrap();
        assert_eq!((plain.object.as_str(), plain.version), ("o x", None));
        for bad in [
            "/v1/AUTH_a/c",
            "/v1/AUTH_a/%00x/o",
            "/v1/AUTH_a/%00versions%00c/plain",
            "junk",
        ] {
            assert_eq!(Location::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn accounts() {
        assert_eq!(account("AUTH_a", "X-Copy-From-Account").unwrap(), "AUTH_a");
        assert!(account("AUTH_%00", "X-Copy-From-Account").is_err());
        assert!(account("", "X-Copy-From-Account").is_err());
        assert!(account("a/b", "X-Copy-From-Account").is_err());
    }
}
