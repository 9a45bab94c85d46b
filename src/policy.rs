//! What a caller may do on the storage path, decided before a request reaches the
//! embedded store or an upstream cluster, and the same way for both. Three layers:
//! - rules in force for everyone but reseller admins: no creating or deleting accounts,
//!   no system metadata, no references into accounts the gateway does not hold;
//! - `[[deny]]` rules, for everyone;
//! - `[[policy]]` limits attached to users, groups and client certificates: every one
//!   attached to the caller must allow the request.
//!
//! A request is judged at every place it reaches: its path, and the objects it copies
//! from or to, links to, or names as segments. A refusal names its rule.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use hyper::body::{Frame, SizeHint};
use wildmatch::WildMatch;

use crate::auth::identity::Principal;
use crate::body::RequestBody;
use crate::config::{ConfigError, DenyConfig, PolicyConfig, parse_fingerprint};
use crate::error::Error;
use crate::swift::manifest;
use crate::swift::names::Reference;
use crate::swift::op::{Access, Kind, Manifest, Operation};

/// Largest body the gateway reads to judge what it names (an SLO manifest, a bulk delete).
pub(crate) const MAX_JUDGED_BODY: usize = 16 * 1024 * 1024;

const SYSMETA: [&str; 5] = [
    "x-account-sysmeta-",
    "x-container-sysmeta-",
    "x-object-sysmeta-",
    "x-object-transient-sysmeta-",
    "x-backend-",
];

/// A method a rule may name.
fn known_method(name: &str) -> Option<Method> {
    Some(match name.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        "COPY" => Method::from_bytes(b"COPY").ok()?,
        _ => return None,
    })
}

/// Who a policy is attached to.
#[derive(Debug)]
enum Holder {
    User(String),
    Group(String),
    Certificate([u8; 32]),
}

#[derive(Debug)]
struct Policy {
    name: String,
    holder: Holder,
    accounts: Vec<WildMatch>,
    containers: Vec<WildMatch>,
    prefixes: Vec<String>,
    methods: Vec<Method>,
    read_only: bool,
    max_upload: Option<u64>,
}

#[derive(Debug)]
struct Deny {
    name: String,
    methods: Vec<Method>,
    accounts: Vec<WildMatch>,
    containers: Vec<WildMatch>,
    objects: Vec<WildMatch>,
    headers: Vec<HeaderName>,
    query: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Policies {
    policies: Vec<Policy>,
    denies: Vec<Deny>,
}

/// Who asks.
#[derive(Clone, Copy)]
pub(crate) struct Caller<'a> {
    pub principal: Option<&'a Principal>,
    /// The connection's client certificate.
    pub certificate: Option<&'a [u8; 32]>,
}

/// A storage request, as the policies see it.
pub(crate) struct Ask<'a> {
    pub op: &'a Operation,
    pub headers: &'a HeaderMap,
    /// Whether the gateway holds an account (a storage id) and, if so, its name.
    pub account_name: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// What the body of an allowed request still has to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyCheck {
    /// An SLO manifest: its segments are read.
    Manifest,
    /// A bulk delete: each line is a path deleted.
    BulkDelete,
}

/// An allowed request, and what is left to check as its body comes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The smallest upload limit among the caller's policies, and that policy's rule.
    pub max_upload: Option<(u64, String)>,
    pub body: Option<BodyCheck>,
}

/// One place a request reaches.
#[derive(Debug)]
struct Place {
    account: String,
    container: Option<String>,
    object: Option<String>,
    /// `object` names a prefix: the segments of a dynamic large object.
    prefix: bool,
    /// What is done there: the request's method at its path, GET where it reads, PUT
    /// where it writes.
    method: Method,
    /// The prefix a container listing asks for.
    listing: Option<String>,
    /// Where the request names the place: "the path", a header.
    via: &'static str,
}

impl Place {
    /// A place a header or a body names in `account`.
    fn named(account: String, named: Reference, method: Method, via: &'static str) -> Place {
        Place {
            account,
            container: Some(named.container),
            object: (!named.object.is_empty()).then_some(named.object),
            prefix: false,
            method,
            listing: None,
            via,
        }
    }

