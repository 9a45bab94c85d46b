//! A storage request, classified once from its method, path, query and headers: what it
//! does, how it takes part in large objects, links and versions, and every place it
//! names besides its path (a copy source or destination, a link target, a dynamic large
//! object's segments). The policies, the embedded store and the proxy read the request
//! from here; none of them parses the query or the reference headers again.

use http::{HeaderMap, Method};

use crate::error::{Error, Result};
use crate::http_util::header_text;
use crate::swift::names::{self, Reference};
use crate::swift::query;
use crate::swift::target::Target;

/// `?multipart-manifest=`: how a request treats a static large object's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manifest {
    /// `put`: the body is a manifest to store.
    Put,
    /// `get`: the manifest itself, not the object it stands for.
    Get,
    /// `delete`: the manifest and its segments.
    Delete,
}

/// What a storage request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `POST` or `DELETE` with `?bulk-delete` on any path of an account, as Swift's bulk
    /// middleware takes either: its body names the paths it deletes.
    BulkDelete,
    /// `PUT ?extract-archive=`: an archive's files stored as objects.
    ExtractArchive,
    /// The account itself: its listing, metadata, creation or deletion.
    Account,
    /// A container: its listing, metadata, creation or deletion.
    Container,
    /// An object.
    Object,
}

/// What a request does at a place it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A place a request names besides its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    /// A storage id: the request's own account unless a `*-Account` header names one.
    pub account: String,
    /// The container, and the object (empty when only the container is named).
    pub reference: Reference,
    /// `reference.object` is a prefix: the segments of a dynamic large object.
    pub prefix: bool,
    pub access: Access,
    /// The header that names it.
    pub via: &'static str,
}

/// How a storage request showed who it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// None: what the container's ACL lets anyone do, and OPTIONS.
    Anonymous,
    /// A temporary URL's signature, good for the one object and methods it was made for.
    TempUrl,
    /// A token (`X-Auth-Token` or `X-Storage-Token`).
    Token,
    /// A token, and the `X-Service-Token` of a user of the service group: the request
    /// acts in the service account.
    ServiceToken,
    /// The connection's client certificate, which acts as a user.
    Certificate,
    /// A user's key (`X-Auth-User` and `X-Auth-Key`), checked for this one request.
    Key,
}

impl Credential {
    /// Its name in the access log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Credential::Anonymous => "anonymous",
            Credential::TempUrl => "temp-url",
            Credential::Token => "token",
            Credential::ServiceToken => "service-token",
            Credential::Certificate => "certificate",
            Credential::Key => "key",
        }
    }
}

/// A storage request, classified.
#[derive(Debug, Clone)]
pub(crate) struct Operation {
    pub method: Method,
    pub target: Target,
    /// The query, percent-decoded, in order (a repeated key means its last value).
    pub query: Vec<(String, String)>,
    pub kind: Kind,
    pub manifest: Option<Manifest>,
    /// `?symlink=get`: the link itself, not its target.
    pub symlink_get: bool,
    /// `?version-id=`: a version of the object (of the copy source, for a copy).
    pub version_id: Option<String>,
    /// How it showed who it comes from, as authentication found.
    pub credential: Credential,
    /// Every place named besides the path, in the order of [`REFERENCES`].
    pub references: Vec<Named>,
}

/// A header that names another place.
struct Naming {
    /// Its name, and as Swift's answers spell it.
    header: &'static str,
    via: &'static str,
    /// The header naming the place's account, if it may be in another.
    account: Option<&'static str>,
    access: Access,
    /// It names a prefix: the segments of a dynamic large object.
    prefix: bool,
}

const REFERENCES: &[Naming] = &[
    Naming {
        header: "x-copy-from",
        via: "X-Copy-From",
        account: Some("x-copy-from-account"),
        access: Access::Read,
        prefix: false,
    },
    Naming {
        header: "destination",
        via: "Destination",
        account: Some("destination-account"),
        access: Access::Write,
        prefix: false,
    },
    Naming {
        header: "x-symlink-target",
        via: "X-Symlink-Target",
        account: Some("x-symlink-target-account"),
        access: Access::Read,
        prefix: false,
    },
    Naming {
        header: "x-object-manifest",
        via: "X-Object-Manifest",
        account: None,
        access: Access::Read,
        prefix: true,
    },
];

