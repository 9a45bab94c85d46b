//! Storage requests for accounts on an upstream cluster. The service token the gateway
//! adds can do anything there, so every decision the cluster would take with the
//! client's own identity is taken here first: the account and container asked for, and
//! every other place the request or its answer reaches (copy sources and destinations,
//! symlink targets, large-object segments). Requests without a token go on without one,
//! for the cluster to judge (public reads, temporary URLs).

use http::{HeaderMap, Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use crate::auth::identity::{Identity, Principal};
use crate::backend::local::{self, Target, acl::AccountAccess};
use crate::backend::swift::{Cluster, Forward};
use crate::error::{Error, Result};
use crate::http_util::{Body, RequestBody, header_str};

/// Who asks, and what they may reach on one cluster.
struct Judge<'a> {
    cluster: &'a Cluster,
    identity: &'a Identity,
    principal: &'a Principal,
    groups: Vec<String>,
    referer: Option<String>,
}

impl Judge<'_> {
    async fn upstream(&self, account: &str) -> Result<String> {
        self.cluster
            .upstream_account(account, self.identity.prefixes())
            .await
    }

    /// Whether the gateway holds `account` on this upstream.
    fn holds(&self, account: &str) -> bool {
        self.cluster.holds(
            account,
            self.identity.account_by_storage_id(account).as_ref(),
        )
    }

    /// What the caller may do in an account (a storage id): everything as its owner or
    /// a reseller admin, else what the account's ACL grants; nothing in accounts the
    /// gateway does not hold on this cluster.
    async fn account_access(&self, account: &str) -> Result<AccountAccess> {
        let p = self.principal;
        if p.owns(account) {
            return Ok(AccountAccess::Admin);
        }
        if !self.holds(account) {
            return Ok(AccountAccess::None);
        }
        let headers = self
            .cluster
            .account_headers(&self.upstream(account).await?)
            .await?;
        Ok(local::acl::account_access(
            headers
                .get(local::acl::ACCOUNT_ACL)
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                .map(str::to_owned)
                .as_ref(),
            &self.groups,
        ))
    }

    /// Whether the caller may read (or write) `container` (or, without one, the
    /// account); `object` says whether an object in it is meant.
    async fn may(
        &self,
        account: &str,
        container: Option<&str>,
        object: bool,
        write: bool,
    ) -> Result<bool> {
        let access = self.account_access(account).await?;
        self.allowed(access, account, container, object, write)
            .await
    }

    /// `may`, for a caller whose access to the account is known already.
    async fn allowed(
        &self,
        access: AccountAccess,
        account: &str,
        container: Option<&str>,
        object: bool,
        write: bool,
    ) -> Result<bool> {
        Ok(match (access, container) {
            (AccountAccess::Admin, _) => true,
            (AccountAccess::ReadWrite, Some(_)) => true,
            (AccountAccess::ReadWrite | AccountAccess::ReadOnly, None) => !write,
            (AccountAccess::ReadOnly, Some(_)) => !write,
            (AccountAccess::None, None) => false,
            (AccountAccess::None, Some(_)) if (write && !object) || !self.holds(account) => false,
            (AccountAccess::None, Some(c)) => {
                let Some(meta) = self
                    .cluster
                    .container_headers(&self.upstream(account).await?, c)
                    .await?
                else {
                    return Ok(false);
                };
                let name = if write {
                    "x-container-write"
                } else {
                    "x-container-read"
                };
                let acl = local::acl::parse(
                    meta.get(name)
                        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok()),
                );
                acl.has_group(&self.groups)
                    || (!write
                        && (object || acl.listings)
                        && local::acl::referrer_allowed(self.referer.as_deref(), &acl.referrers))
            }
        })
    }

    fn refusal(&self, what: &str) -> String {
        format!("{} may not {what}", self.principal.label())
    }

    fn denied(&self, what: &str) -> Error {
        Error::Forbidden(self.refusal(what))
    }
}

/// `<container>/<object>` of a header, percent-decoded.
fn container_of(value: &str) -> Option<String> {
    let decoded = percent_decode_str(value).decode_utf8().ok()?;
    let c = decoded.trim_start_matches('/').split('/').next()?;
    (!c.is_empty()).then(|| c.to_owned())
}

/// An account named in a header (`X-Copy-From-Account`, …), else the request's own.
fn account_in(headers: &HeaderMap, name: &str, own: &str) -> Result<String> {
    Ok(match header_str(headers, name)? {
        Some(a) => percent_decode_str(a).decode_utf8_lossy().into_owned(),
        None => own.to_owned(),
    })
}