    fn describe(&self) -> String {
        let mut s = self.account.clone();
        for part in [&self.container, &self.object].into_iter().flatten() {
            s.push('/');
            s.push_str(part);
        }
        if self.prefix {
            s.push('*');
        }
        if self.via == "the path" {
            s
        } else {
            format!("{s} (named by {})", self.via)
        }
    }

    fn reads(&self) -> bool {
        matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

fn globs(list: &[String]) -> Vec<WildMatch> {
    list.iter().map(|g| WildMatch::new(g)).collect()
}

fn any_glob(list: &[WildMatch], name: &str) -> bool {
    list.iter().any(|g| g.matches(name))
}

fn methods(list: &[String], rule: &str) -> Result<Vec<Method>, ConfigError> {
    list.iter()
        .map(|m| {
            known_method(m).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{rule}: method {m:?} is not one of GET, HEAD, PUT, POST, DELETE, OPTIONS, COPY"
                ))
            })
        })
        .collect()
}

fn names(list: &[String]) -> String {
    list.join(", ")
}

fn glob_names(list: &[WildMatch]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Policies {
    pub(crate) fn new(
        policies: &[PolicyConfig],
        denies: &[DenyConfig],
    ) -> Result<Policies, ConfigError> {
        let mut out = Policies::default();
        for (i, p) in policies.iter().enumerate() {
            let name = p.name.clone().unwrap_or_else(|| format!("{}", i + 1));
            let rule = format!("policy {name}");
            let invalid = |m: &str| Err(ConfigError::Invalid(format!("{rule}: {m}")));
            let holder = match (&p.identity, &p.group, &p.cert_fingerprint) {
                (Some(u), None, None) if u.contains(':') => Holder::User(u.clone()),
                (Some(_), None, None) => return invalid("identity is ACCOUNT:USER"),
                (None, Some(g), None) if !g.is_empty() => Holder::Group(g.clone()),
                (None, None, Some(f)) => match parse_fingerprint(f) {
                    Some(f) => Holder::Certificate(f),
                    None => return invalid("cert_fingerprint is sha256:<64 hex digits>"),
                },
                _ => {
                    return invalid(
                        "attach the policy to exactly one of identity, group or cert_fingerprint",
                    );
                }
            };
            if p.prefixes.iter().any(String::is_empty) {
                return invalid("an empty prefix would allow every object; leave prefixes out");
            }
            out.policies.push(Policy {
                methods: methods(&p.methods, &rule)?,
                name: rule,
                holder,
                accounts: globs(&p.accounts),
                containers: globs(&p.containers),
                prefixes: p.prefixes.clone(),
                read_only: p.read_only,
                max_upload: p.max_upload,
            });
        }
        for d in denies {
            let rule = format!("deny {}", d.name);
            if d.name.is_empty() {
                return Err(ConfigError::Invalid("every [[deny]] needs a name".into()));
            }
            if d.methods.is_empty()
                && d.accounts.is_empty()
                && d.containers.is_empty()
                && d.objects.is_empty()
                && d.headers.is_empty()
                && d.query.is_empty()
            {
                return Err(ConfigError::Invalid(format!(
                    "{rule}: without methods, accounts, containers, objects, headers or query \
                     it would refuse everything"
                )));
            }
            let headers = d
                .headers
                .iter()
                .map(|h| {
                    HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                        ConfigError::Invalid(format!("{rule}: {h:?} is not a header name"))
                    })
                })
                .collect::<Result<_, _>>()?;
            out.denies.push(Deny {
                methods: methods(&d.methods, &rule)?,
                name: rule,
                accounts: globs(&d.accounts),
                containers: globs(&d.containers),
                objects: globs(&d.objects),
                headers,
                query: d.query.clone(),
            });
        }
        Ok(out)
    }

    /// Judges a storage request before its body is read: `Err` is the refusal, 403
    /// naming the rule.
    pub(crate) fn judge(&self, caller: Caller<'_>, ask: &Ask<'_>) -> Result<Verdict, Error> {
        let reseller = caller.principal.is_some_and(Principal::is_reseller_admin);
        let places = places(ask);
        if !reseller {
            builtin(ask, &places)?;
        }
        let mine: Vec<&Policy> = self.policies.iter().filter(|p| p.holds(caller)).collect();
        // a bulk delete reaches the paths its body lists, not its own
        let bulk_delete = ask.op.kind == Kind::BulkDelete;
        self.check(&mine, ask, &places, &places[usize::from(bulk_delete)..])?;
        let mut verdict = Verdict::default();
        for p in &mine {
            if let Some(n) = p.max_upload
                && verdict.max_upload.as_ref().is_none_or(|(m, _)| n < *m)
            {
                verdict.max_upload = Some((n, p.name.clone()));
            }
        }
        if ask.op.kind == Kind::ExtractArchive {
            if let Some(p) = mine.iter().find(|p| p.scoped()) {
                return Err(Error::forbidden(
                    &p.name,
                    "an archive may create containers and objects anywhere in the account; \
                     upload its files one by one",
                ));
            }
            if let Some(d) = self.denies.iter().find(|d| d.scoped()) {
                return Err(Error::forbidden(
                    &d.name,
                    "an archive may create containers and objects this rule refuses; \
                     upload its files one by one",
                ));
            }
        }
        if !mine.is_empty() || !self.denies.is_empty() {
            if ask.op.method == Method::PUT
                && ask.op.kind == Kind::Object
                && ask.op.manifest == Some(Manifest::Put)
            {
                verdict.body = Some(BodyCheck::Manifest);
            } else if bulk_delete {
                verdict.body = Some(BodyCheck::BulkDelete);
            }
        }
        Ok(verdict)
    }

    /// Judges what a body names, for a request `judge` asked to see the body of.
    pub(crate) fn judge_body(
        &self,
        caller: Caller<'_>,
        ask: &Ask<'_>,
        check: BodyCheck,
        body: &[u8],
    ) -> Result<(), Error> {
        let account = &ask.op.target.account;
        let mut places = Vec::new();
        match check {
            BodyCheck::Manifest => {
                // a manifest or a segment path that cannot be read here is refused
                // here: what a store makes of it would not have been judged
                let segments = manifest::parse(body)?;
                for path in manifest::paths(&segments)? {
                    let named = Reference::from_text(path, "a manifest segment")?;
                    let at =
                        Place::named(account.clone(), named, Method::GET, "a manifest segment");
                    places.push(at);
                }
            }
            BodyCheck::BulkDelete => {
                for line in String::from_utf8_lossy(body).lines() {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    // a path the store cannot read is refused there, in its answer
                    if let Ok(named) = Reference::parse(line, "a path to delete") {
                        let at =
                            Place::named(account.clone(), named, Method::DELETE, "the bulk delete");
                        places.push(at);
                    }
                }
            }
        }
        let mine: Vec<&Policy> = self.policies.iter().filter(|p| p.holds(caller)).collect();
        self.check(&mine, ask, &places, &places)
    }

    /// The deny rules over `places`, then the caller's policies over `limited` (the
    /// places a request reaches as itself).
    fn check(
        &self,
        mine: &[&Policy],
        ask: &Ask<'_>,
        places: &[Place],
        limited: &[Place],
    ) -> Result<(), Error> {
        for d in &self.denies {
            d.check(ask, places)?;
        }
        for p in mine {
            for place in limited {
                p.check(place, ask)?;
            }
        }
        Ok(())
    }
}