/// Headers a request may give once only: given twice, one value could be judged and the
/// other acted on.
const ONCE: &[&str] = &[
    "x-copy-from",
    "x-copy-from-account",
    "destination",
    "destination-account",
    "x-symlink-target",
    "x-symlink-target-account",
    "x-symlink-target-etag",
    "x-object-manifest",
];

impl Operation {
    /// Classifies a storage request on `target`. Refuses (400, 412) a query or a
    /// reference header that does not parse, with what was wrong.
    pub(crate) fn classify(
        method: &Method,
        target: Target,
        query: Option<&str>,
        headers: &HeaderMap,
        shown: Credential,
    ) -> Result<Operation> {
        let pairs = query::query_pairs(query)?;
        let param = |name| query::param(&pairs, name);
        let kind = if query::is_bulk_delete(method, &pairs) {
            Kind::BulkDelete
        } else if *method == Method::PUT && param("extract-archive").is_some() {
            Kind::ExtractArchive
        } else {
            match (&target.container, &target.object) {
                (None, _) => Kind::Account,
                (Some(_), None) => Kind::Container,
                (Some(_), Some(_)) => Kind::Object,
            }
        };
        // a manifest is uploaded by PUT only: on a POST, Swift ignores the parameter
        let manifest = match param("multipart-manifest") {
            Some("put") if *method == Method::PUT => Some(Manifest::Put),
            Some("put") => None,
            Some("get") => Some(Manifest::Get),
            Some("delete") => Some(Manifest::Delete),
            _ => None,
        };
        // one pass over the headers, not a lookup of each name
        let mut given = [None; ONCE.len()];
        for (name, value) in headers {
            if let Some(i) = ONCE.iter().position(|n| *n == name.as_str()) {
                if given[i].is_some() {
                    return Err(Error::bad_request(format!(
                        "the header {name} is given more than once"
                    )));
                }
                given[i] = Some(value);
            }
        }
        let text = |name: &str| -> Result<Option<&str>> {
            let at = ONCE.iter().position(|n| *n == name);
            at.and_then(|i| given[i])
                .map(|v| header_text(name, v))
                .transpose()
        };
        let mut references = Vec::new();
        for r in REFERENCES {
            let Some(value) = text(r.header)? else {
                continue;
            };
            let account = match r.account {
                Some(h) => text(h)?.map(|a| names::account(a, h)).transpose()?,
                None => None,
            };
            let reference = if r.prefix {
                Reference::parse(value, r.via)?
            } else {
                Reference::object(value, r.via)?
            };
            references.push(Named {
                account: account.unwrap_or_else(|| target.account.clone()),
                reference,
                prefix: r.prefix,
                access: r.access,
                via: r.via,
            });
        }
        Ok(Operation {
            method: method.clone(),
            kind,
            manifest,
            symlink_get: param("symlink") == Some("get"),
            version_id: param("version-id").map(str::to_owned),
            credential: shown,
            references,
            target,
            query: pairs,
        })
    }

