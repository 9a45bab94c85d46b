//! Storage requests for accounts on an upstream cluster. The service token the gateway
//! adds can do anything there, so every decision the cluster would take with the
//! client's own identity is taken here first: the account and container asked for, and
//! every other place the request or its answer reaches (copy sources and destinations,
//! symlink targets, large-object segments). Requests without a token go on without one,
//! for the cluster to judge (public reads, temporary URLs).

use std::collections::HashMap;

use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::auth::identity::{Identity, Principal};
use crate::backend::swift::{Cluster, Forward, Listed};
use crate::body::{Body, RequestBody};
use crate::error::{Error, Result};
use crate::http_util::header_str;
use crate::swift::acl::{self, AccountAccess};
use crate::swift::limits;
use crate::swift::manifest;
use crate::swift::names;
use crate::swift::op::{Kind, Manifest, Operation};

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
        Ok(acl::account_access(
            headers
                .get(acl::ACCOUNT_ACL)
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

    /// `may`, for a caller whose access to the account is known already: the one access
    /// decision of [`acl::allows`], with the container's ACLs fetched only when they
    /// decide.
    async fn allowed(
        &self,
        access: AccountAccess,
        account: &str,
        container: Option<&str>,
        object: bool,
        write: bool,
    ) -> Result<bool> {
        let who = acl::Standing {
            owner: false,
            access,
            groups: &self.groups,
            referer: self.referer.as_deref(),
            temp_url: None,
        };
        let reach = |c| match container {
            None => acl::Reach::Account,
            Some(_) if object => acl::Reach::Object(c),
            Some(_) => acl::Reach::Container(c),
        };
        if let Some(decided) = acl::settled(&who, &reach(None), write) {
            return Ok(decided);
        }
        let meta = match container {
            Some(c) if self.holds(account) => {
                self.cluster
                    .container_headers(&self.upstream(account).await?, c)
                    .await?
            }
            _ => None,
        };
        let text = |name: &str| {
            meta.as_ref()
                .and_then(|m| m.get(name))
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        };
        let found = match (container, &meta) {
            (Some(name), Some(_)) => Some(acl::Container {
                name,
                read: text("x-container-read"),
                write: text("x-container-write"),
            }),
            _ => None,
        };
        Ok(acl::allows(&who, account, &reach(found), write))
    }

    fn refusal(&self, what: &str) -> String {
        format!("{} may not {what}", self.principal.label())
    }

    fn denied(&self, what: &str) -> Error {
        Error::forbidden("acl", self.refusal(what))
    }
}

/// Checks what a request reaches besides its own path. A copy reads its source as a GET
/// would, links and segments included, unless it copies a manifest or a link itself;
/// for a copy whose source's links were followed, the object they ended at, which the
/// copy is then pinned to ([`pin_copy`]).
async fn check_references(
    judge: &Judge<'_>,
    headers: &HeaderMap,
    op: &Operation,
) -> Result<Option<names::Location>> {
    let follow = Follow::of(op);
    let mut copied = None;
    let target = &op.target;
    let own = target.account.as_str();
    let manifest_get = op.manifest == Some(Manifest::Get);
    if let Some(from) = op.named("X-Copy-From") {
        let (account, source) = (&from.account, &from.reference);
        let src = format!("{}/{}", source.container, source.object);
        if !judge
            .may(account, Some(&source.container), true, false)
            .await?
        {
            return Err(judge.denied(&format!("copy from {account}/{src}")));
        }
        // with a copy source, `version-id` names a version of the source, and versions
        // are its owner's
        if op.version_id.is_some() && judge.account_access(account).await? != AccountAccess::Admin {
            return Err(judge.denied(&format!(
                "copy a version of {account}/{src}: versions are the owner's"
            )));
        }
        if manifest_get {
            check_manifest_copy(judge, account, &src, own).await?;
        }
        copied = copy_source(judge, follow, located(account, source.clone(), op)).await?;
    }
    if let Some(to) = op.named("Destination") {
        let account = &to.account;
        let c = Some(to.reference.container.clone());
        let dest = format!("{}/{}", to.reference.container, to.reference.object);
        if !judge.may(account, c.as_deref(), true, true).await? {
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
        if let (Some(c), Some(o)) = (&target.container, &target.object) {
            if manifest_get {
                check_manifest_copy(judge, own, &format!("{c}/{o}"), account).await?;
            }
            let source = names::Reference {
                container: c.clone(),
                object: o.clone(),
            };
            copied = copy_source(judge, follow, located(own, source, op)).await?;
        }
    }
    // a link is followed with the rights of whoever reads it, a temporary URL's among
    // them, which reach the whole account: one to a place in its own account needs the
    // maker's right to read that place, as a static link does wherever it points; a
    // dynamic link to another account is judged when followed
    if let Some(link) = op.named("X-Symlink-Target")
        && (link.account == own || headers.contains_key("x-symlink-target-etag"))
    {
        let (account, t) = (&link.account, &link.reference);
        if !judge.may(account, Some(&t.container), true, false).await? {
            return Err(judge.denied(&format!("link to {account}/{}/{}", t.container, t.object)));
        }
    }
    if let Some(dlo) = op.named("X-Object-Manifest") {
        let m = &dlo.reference;
        if !judge.may(own, Some(&m.container), true, false).await? {
            return Err(judge.denied(&format!("make a manifest of {}/{}", m.container, m.object)));
        }
    }
    Ok(copied)
}

/// A copy's source `at` and all that Swift reads with it, judged; where its links ended
/// when Swift follows them, which the copy is pinned to.
async fn copy_source(
    judge: &Judge<'_>,
    follow: Follow,
    at: names::Location,
) -> Result<Option<names::Location>> {
    let account = at.account.clone();
    let mut trace = Trace::new(judge, follow);
    trace.object(at, &account, 0, Reached::Link, true).await?;
    Ok(trace.end.filter(|_| follow.links))
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
        .manifest_segments(&judge.upstream(source_account).await?, c, o, None)
        .await?
    else {
        return Ok(());
    };
    let names: Vec<String> = segments.into_iter().map(|s| s.name).collect();
    readable_segments(judge, dest, &names).await
}

/// Segments (`/container/object`) a manifest in `account` names must be readable there
/// by the caller, as Swift checks them with the caller's rights (the service could read
/// them all). Refused segments are listed as Swift's SLO lists them, in a 400.
async fn readable_segments(judge: &Judge<'_>, account: &str, segments: &[String]) -> Result<()> {
    let mut refused = String::new();
    for segment in segments {
        let container = segment.trim_start_matches('/').split('/').next();
        if !judge.may(account, container, true, false).await? {
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

/// The body of a manifest upload, read to judge its segments, then sent on as it came.
/// Swift reads each segment with the service's rights as the manifest is stored, and
/// records what it found (etag, size): a segment, or what it links to, that the caller
/// may not read is refused, owner or not.
async fn judged_manifest<B: RequestBody>(
    judge: &Judge<'_>,
    account: &str,
    body: B,
) -> Result<http_body_util::Full<bytes::Bytes>> {
    let bytes = crate::http_util::read_limited(
        body,
        limits::MAX_MANIFEST_SIZE,
        "reading the manifest",
        || {
            Error::PayloadTooLarge(format!(
                "a manifest may hold {} bytes at most",
                limits::MAX_MANIFEST_SIZE
            ))
        },
    )
    .await?;
    // what cannot be read here is refused here: the cluster might read it otherwise
    let segments = manifest::parse(&bytes)?;
    let mut paths = Vec::new();
    for path in manifest::paths(&segments)? {
        names::Reference::from_text(path, "a manifest segment")?;
        paths.push(path.to_owned());
    }
    readable_segments(judge, account, &paths).await?;
    let segments: Vec<(String, bool)> = paths.into_iter().map(|p| (p, false)).collect();
    let follow = Follow {
        links: true,
        segments: true,
    };
    Trace::new(judge, follow)
        .segments(account, &segments, account, 0)
        .await?;
    Ok(http_body_util::Full::new(bytes))
}

/// How deep links and segments are followed to judge a read, and how many lookups one
/// read may cost; beyond either, the read is refused. Swift itself follows ten levels of
/// nested manifests, each segment through two links: at most 32 hops.
const TRACE_DEPTH: usize = 40;
const TRACE_LOOKUPS: usize = 1000;

/// How a place a read reaches is named, for the refusal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reached {
    Link,
    /// A segment of a static large object: Swift answers 409 when one cannot be read.
    SloSegment,
    DloSegment,
}

/// What Swift follows from the object at a request's path: its links, unless the
/// request asks for the link itself (`symlink=get`); the segments of the large object the
/// links end at, unless it asks for the manifest (`multipart-manifest=get`). Each asks
/// only for that: a link is followed to a manifest that is then served raw, and a large
/// object is assembled with its segments' links followed. What segments reach is always
/// followed.
#[derive(Debug, Clone, Copy)]
struct Follow {
    links: bool,
    segments: bool,
}

impl Follow {
    fn of(op: &Operation) -> Follow {
        Follow {
            links: !op.symlink_get,
            segments: op.manifest != Some(Manifest::Get),
        }
    }
}

/// One read's references, followed as Swift follows them with the service's rights
/// (links, the segments of large objects, and what those are in turn), each judged for
/// the caller.
struct Trace<'a, 'b> {
    judge: &'a Judge<'b>,
    follow: Follow,
    /// Where the links from the request's path ended: the object Swift reads.
    end: Option<names::Location>,
    lookups: usize,
    readable: HashMap<(String, String), bool>,
}

type Traced<'t> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 't>>;

impl<'a, 'b> Trace<'a, 'b> {
    fn new(judge: &'a Judge<'b>, follow: Follow) -> Self {
        Trace {
            judge,
            follow,
            end: None,
            lookups: 0,
            readable: HashMap::new(),
        }
    }

    fn spend(&mut self) -> Result<()> {
        self.lookups += 1;
        if self.lookups > TRACE_LOOKUPS {
            return Err(Error::Conflict(format!(
                "this object reaches more than {TRACE_LOOKUPS} others through links and \
                 segments: more than the gateway checks for one read"
            )));
        }
        Ok(())
    }

    /// Whether the caller may read a container, or else the refusal for `how` it was reached.
    async fn judge(&mut self, account: &str, container: &str, how: Reached) -> Result<()> {
        let key = (account.to_owned(), container.to_owned());
        let ok = match self.readable.get(&key) {
            Some(ok) => *ok,
            None => {
                let ok = self
                    .judge
                    .may(account, Some(container), true, false)
                    .await?;
                self.readable.insert(key, ok);
                ok
            }
        };
        if ok {
            return Ok(());
        }
        Err(match how {
            Reached::Link => self.judge.denied(&format!(
                "read the target of this link ({account}/{container})"
            )),
            Reached::SloSegment => Error::conflict_by(
                "acl",
                self.judge.refusal("read the segments of this object"),
            ),
            Reached::DloSegment => self.judge.denied("read the segments of this object"),
        })
    }

    /// The object `at` and all that Swift reads with it. `base` is the account the
    /// request named, where Swift finds the segments of every manifest it reaches; they
    /// are judged there and in the manifest's own account. `top`: `at` is the object at
    /// the request's path or one its links lead to, where the request's [`Follow`] holds.
    fn object(
        &mut self,
        at: names::Location,
        base: &'a str,
        depth: usize,
        how: Reached,
        top: bool,
    ) -> Traced<'_>
    where
        'b: 'a,
    {
        Box::pin(async move {
            if depth > TRACE_DEPTH {
                return Err(Error::Conflict(format!(
                    "links and segments nest more than {TRACE_DEPTH} deep here"
                )));
            }
            self.judge(&at.account, &at.container, how).await?;
            self.spend()?;
            let cluster = self.judge.cluster;
            let upstream = self.judge.upstream(&at.account).await?;
            let Some(h) = cluster
                .object_meta(&upstream, &at.container, &at.object, at.version.as_deref())
                .await?
            else {
                if top {
                    self.end = Some(at);
                }
                return Ok(());
            };
            let header = |name: &str| {
                header_str(&h, name).map_err(|_| {
                    Error::BadGateway(format!("the cluster's answer has an unreadable {name}"))
                })
            };
            let link = header("x-symlink-target")?;
            if top && (link.is_none() || !self.follow.links) {
                self.end = Some(at.clone());
            }
            if let Some(t) = link {
                if top && !self.follow.links {
                    return Ok(());
                }
                let account = match header("x-symlink-target-account")? {
                    Some(a) => names::account(a, "X-Symlink-Target-Account")?,
                    None => at.account.clone(),
                };
                let target = names::Location::parse(&format!("/v1/{account}/{t}"))
                    .ok_or_else(|| unreadable("X-Symlink-Target", t))?;
                let how = if how == Reached::SloSegment {
                    how
                } else {
                    Reached::Link
                };
                return self.object(target, base, depth + 1, how, top).await;
            }
            if top && !self.follow.segments {
                return Ok(());
            }
            if h.get("x-static-large-object")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
            {
                return self.slo(&at, &upstream, base, depth).await;
            }
            if let Some(m) = header("x-object-manifest")? {
                let m = m.to_owned();
                return self.dlo(&at, &m, base, depth).await;
            }
            Ok(())
        })
    }

    async fn slo(
        &mut self,
        at: &names::Location,
        upstream: &str,
        base: &'a str,
        depth: usize,
    ) -> Result<()> {
        self.spend()?;
        let segments = self
            .judge
            .cluster
            .manifest_segments(upstream, &at.container, &at.object, at.version.as_deref())
            .await?
            .unwrap_or_default();
        let segments: Vec<(String, bool)> =
            segments.into_iter().map(|s| (s.name, s.sub_slo)).collect();
        self.segments(&at.account, &segments, base, depth).await
    }

    /// The segments of a manifest in `account` (`/container/object`, and whether each is
    /// a manifest itself), and what each reaches, as Swift reads them from `base`.
    async fn segments(
        &mut self,
        account: &str,
        segments: &[(String, bool)],
        base: &'a str,
        depth: usize,
    ) -> Result<()> {
        let mut by_container: HashMap<String, Vec<(String, bool)>> = HashMap::new();
        for (name, sub_slo) in segments {
            let r = names::Reference::from_text(name, "a manifest segment")
                .map_err(|_| unreadable("segment", name))?;
            for account in [base, account] {
                self.judge(account, &r.container, Reached::SloSegment)
                    .await?;
            }
            by_container
                .entry(r.container)
                .or_default()
                .push((r.object, *sub_slo));
        }
        for (container, objects) in by_container {
            let listed = self.listed(base, &container, &objects).await?;
            for (object, sub_slo) in objects {
                // a plain object of its own bytes refers to nothing; anything else is looked at
                let plain = listed
                    .get(&object)
                    .is_some_and(|l| l.bytes > 0 && l.symlink_path.is_none() && !l.slo);
                if plain && !sub_slo {
                    continue;
                }
                let seg = names::Location {
                    account: base.to_owned(),
                    container: container.clone(),
                    object,
                    version: None,
                };
                self.object(seg, base, depth + 1, Reached::SloSegment, false)
                    .await?;
            }
        }
        Ok(())
    }

    /// The listing entries of `objects` in a container, from the pages under their
    /// common prefix.
    async fn listed(
        &mut self,
        account: &str,
        container: &str,
        objects: &[(String, bool)],
    ) -> Result<HashMap<String, Listed>> {
        let mut prefix = objects.first().map(|(o, _)| o.clone()).unwrap_or_default();
        for (o, _) in objects {
            while !o.starts_with(&prefix) {
                prefix.pop();
            }
        }
        let wanted: std::collections::HashSet<&str> =
            objects.iter().map(|(o, _)| o.as_str()).collect();
        let upstream = self.judge.upstream(account).await?;
        let mut found = HashMap::new();
        let mut marker = String::new();
        while found.len() < wanted.len() {
            let page = self
                .page(&upstream, container, &prefix, &mut marker)
                .await?;
            if page.is_empty() {
                break;
            }
            for l in page {
                if wanted.contains(l.name.as_str()) {
                    found.insert(l.name.clone(), l);
                }
            }
        }
        Ok(found)
    }

    /// The listing page after `marker` (moved on to its last name) under `prefix`.
    async fn page(
        &mut self,
        upstream: &str,
        container: &str,
        prefix: &str,
        marker: &mut String,
    ) -> Result<Vec<Listed>> {
        self.spend()?;
        let page = self
            .judge
            .cluster
            .listing(upstream, container, prefix, marker)
            .await?;
        if let Some(last) = page.last() {
            marker.clone_from(&last.name);
        }
        Ok(page)
    }

    async fn dlo(
        &mut self,
        at: &names::Location,
        manifest: &str,
        base: &'a str,
        depth: usize,
    ) -> Result<()> {
        let r = names::Reference::parse(manifest, "X-Object-Manifest")
            .map_err(|_| unreadable("X-Object-Manifest", manifest))?;
        for account in [base, at.account.as_str()] {
            self.judge(account, &r.container, Reached::DloSegment)
                .await?;
        }
        let upstream = self.judge.upstream(base).await?;
        let mut marker = String::new();
        loop {
            let page = self
                .page(&upstream, &r.container, &r.object, &mut marker)
                .await?;
            if page.is_empty() {
                break;
            }
            for l in page {
                if let Some(p) = &l.symlink_path {
                    let target =
                        names::Location::parse(p).ok_or_else(|| unreadable("symlink_path", p))?;
                    self.object(target, base, depth + 1, Reached::Link, false)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// A manifest deleted with its segments (`?multipart-manifest=delete`) by someone other
/// than the account's owner: the cluster deletes the segments, those of nested manifests
/// too, with the service's rights, so each must be the caller's to delete.
async fn deletable_segments(
    judge: &Judge<'_>,
    account: &str,
    container: &str,
    object: &str,
) -> Result<()> {
    let upstream = judge.upstream(account).await?;
    let mut pending = vec![(container.to_owned(), object.to_owned(), 0)];
    let mut judged = std::collections::HashSet::new();
    let mut lookups = 0;
    while let Some((c, o, depth)) = pending.pop() {
        lookups += 1;
        if lookups > TRACE_LOOKUPS || depth > TRACE_DEPTH {
            return Err(Error::Conflict(
                "this manifest nests too many others for the gateway to check".into(),
            ));
        }
        let Some(segments) = judge
            .cluster
            .manifest_segments(&upstream, &c, &o, None)
            .await?
        else {
            continue;
        };
        for s in segments {
            let r = names::Reference::from_text(&s.name, "a manifest segment")
                .map_err(|_| unreadable("segment", &s.name))?;
            if judged.insert(r.container.clone())
                && !judge.may(account, Some(&r.container), true, true).await?
            {
                return Err(judge.denied(&format!(
                    "delete the segments of this manifest in {}",
                    r.container
                )));
            }
            if s.sub_slo {
                pending.push((r.container, r.object, depth + 1));
            }
        }
    }
    Ok(())
}

/// A cluster's answer that names what the gateway cannot read is not passed on.
fn unreadable(what: &str, value: &str) -> Error {
    Error::BadGateway(format!(
        "the cluster names a {what} the gateway cannot read: {value:?}"
    ))
}

/// The object at `account/reference`, in the version the request names.
fn located(account: &str, r: names::Reference, op: &Operation) -> names::Location {
    names::Location {
        account: account.to_owned(),
        container: r.container,
        object: r.object,
        version: op.version_id.clone(),
    }
}

/// Checks where an answer's data came from, before any of its body is sent: when the
/// answer shows a link or a large object, everything the object reaches, as Swift read it
/// with the service's rights.
async fn check_sources(judge: &Judge<'_>, resp: &Response<Body>, op: &Operation) -> Result<()> {
    let target = &op.target;
    let h = resp.headers();
    let (Some(c), Some(o)) = (&target.container, &target.object) else {
        return Ok(());
    };
    let large = h.contains_key("x-object-manifest") || h.contains_key("x-static-large-object");
    // where the answer says its data came from (a link's target) is judged as it is, not
    // as what the object at the path links to now, which may have changed since Swift
    // read it; a versioned object's own version is its own data
    let source = match header_str(h, "content-location") {
        Ok(None) => None,
        Ok(Some(loc)) => {
            Some(names::Location::parse(loc).ok_or_else(|| unreadable("Content-Location", loc))?)
        }
        Err(_) => return Err(unreadable("Content-Location", "(not UTF-8)")),
    };
    let elsewhere = source
        .as_ref()
        .filter(|at| (&at.account, &at.container, &at.object) != (&target.account, c, o));
    if !(large || elsewhere.is_some()) {
        return Ok(());
    }
    let mut trace = Trace::new(judge, Follow::of(op));
    if let Some(at) = elsewhere {
        trace
            .judge(&at.account, &at.container, Reached::Link)
            .await?;
    }
    let at = located(
        &target.account,
        names::Reference {
            container: c.clone(),
            object: o.clone(),
        },
        op,
    );
    trace
        .object(at, &target.account, 0, Reached::Link, true)
        .await
}

/// Pins a copy to the object the gateway judged as its source: Swift copies `end`, where
/// the source's links ended, as it is then (`symlink=get`). A source turned into a link
/// since is copied as that link, not followed with the service's rights to wherever it
/// points now. A `version-id` stays only while it names a version of `end` itself.
/// Returns the path a `COPY` reads instead of its own.
fn pin_copy<B>(
    req: &mut Request<B>,
    op: &Operation,
    end: &names::Location,
) -> Result<Option<String>> {
    let encode = |s: &str| percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string();
    let source = format!("{}/{}", encode(&end.container), encode(&end.object));
    let value = |v: &str| {
        http::HeaderValue::from_str(v)
            .map_err(|_| Error::bad_request("the copy source cannot be named in a header"))
    };
    let path = if op.named("X-Copy-From").is_some() {
        let (from, account) = (value(&source)?, value(&end.account)?);
        req.headers_mut().insert("x-copy-from", from);
        req.headers_mut().insert("x-copy-from-account", account);
        None
    } else if end.account == op.target.account {
        Some(format!("/{source}"))
    } else {
        return Err(Error::Conflict(format!(
            "this COPY reads a link into {}: copy its target with X-Copy-From and \
             X-Copy-From-Account instead",
            end.account
        )));
    };
    let mut query: Vec<&str> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            end.version.is_some()
                || crate::swift::query::query_pairs(Some(pair))
                    .is_ok_and(|p| p.iter().all(|(k, _)| k != "version-id"))
        })
        .collect();
    query.push("symlink=get");
    let query = query.join("&");
    *req.uri_mut() = format!("{}?{query}", req.uri().path())
        .parse()
        .map_err(|_| Error::bad_request("the request path cannot be forwarded"))?;
    Ok(path)
}

/// A storage request for an account on an upstream cluster.
pub(crate) async fn handle<B: RequestBody>(
    cluster: &Cluster,
    identity: &Identity,
    mut req: Request<B>,
    op: &Operation,
    principal: Option<Principal>,
    how: Forward<'_>,
) -> Result<Response<Body>> {
    let target = &op.target;
    let upstream = cluster
        .upstream_account(&target.account, identity.prefixes())
        .await?;
    let Some(p) = principal else {
        return cluster
            .forward(req, &upstream, &how)
            .await
            .map(plain_errors);
    };
    let how = Forward {
        as_service: true,
        ..how
    };
    let method = req.method().clone();
    // a bulk delete, on whatever path, is the account's: its body names what it reaches
    let bulk = op.kind == Kind::BulkDelete;
    if target.container.is_none() && matches!(method, Method::PUT | Method::DELETE) && !bulk {
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
            return Err(Error::forbidden(
                "reseller-admin",
                format!("{} may not set system metadata ({h})", p.label()),
            ));
        }
        if let Some(h) = req
            .headers()
            .keys()
            .find(|k| crate::swift::privileged::is_quota_header(k.as_str()))
        {
            return Err(Error::forbidden(
                "reseller-admin",
                format!("only a reseller admin may set an account quota ({h})"),
            ));
        }
    }
    let judge = Judge {
        cluster,
        identity,
        principal: &p,
        groups: p.acl_groups(),
        referer: header_str(req.headers(), "referer")?.map(str::to_owned),
    };
    let access = judge.account_access(&target.account).await?;
    let owner = access == AccountAccess::Admin;
    // a COPY reads its path and writes its destination
    let write = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS" | "COPY");
    let manifest = op.manifest;
    if !owner {
        if op.version_id.is_some() {
            return Err(judge.denied("reach the versions of an object: they are the owner's"));
        }
        let allowed = judge
            .allowed(
                access,
                &target.account,
                target.container.as_deref().filter(|_| !bulk),
                target.object.is_some() && !bulk,
                write,
            )
            .await?;
        if !allowed {
            return Err(judge.denied(&format!("do this in {}", target.account)));
        }
        // no one else sees ACLs or keys, or sets them: the service token would let them
        crate::swift::privileged::strip_privileged(req.headers_mut());
    }
    if matches!(method, Method::PUT | Method::POST) || op.copies() {
        crate::swift::limits::check_metadata_text(req.headers())?;
    }
    if target.object.is_some() && matches!(method, Method::PUT | Method::POST) || op.copies() {
        crate::swift::expiry::normalize(req.headers_mut(), crate::auth::identity::unix_now())?;
    }
    let copied = check_references(&judge, req.headers(), op).await?;
    let pinned = match copied {
        Some(end) => pin_copy(&mut req, op, &end)?,
        None => None,
    };
    let how = Forward {
        path: pinned.as_deref().unwrap_or(how.path),
        ..how
    };
    if !owner
        && method == Method::DELETE
        && manifest == Some(Manifest::Delete)
        && let (Some(c), Some(o)) = (&target.container, &target.object)
    {
        deletable_segments(&judge, &target.account, c, o).await?;
    }
    let reads = matches!(method, Method::GET | Method::HEAD);
    let mut resp = if manifest == Some(Manifest::Put) {
        let (parts, body) = req.into_parts();
        let body = judged_manifest(&judge, &target.account, body).await?;
        cluster
            .forward(Request::from_parts(parts, body), &upstream, &how)
            .await?
    } else {
        cluster.forward(req, &upstream, &how).await?
    };
    // a static link whose target changed is 409, but only to who may read the target
    let broken_link = resp.status() == StatusCode::CONFLICT
        && resp.headers().contains_key(http::header::CONTENT_LOCATION);
    if reads
        && (resp.status().is_success() || broken_link)
        && let Err(e) = check_sources(&judge, &resp, op).await
    {
        // a link whose target is out of reach still says where it points, as in Swift
        let location = resp.headers().get(http::header::CONTENT_LOCATION).cloned();
        let mut refused = match e {
            e @ (Error::Denied { .. } | Error::Conflict(_)) => e.into_response(""),
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
        crate::swift::privileged::strip_privileged(resp.headers_mut());
    }
    Ok(plain_errors(resp))
}

/// A cluster's error answers are typed as the gateway's are, plain text: Swift types them
/// text/html, and some quote what the request named.
fn plain_errors(mut resp: Response<Body>) -> Response<Body> {
    let html = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if html && (resp.status().is_client_error() || resp.status().is_server_error()) {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}