/// The prefix of the names a container listing reaches: its `prefix`, or its `path`,
/// which takes the prefix's place (Swift's `path.rstrip('/') + '/'`; an empty one is
/// the top level: every name).
fn listed_prefix(op: &Operation) -> String {
    match op.param("path") {
        Some("") => String::new(),
        Some(path) => format!("{}/", path.trim_end_matches('/')),
        None => op.param("prefix").unwrap_or("").to_owned(),
    }
}

/// Every place a request reaches: its path, and what its headers name.
fn places(ask: &Ask<'_>) -> Vec<Place> {
    let op = ask.op;
    let t = &op.target;
    let listing = (op.method == Method::GET && t.container.is_some() && t.object.is_none())
        .then(|| listed_prefix(op));
    let mut out = vec![Place {
        account: t.account.clone(),
        container: t.container.clone(),
        object: t.object.clone(),
        prefix: false,
        method: op.method.clone(),
        listing,
        via: "the path",
    }];
    for named in &op.references {
        let method = match named.access {
            Access::Read => Method::GET,
            Access::Write => Method::PUT,
        };
        let mut at = Place::named(
            named.account.clone(),
            named.reference.clone(),
            method,
            named.via,
        );
        if named.prefix {
            // the segments' prefix; none is the whole container
            at.object.get_or_insert_default();
            at.prefix = true;
        }
        out.push(at);
    }
    out
}