    /// The value of a query parameter (the last one given).
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        query::param(&self.query, name)
    }

    /// The place a header names, if the request has it.
    pub(crate) fn named(&self, via: &str) -> Option<&Named> {
        self.references.iter().find(|n| n.via == via)
    }

    /// A copy: `COPY`, or `PUT` with `X-Copy-From`. Its `version-id` names a version of
    /// the source, as Swift's copy middleware takes it.
    pub(crate) fn copies(&self) -> bool {
        self.method.as_str() == "COPY"
            || (self.method == Method::PUT && self.named("X-Copy-From").is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        let mut parts = path.splitn(3, '/').map(str::to_owned);
        Target {
            account: parts.next().unwrap(),
            container: parts.next(),
            object: parts.next(),
        }
    }

    fn op(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Result<Operation> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        Operation::classify(
            &method,
            target(path),
            Some(query),
            &h,
            Credential::Anonymous,
        )
    }

    #[test]
    fn kinds() {
        let kind = |m, p, q| op(m, p, q, &[]).unwrap().kind;
        assert_eq!(kind("GET", "AUTH_a", ""), Kind::Account);
        assert_eq!(kind("PUT", "AUTH_a/c", ""), Kind::Container);
        assert_eq!(kind("GET", "AUTH_a/c/o", ""), Kind::Object);
        for (m, p) in [
            ("POST", "AUTH_a"),
            ("DELETE", "AUTH_a"),
            ("DELETE", "AUTH_a/c/o"),
        ] {
            assert_eq!(kind(m, p, "bulk-delete"), Kind::BulkDelete, "{m} {p}");
        }
        assert_eq!(kind("GET", "AUTH_a", "bulk-delete"), Kind::Account);
        assert_eq!(
            kind("PUT", "AUTH_a/c", "extract-archive=tar"),
            Kind::ExtractArchive
        );
        assert_eq!(
            kind("POST", "AUTH_a/c", "extract-archive=tar"),
            Kind::Container
        );
    }

    #[test]
    fn the_query_is_read_once_with_its_last_repeat() {
        let o = op(
            "GET",
            "AUTH_a/c/o",
            "multipart-manifest=put&multipart-manifest=get&symlink=get&version-id=1.5",
            &[],
        )
        .unwrap();
        assert_eq!(o.manifest, Some(Manifest::Get));
        assert!(o.symlink_get);
        assert_eq!(o.version_id.as_deref(), Some("1.5"));
        assert_eq!(o.credential, Credential::Anonymous);
        assert!(op("GET", "AUTH_a/c/o", "prefix=%ff", &[]).is_err());
        assert_eq!(
            op("DELETE", "AUTH_a/c/o", "multipart-manifest=nonsense", &[])
                .unwrap()
                .manifest,
            None
        );
    }

    #[test]
    fn a_manifest_is_uploaded_by_put_only() {
        let manifest = |m| {
            op(m, "AUTH_a/c/o", "multipart-manifest=put", &[])
                .unwrap()
                .manifest
        };
        assert_eq!(manifest("PUT"), Some(Manifest::Put));
        assert_eq!(manifest("POST"), None);
    }

    #[test]
    fn every_reference_is_named_with_its_account() {
        let o = op(
            "PUT",
            "AUTH_a/c/o",
            "",
            &[
                ("x-copy-from", "src/obj%20one"),
                ("x-copy-from-account", "AUTH_b"),
                ("x-symlink-target", "t/x"),
                ("x-object-manifest", "segs/pre"),
            ],
        )
        .unwrap();
        assert!(o.copies());
        let copy = o.named("X-Copy-From").unwrap();
        assert_eq!(copy.account, "AUTH_b");
        assert_eq!(copy.reference.container, "src");
        assert_eq!(copy.reference.object, "obj one");
        assert_eq!(copy.access, Access::Read);
        let link = o.named("X-Symlink-Target").unwrap();
        assert_eq!(link.account, "AUTH_a");
        let dlo = o.named("X-Object-Manifest").unwrap();
        assert!(dlo.prefix);
        assert_eq!(dlo.reference.object, "pre");
        let copy = op(
            "COPY",
            "AUTH_a/c/o",
            "",
            &[("destination", "d/x"), ("destination-account", "AUTH_c")],
        )
        .unwrap();
        assert!(copy.copies());
        let dest = copy.named("Destination").unwrap();
        assert_eq!(
            (dest.account.as_str(), dest.access),
            ("AUTH_c", Access::Write)
        );
    }

    #[test]
    fn every_reference_header_is_read_once() {
        for r in REFERENCES {
            for name in std::iter::once(r.header).chain(r.account) {
                assert!(ONCE.contains(&name), "{name}");
            }
        }
        for name in ONCE {
            let e = op("PUT", "AUTH_a/c/o", "", &[(name, "c/o"), (name, "c/p")]).unwrap_err();
            assert!(e.to_string().contains("more than once"), "{name}: {e}");
        }
    }

    #[test]
    fn bad_references_are_refused_with_what_was_wrong() {
        for (header, value) in [
            ("x-copy-from", "nocontainer"),
            ("x-copy-from", "c/a%00b"),
            ("destination", "%00versions%00c/x"),
            ("x-symlink-target", "%ff/x"),
            ("x-object-manifest", "/"),
        ] {
            let e = op("PUT", "AUTH_a/c/o", "", &[(header, value)]).unwrap_err();
            assert!(
                matches!(e.status().as_u16(), 400 | 412),
                "{header}: {value}: {e}"
            );
        }
        let e = op(
            "PUT",
            "AUTH_a/c/o",
            "",
            &[("x-copy-from", "c/o"), ("x-copy-from-account", "a/b")],
        )
        .unwrap_err();
        assert!(e.status().is_client_error());
    }
}