/// Checks what a request reaches besides its own path; `manifest_get` when a copy is to
/// copy an SLO manifest itself rather than its data.
async fn check_references(
    judge: &Judge<'_>,
    headers: &HeaderMap,
    target: &Target,
    manifest_get: bool,
) -> Result<()> {
    let own = target.account.as_str();
    if let Some(src) = header_str(headers, "x-copy-from")? {
        let account = account_in(headers, "x-copy-from-account", own)?;
        let c = container_of(src);
        if !judge.may(&account, c.as_deref(), true, false).await? {
            return Err(judge.denied(&format!("copy from {account}/{src}")));
        }
        if manifest_get {
            let src = percent_decode_str(src).decode_utf8_lossy();
            check_manifest_copy(judge, &account, &src, own).await?;
        }
    }
    if let Some(dest) = header_str(headers, "destination")? {
        let account = account_in(headers, "destination-account", own)?;
        let c = container_of(dest);
        if !judge.may(&account, c.as_deref(), true, true).await? {
            // as in Swift, a copy of nothing is 404 wherever it was to go; the caller
            // may read the source, so its absence is theirs to know
            if let (Some(c), Some(o)) = (&target.container, &target.object)
                && !judge
                    .cluster
                    .object_exists(&judge.upstream(own).await?, c, o)
                    .await?
            {
                return Err(Error::NotFound(format!("no object {c}/{o} to copy")));
            }
            return Err(judge.denied(&format!("copy to {account}/{dest}")));
        }
        if manifest_get && let (Some(c), Some(o)) = (&target.container, &target.object) {
            check_manifest_copy(judge, own, &format!("{c}/{o}"), &account).await?;
        }
    }
    // a dynamic link may point anywhere, and is judged when followed; a static one
    // needs its target now
    if let Some(t) = header_str(headers, "x-symlink-target")?
        && headers.contains_key("x-symlink-target-etag")
    {
        let account = account_in(headers, "x-symlink-target-account", own)?;
        let c = container_of(t);
        if !judge.may(&account, c.as_deref(), true, false).await? {
            return Err(judge.denied(&format!("link to {account}/{t}")));
        }
    }
    if let Some(m) = header_str(headers, "x-object-manifest")? {
        let c = container_of(m);
        if !judge.may(own, c.as_deref(), true, false).await? {
            return Err(judge.denied(&format!("make a manifest of {m}")));
        }
    }
    Ok(())
}