/// The rules in force for everyone but reseller admins.
fn builtin(ask: &Ask<'_>, places: &[Place]) -> Result<(), Error> {
    let t = &ask.op.target;
    if t.container.is_none()
        && matches!(ask.op.method, Method::PUT | Method::DELETE)
        && ask.op.kind != Kind::BulkDelete
    {
        return Err(Error::forbidden(
            "account-write",
            format!(
                "only a reseller admin creates or deletes accounts; {} {} is refused",
                ask.op.method, t.account
            ),
        ));
    }
    for name in ask.headers.keys() {
        if SYSMETA.iter().any(|p| name.as_str().starts_with(p)) {
            return Err(Error::forbidden(
                "sysmeta",
                format!("{name} is system metadata, which clients may not set"),
            ));
        }
    }
    for place in places {
        if place.account != t.account && (ask.account_name)(&place.account).is_none() {
            return Err(Error::forbidden(
                "foreign-account",
                format!("{} is not an account of this gateway", place.account),
            ));
        }
    }
    Ok(())
}

impl Deny {
    /// Whether the rule restricts names, so that what a body names matters to it.
    fn scoped(&self) -> bool {
        !(self.accounts.is_empty() && self.containers.is_empty() && self.objects.is_empty())
    }

    fn check(&self, ask: &Ask<'_>, places: &[Place]) -> Result<(), Error> {
        if !self.headers.is_empty() && !self.headers.iter().any(|h| ask.headers.contains_key(h)) {
            return Ok(());
        }
        if !self.query.is_empty() && !self.query.iter().any(|q| ask.op.param(q).is_some()) {
            return Ok(());
        }
        let hit = places.iter().find(|place| {
            (self.methods.is_empty() || self.methods.contains(&place.method))
                && (self.accounts.is_empty()
                    || any_glob(&self.accounts, &place.account)
                    || (ask.account_name)(&place.account)
                        .is_some_and(|n| any_glob(&self.accounts, &n)))
                && (self.containers.is_empty()
                    || place
                        .container
                        .as_deref()
                        .is_some_and(|c| any_glob(&self.containers, c)))
                && (self.objects.is_empty()
                    || place
                        .object
                        .as_deref()
                        .is_some_and(|o| any_glob(&self.objects, o)))
        });
        match hit {
            Some(place) => Err(Error::forbidden(
                &self.name,
                format!("{} {} is refused", place.method, place.describe()),
            )),
            None => Ok(()),
        }
    }
}

impl Policy {
    fn holds(&self, caller: Caller<'_>) -> bool {
        match &self.holder {
            Holder::User(u) => caller.principal.is_some_and(|p| p.label() == *u),
            Holder::Group(g) => caller.principal.is_some_and(|p| p.groups.contains(g)),
            Holder::Certificate(f) => caller.certificate == Some(f),
        }
    }

    /// Whether the policy limits where its holder may go (not only how).
    fn scoped(&self) -> bool {
        !(self.accounts.is_empty() && self.containers.is_empty() && self.prefixes.is_empty())
    }

    fn check(&self, place: &Place, ask: &Ask<'_>) -> Result<(), Error> {
        let refuse = |why: String| Err(Error::forbidden(&self.name, why));
        let what = place.describe();
        if !self.methods.is_empty() && !self.methods.contains(&place.method) {
            let allowed: Vec<String> = self.methods.iter().map(ToString::to_string).collect();
            return refuse(format!(
                "{} {what}: only {} are allowed",
                place.method,
                names(&allowed)
            ));
        }
        if self.read_only && !place.reads() {
            return refuse(format!("{} {what}: the policy is read-only", place.method));
        }
        if !self.accounts.is_empty()
            && !any_glob(&self.accounts, &place.account)
            && !(ask.account_name)(&place.account).is_some_and(|n| any_glob(&self.accounts, &n))
        {
            return refuse(format!(
                "{what}: only accounts {} are allowed",
                glob_names(&self.accounts)
            ));
        }
        if !self.containers.is_empty() {
            match &place.container {
                None => {
                    return refuse(format!(
                        "{} {what} reaches the whole account; only containers {} are allowed",
                        place.method,
                        glob_names(&self.containers)
                    ));
                }
                Some(c) if !any_glob(&self.containers, c) => {
                    return refuse(format!(
                        "{what}: only containers {} are allowed",
                        glob_names(&self.containers)
                    ));
                }
                Some(_) => {}
            }
        }
        if !self.prefixes.is_empty() {
            let within = |name: &str| self.prefixes.iter().any(|p| name.starts_with(p.as_str()));
            let ok = match (&place.container, &place.object, &place.listing) {
                (_, Some(o), _) => within(o),
                (Some(_), None, Some(listing)) => within(listing),
                (Some(_), None, None) => ask.op.method == Method::HEAD && place.via == "the path",
                (None, _, _) => false,
            };
            if !ok {
                let how = match (&place.object, &place.listing) {
                    (Some(_), _) => String::new(),
                    (None, Some(_)) => " (list with ?prefix= one of them)".to_owned(),
                    (None, None) => " (it reaches more than those objects)".to_owned(),
                };
                return refuse(format!(
                    "{} {what}: only objects under {} are allowed{how}",
                    place.method,
                    names(&self.prefixes)
                ));
            }
        }
        Ok(())
    }
}

/// A request body after the policy: the client's stream, or the bytes read to judge
/// it. Past an upload limit, the stream ends in an error and `over` is set.
pub(crate) struct Checked<B> {
    source: Source<B>,
    limit: u64,
    seen: u64,
    over: Arc<AtomicBool>,
}

/// How much of a refused body is still read, so that a client sending a little reads
/// the refusal rather than a reset: all of a body this small, or this much past a limit.
const DRAINED: u64 = 64 * 1024;

/// Reads out a small refused body (see `DRAINED`); larger ones are left unread.
pub(crate) async fn drain<B: RequestBody>(mut body: B) {
    use http_body_util::BodyExt;
    if body.size_hint().upper().is_none_or(|n| n > DRAINED) {
        return;
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        while let Some(Ok(_)) = body.frame().await {}
    })
    .await;
}

enum Source<B> {
    Stream(B),
    Judged(Option<Bytes>),
}

impl<B> Checked<B> {
    pub(crate) fn stream(body: B, limit: Option<u64>, over: Arc<AtomicBool>) -> Checked<B> {
        Checked {
            source: Source::Stream(body),
            limit: limit.unwrap_or(u64::MAX),
            seen: 0,
            over,
        }
    }

    pub(crate) fn judged(body: Bytes, limit: Option<u64>, over: Arc<AtomicBool>) -> Checked<B> {
        Checked {
            source: Source::Judged(Some(body)),
            limit: limit.unwrap_or(u64::MAX),
            seen: 0,
            over,
        }
    }
}

impl<B: RequestBody> hyper::body::Body for Checked<B> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        loop {
            let frame = match &mut this.source {
                Source::Stream(b) => match ready!(Pin::new(b).poll_frame(cx)) {
                    None => None,
                    Some(Err(e)) => Some(Err(std::io::Error::other(e.to_string()))),
                    Some(Ok(f)) => Some(Ok(f)),
                },
                Source::Judged(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            };
            if let Some(Ok(f)) = &frame
                && let Some(data) = f.data_ref()
            {
                this.seen += data.len() as u64;
            }
            if this.seen <= this.limit {
                return Poll::Ready(frame);
            }
            this.over.store(true, Ordering::Relaxed);
            if matches!(frame, Some(Ok(_))) && this.seen - this.limit <= DRAINED {
                continue;
            }
            return Poll::Ready(Some(Err(std::io::Error::other(format!(
                "the upload is larger than {} bytes",
                this.limit
            )))));
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Stream(b) => b.is_end_stream(),
            Source::Judged(bytes) => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Stream(b) => b.size_hint(),
            Source::Judged(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Source::Judged(None) => SizeHint::with_exact(0),
        }
    }
}