/// What Swift leaves unquoted in a path, besides `/`.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A manifest copied as a manifest into an account the caller does not own: its
/// segments, which name containers of that account, must be readable there by the caller,
/// as Swift checks them with the caller's rights (the service could read them all).
/// Refused segments are listed as Swift's SLO lists them, in a 400.
/// `source` is `<container>/<object>` in `source_account`, `dest` the account copied to.
async fn check_manifest_copy(
    judge: &Judge<'_>,
    source_account: &str,
    source: &str,
    dest: &str,
) -> Result<()> {
    if judge.account_access(dest).await? == AccountAccess::Admin {
        return Ok(());
    }
    let Some((c, o)) = source.trim_start_matches('/').split_once('/') else {
        return Ok(());
    };
    let Some(segments) = judge
        .cluster
        .manifest_segments(&judge.upstream(source_account).await?, c, o)
        .await?
    else {
        return Ok(());
    };
    let mut refused = String::new();
    for segment in &segments {
        let container = segment.trim_start_matches('/').split('/').next();
        if !judge.may(dest, container, true, false).await? {
            let quoted = segment
                .split('/')
                .map(|p| percent_encoding::utf8_percent_encode(p, PATH_SEGMENT).to_string())
                .collect::<Vec<_>>()
                .join("/");
            refused.push_str(&format!("{quoted}, 403 Forbidden\n"));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::Report {
        status: StatusCode::BAD_REQUEST,
        body: format!("Errors:\n{refused}"),
        content_type: "text/plain",
    })
}

/// Checks where an answer's data came from: a symlink's target (`Content-Location`) and
/// a large object's segments. Nothing of the body has been sent yet.
async fn check_sources(
    judge: &Judge<'_>,
    resp: &Response<Body>,
    target: &Target,
    owner: bool,
) -> Result<()> {
    let h = resp.headers();
    // a header that cannot be read cannot be judged: the answer is not sent
    let header = |name: &str| {
        header_str(h, name).map_err(|_| {
            Error::BadGateway(format!("the cluster's answer has an unreadable {name}"))
        })
    };
    let mut account = target.account.clone();
    let mut location: Option<(String, String)> = None;
    if let Some(loc) = header("content-location")? {
        let decoded = percent_decode_str(loc).decode_utf8_lossy().into_owned();
        let mut parts = decoded.trim_start_matches('/').splitn(4, '/');
        let (_, a, c, o) = (parts.next(), parts.next(), parts.next(), parts.next());
        if let (Some(a), Some(c), Some(o)) = (a, c, o) {
            let a = a.to_owned();
            if !judge.may(&a, Some(c), true, false).await? {
                return Err(judge.denied(&format!("read the target of this link ({a}/{c})")));
            }
            account = a;
            location = Some((c.to_owned(), o.to_owned()));
        }
    }
    if owner && account == target.account {
        return Ok(());
    }
    if let Some(m) = header("x-object-manifest")?
        && !judge
            .may(&account, container_of(m).as_deref(), true, false)
            .await?
    {
        return Err(judge.denied("read the segments of this object"));
    }
    if h.get("x-static-large-object")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
    {
        let (c, o) = match (&location, &target.container, &target.object) {
            (Some((c, o)), _, _) => (c.clone(), o.clone()),
            (None, Some(c), Some(o)) => (c.clone(), o.clone()),
            _ => return Ok(()),
        };
        let segments = judge
            .cluster
            .manifest_containers(&judge.upstream(&account).await?, &c, &o)
            .await?;
        // Swift answers 409 when an SLO's segments cannot be loaded
        for s in segments {
            if !judge.may(&account, Some(&s), true, false).await? {
                return Err(Error::Conflict(
                    judge.refusal("read the segments of this object"),
                ));
            }
        }
    }
    Ok(())
}

/// A storage request for an account on an upstream cluster.
pub async fn handle<B: RequestBody>(
    cluster: &Cluster,
    identity: &Identity,
    mut req: Request<B>,
    target: Target,
    principal: Option<Principal>,
    how: Forward<'_>,
) -> Result<Response<Body>> {
    let upstream = cluster
        .upstream_account(&target.account, identity.prefixes())
        .await?;
    let Some(p) = principal else {
        return cluster.forward(req, &upstream, &how).await;
    };
    let how = Forward {
        as_service: true,
        ..how
    };
    let method = req.method().clone();
    if target.container.is_none() && matches!(method, Method::PUT | Method::DELETE) {
        return Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: "GET, HEAD, POST",
        });
    }
    crate::http_util::is_chunked(req.headers())?;
    if !p.is_reseller_admin() {
        if let Some(h) = req
            .headers()
            .keys()
            .find(|k| k.as_str().contains("-sysmeta-"))
        {
            return Err(Error::Forbidden(format!(
                "{} may not set system metadata ({h})",
                p.label()
            )));
        }
        if let Some(h) = req
            .headers()
            .keys()
            .find(|k| local::is_quota_header(k.as_str()))
        {
            return Err(Error::Forbidden(format!(
                "only a reseller admin may set an account quota ({h})"
            )));
        }
    }
    let judge = Judge {
        cluster,
        identity,
        principal: &p,
        groups: p.groups_header().split(',').map(str::to_owned).collect(),
        referer: header_str(req.headers(), "referer")?.map(str::to_owned),
    };
    let access = judge.account_access(&target.account).await?;
    let owner = access == AccountAccess::Admin;
    // a COPY reads its path and writes its destination
    let write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "COPY");
    let query = req.uri().query().unwrap_or_default();
    let versioned = query
        .split('&')
        .any(|kv| kv.split('=').next() == Some("version-id"));
    let manifest_get = query.split('&').any(|kv| kv == "multipart-manifest=get");
    if !owner {
        if versioned {
            return Err(judge.denied("reach the versions of an object: they are the owner's"));
        }
        let manifest_put = query.split('&').any(|kv| kv == "multipart-manifest=put");
        if manifest_put {
            return Err(judge.denied("upload a manifest here: only the account's owner may"));
        }
        let allowed = judge
            .allowed(
                access,
                &target.account,
                target.container.as_deref(),
                target.object.is_some(),
                write,
            )
            .await?;
        if !allowed {
            return Err(judge.denied(&format!("do this in {}", target.account)));
        }
        // no one else sees ACLs or keys, or sets them: the service token would let them
        local::strip_privileged(req.headers_mut());
    }
    check_references(&judge, req.headers(), &target, manifest_get).await?;
    let reads = matches!(method, Method::GET | Method::HEAD);
    let mut resp = cluster.forward(req, &upstream, &how).await?;
    // a static link whose target changed is 409, but only to who may read the target
    let broken_link = resp.status() == StatusCode::CONFLICT
        && resp.headers().contains_key(http::header::CONTENT_LOCATION);
    if reads
        && (resp.status().is_success() || broken_link)
        && let Err(e) = check_sources(&judge, &resp, &target, owner).await
    {
        // a link whose target is out of reach still says where it points, as in Swift
        let location = resp.headers().get(http::header::CONTENT_LOCATION).cloned();
        let mut refused = match e {
            e @ (Error::Forbidden(_) | Error::Conflict(_)) => e.into_response(""),
            e => return Err(e),
        };
        if let Some(v) = location {
            refused
                .headers_mut()
                .insert(http::header::CONTENT_LOCATION, v);
        }
        return Ok(refused);
    }
    if !owner {
        local::strip_privileged(resp.headers_mut());
    }
    Ok(resp)
}