/// The refusal of an upload over a policy's limit.
pub(crate) fn too_large(limit: u64, rule: &str) -> Error {
    Error::Denied {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        rule: rule.to_owned(),
        reason: format!("uploads may hold {limit} bytes at most"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swift::op::Credential;
    use crate::swift::target::Target;

    fn principal(account: &str, user: &str, groups: &[&str]) -> Principal {
        Principal {
            user_id: 1,
            account: account.into(),
            user: user.into(),
            storage_id: format!("AUTH_{account}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            expires_at: 0,
        }
    }

    fn config(text: &str) -> Result<Policies, ConfigError> {
        let c = crate::Config::parse(text, "test")?;
        Policies::new(&c.policies, &c.denies)
    }

    fn held(account: &str) -> Option<String> {
        account.strip_prefix("AUTH_").map(str::to_owned)
    }

    /// A request as classified, with its headers.
    fn request(
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Operation, HeaderMap), Error> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let mut parts = path.splitn(3, '/');
        let target = Target {
            account: parts.next().unwrap().into(),
            container: parts.next().map(str::to_owned),
            object: parts.next().map(str::to_owned),
        };
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let op = Operation::classify(&method, target, Some(query), &map, Credential::Token)?;
        Ok((op, map))
    }

    fn caller(who: Option<&Principal>) -> Caller<'_> {
        Caller {
            principal: who,
            certificate: None,
        }
    }

    fn ask(
        policies: &Policies,
        who: Option<&Principal>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Verdict, Error> {
        let (op, map) = request(method, path, headers)?;
        let ask = Ask {
            op: &op,
            headers: &map,
            account_name: &held,
        };
        policies.judge(caller(who), &ask)
    }

    fn rule<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
        match r {
            Err(Error::Denied { rule, .. }) => rule,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    const ROBOT: &str = r#"
        [[policy]]
        name = "robot"
        identity = "backup:robot"
        containers = ["backups*"]
        prefixes = ["daily/"]
        methods = ["GET", "HEAD", "PUT"]
        max_upload = "1 MiB"

        [[deny]]
        name = "no-sync"
        headers = ["x-container-sync-to"]
    "#;

    #[test]
    fn a_policy_limits_its_holder_only() {
        let p = config(ROBOT).unwrap();
        let robot = principal("backup", "robot", &[]);
        let other = principal("backup", "admin", &[".admin"]);
        let v = ask(&p, Some(&robot), "PUT", "AUTH_backup/backups1/daily/x", &[]).unwrap();
        assert_eq!(v.max_upload, Some((1 << 20, "policy robot".into())));
        for (method, path) in [
            ("DELETE", "AUTH_backup/backups1/daily/x"),
            ("GET", "AUTH_backup/other/daily/x"),
            ("GET", "AUTH_backup/backups/weekly/x"),
            ("GET", "AUTH_backup"),
            ("GET", "AUTH_backup/backups"),
        ] {
            assert_eq!(
                rule(ask(&p, Some(&robot), method, path, &[])),
                "policy robot",
                "{method} {path}"
            );
        }
        for listing in [
            "AUTH_backup/backups?prefix=daily/2026",
            "AUTH_backup/backups?path=daily",
        ] {
            assert!(
                ask(&p, Some(&robot), "GET", listing, &[]).is_ok(),
                "{listing}"
            );
        }
        for listing in [
            "AUTH_backup/backups?prefix=daily/&path=",
            "AUTH_backup/backups?prefix=daily/&path",
            "AUTH_backup/backups?path=&prefix=daily/",
            "AUTH_backup/backups?prefix=daily/&path=hidden",
            "AUTH_backup/backups?path=/",
        ] {
            assert_eq!(
                rule(ask(&p, Some(&robot), "GET", listing, &[])),
                "policy robot",
                "{listing}"
            );
        }
        assert!(ask(&p, Some(&robot), "HEAD", "AUTH_backup/backups", &[]).is_ok());
        assert!(ask(&p, Some(&other), "DELETE", "AUTH_backup/other/x", &[]).is_ok());
    }

    #[test]
    fn references_are_judged_where_they_point() {
        let p = config(ROBOT).unwrap();
        let robot = principal("backup", "robot", &[]);
        let put =
            |h: &[(&str, &str)]| ask(&p, Some(&robot), "PUT", "AUTH_backup/backups/daily/y", h);
        assert!(put(&[("x-copy-from", "backups/daily/x")]).is_ok());
        assert_eq!(
            rule(put(&[("x-copy-from", "secret/daily/x")])),
            "policy robot"
        );
        assert_eq!(
            rule(put(&[("x-copy-from", "backups/weekly/x")])),
            "policy robot"
        );
        assert_eq!(
            rule(put(&[("x-symlink-target", "secret/daily/x")])),
            "policy robot"
        );
        assert!(put(&[("x-object-manifest", "backups_segments/daily/y/")]).is_ok());
        assert_eq!(
            rule(put(&[("x-object-manifest", "backups_segments/")])),
            "policy robot"
        );
        // another account within the policy: the account's ACLs judge it later
        assert!(
            put(&[
                ("x-copy-from", "backups/daily/x"),
                ("x-copy-from-account", "AUTH_other")
            ])
            .is_ok()
        );
        let anyone = principal("backup", "admin", &[".admin"]);
        assert_eq!(
            rule(ask(
                &p,
                Some(&anyone),
                "PUT",
                "AUTH_backup/c/o",
                &[("x-copy-from", "c/x"), ("x-copy-from-account", "OTHER_x")]
            )),
            "foreign-account"
        );
    }

    #[test]
    fn always_blocked_but_for_resellers() {
        let p = config("").unwrap();
        let admin = principal("a", "admin", &[".admin"]);
        let reseller = principal("a", "root", &[".reseller_admin"]);
        for method in ["PUT", "DELETE"] {
            assert_eq!(
                rule(ask(&p, Some(&admin), method, "AUTH_a", &[])),
                "account-write"
            );
            assert_eq!(rule(ask(&p, None, method, "AUTH_a", &[])), "account-write");
            assert!(ask(&p, Some(&reseller), method, "AUTH_a", &[]).is_ok());
        }
        let sys = [("x-container-sysmeta-foo", "1")];
        assert_eq!(
            rule(ask(&p, Some(&admin), "POST", "AUTH_a/c", &sys)),
            "sysmeta"
        );
        assert!(ask(&p, Some(&reseller), "POST", "AUTH_a/c", &sys).is_ok());
        assert!(
            ask(
                &p,
                Some(&admin),
                "POST",
                "AUTH_a/c",
                &[("x-container-meta-foo", "1")]
            )
            .is_ok()
        );
    }

    #[test]
    fn deny_rules_apply_to_everyone() {
        let p = config(
            r#"
            [[deny]]
            name = "no-sync"
            headers = ["x-container-sync-to"]
            [[deny]]
            name = "private"
            containers = [".private*"]
            methods = ["GET", "PUT"]
            "#,
        )
        .unwrap();
        let reseller = principal("a", "root", &[".reseller_admin"]);
        let sync = [("x-container-sync-to", "http://elsewhere/")];
        assert_eq!(
            rule(ask(&p, Some(&reseller), "POST", "AUTH_a/c", &sync)),
            "deny no-sync"
        );
        assert_eq!(
            rule(ask(&p, Some(&reseller), "GET", "AUTH_a/.private1/o", &[])),
            "deny private"
        );
        assert!(ask(&p, Some(&reseller), "DELETE", "AUTH_a/.private1/o", &[]).is_ok());
        assert_eq!(
            rule(ask(
                &p,
                Some(&reseller),
                "PUT",
                "AUTH_a/c/o",
                &[("x-copy-from", ".private1/o")]
            )),
            "deny private"
        );
    }

    #[test]
    fn bodies_are_asked_for_when_they_name_places() {
        let p = config(ROBOT).unwrap();
        let robot = principal("backup", "robot", &[]);
        let v = ask(
            &p,
            Some(&robot),
            "PUT",
            "AUTH_backup/backups/daily/m?multipart-manifest=put",
            &[],
        )
        .unwrap();
        assert_eq!(v.body, Some(BodyCheck::Manifest));
        assert_eq!(
            rule(ask(
                &p,
                Some(&robot),
                "PUT",
                "AUTH_backup/backups?extract-archive=tar",
                &[]
            )),
            "policy robot"
        );
    }

    #[test]
    fn a_manifest_that_cannot_be_read_here_is_refused_here() {
        let p = config(ROBOT).unwrap();
        let robot = principal("backup", "robot", &[]);
        let (op, map) = request(
            "PUT",
            "AUTH_backup/backups/daily/m?multipart-manifest=put",
            &[],
        )
        .unwrap();
        let ask = Ask {
            op: &op,
            headers: &map,
            account_name: &held,
        };
        let body = |b: &[u8]| p.judge_body(caller(Some(&robot)), &ask, BodyCheck::Manifest, b);
        assert!(body(br#"[{"path": "/backups/daily/s1"}]"#).is_ok());
        assert_eq!(rule(body(br#"[{"path": "/private/s1"}]"#)), "policy robot");
        let utf16: Vec<u8> =
            r#"[{"path": "/private/s1"}]"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for refused in [
            utf16.as_slice(),
            b"\xef\xbb\xbf[{\"path\": \"/private/s1\"}]",
            br#"[{"path": ["/private/s1"]}]"#,
            br#"[{"path": "/private\u0000/s1"}]"#,
        ] {
            assert!(
                matches!(
                    body(refused),
                    Err(Error::BadRequest(_) | Error::PreconditionFailed(_))
                ),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn groups_certificates_and_read_only() {
        let fp = format!("sha256:{}", "ab".repeat(32));
        let p = config(&format!(
            r#"
            [[policy]]
            group = "readers"
            read_only = true
            [[policy]]
            name = "machine"
            cert_fingerprint = "{fp}"
            accounts = ["media"]
            "#
        ))
        .unwrap();
        let reader = principal("a", "r", &["readers"]);
        assert!(ask(&p, Some(&reader), "GET", "AUTH_a/c/o", &[]).is_ok());
        assert_eq!(
            rule(ask(&p, Some(&reader), "POST", "AUTH_a/c/o", &[])),
            "policy 1"
        );
        let cert = [0xab; 32];
        let machine = |path: &str| {
            let target = {
                let mut parts = path.splitn(3, '/');
                Target {
                    account: parts.next().unwrap().into(),
                    container: parts.next().map(str::to_owned),
                    object: parts.next().map(str::to_owned),
                }
            };
            p.judge(
                Caller {
                    principal: None,
                    certificate: Some(&cert),
                },
                &Ask {
                    op: &Operation::classify(
                        &Method::GET,
                        target,
                        None,
                        &HeaderMap::new(),
                        Credential::Certificate,
                    )
                    .unwrap(),
                    headers: &HeaderMap::new(),
                    account_name: &held,
                },
            )
        };
        assert!(machine("AUTH_media/c/o").is_ok());
        assert_eq!(rule(machine("AUTH_other/c/o")), "policy machine");
    }

    #[test]
    fn configuration_mistakes_are_named() {
        for (text, needle) in [
            ("[[policy]]\ncontainers = [\"a\"]", "exactly one of"),
            ("[[policy]]\nidentity = \"nocolon\"", "ACCOUNT:USER"),
            ("[[policy]]\ngroup = \"g\"\nmethods = [\"FETCH\"]", "FETCH"),
            (
                "[[policy]]\ngroup = \"g\"\nmax_upload = \"5 parsecs\"",
                "unit",
            ),
            (
                "[[policy]]\ngroup = \"g\"\nprefixes = [\"\"]",
                "empty prefix",
            ),
            ("[[deny]]\nname = \"all\"", "refuse everything"),
            (
                "[[deny]]\nname = \"h\"\nheaders = [\"bad header\"]",
                "not a header",
            ),
        ] {
            let e = config(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert_eq!(crate::config::parse_size("5 GiB"), Ok(5 << 30));
        assert_eq!(crate::config::parse_size("1.5kB"), Ok(1500));
        assert_eq!(crate::config::parse_size("42"), Ok(42));
    }
}
