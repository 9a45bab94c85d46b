//! One error type for every request. Each variant says what happened, and knows its
//! status, who is at fault (the client, an upstream, or the gateway itself) and the body
//! a client sees. Every refusal (403) names the rule that refused it. The gateway's own
//! failures keep their cause, which is logged with its whole chain and never sent.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{Body, full};
use crate::store::StoreError;

/// Who caused a failed request; the label of the error in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    /// An upstream cluster failed or could not be reached.
    Upstream,
    Internal,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Upstream => "upstream",
            Fault::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    /// Bad or missing credentials: 401 with a `Www-Authenticate: Swift realm=…` challenge.
    #[error("{message}")]
    Unauthorized { realm: String, message: String },
    /// Refused by a rule (403): of the gateway's policy, an ACL, an admin rank; or over
    /// a policy's upload size limit (413). The rule is named in the answer and in the
    /// access log.
    #[error("denied by {rule}: {reason}")]
    Denied {
        status: StatusCode,
        rule: String,
        reason: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    #[error("{0}")]
    Conflict(String),
    /// A structured answer (bulk operations, manifests) with its own body and type.
    #[error("{body}")]
    Report {
        status: StatusCode,
        body: String,
        content_type: &'static str,
    },
    #[error(
        "none of the formats in Accept can be served: use text/plain, application/json or application/xml"
    )]
    NotAcceptable,
    #[error("{0}")]
    LengthRequired(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// Swift answers 412 for names that are not valid UTF-8 or contain NUL.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{message}")]
    TooManyRequests { retry_after: u64, message: String },
    /// A request head refused before it was parsed (400, 431, 501, 505): the client's.
    #[error("{message}")]
    Malformed { status: StatusCode, message: String },
    #[error("{0}")]
    NotImplemented(String),
    /// The data directory has no room for what a request would store (507, as Swift):
    /// nothing of it was kept.
    #[error("{0}")]
    InsufficientStorage(String),
    /// The gateway cannot serve this now (503); the client may retry after the delay.
    #[error("service unavailable: {message}")]
    Unavailable { retry_after: u64, message: String },
    /// An upstream cluster cannot be reached (503).
    #[error("service unavailable: {0}")]
    UpstreamUnavailable(String),
    /// An upstream answered with something the gateway cannot use.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gateway failed at what `context` says, for `source` when it knows.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Seconds a client is asked to wait before it tries a cluster that could not be
/// reached again.
pub(crate) const UPSTREAM_RETRY_AFTER: u64 = 5;

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn unauthorized(realm: &str, msg: impl Into<String>) -> Self {
        Error::Unauthorized {
            realm: realm.to_owned(),
            message: msg.into(),
        }
    }

    /// A refusal (403) by `rule`.
    pub fn forbidden(rule: &str, reason: impl Into<String>) -> Self {
        Error::Denied {
            status: StatusCode::FORBIDDEN,
            rule: rule.to_owned(),
            reason: reason.into(),
        }
    }

    /// A refusal by `rule` answered 409, as Swift answers a large object whose segments
    /// may not be read.
    pub fn conflict_by(rule: &str, reason: impl Into<String>) -> Self {
        Error::Denied {
            status: StatusCode::CONFLICT,
            rule: rule.to_owned(),
            reason: reason.into(),
        }
    }

    /// The gateway failed at `context` because of `source`.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// The data directory failed at what `context` says for `e`: 507 when the disk (or
    /// its quota) is full, 503 otherwise (read-only, or failing).
    pub fn io(context: &str, e: std::io::Error) -> Self {
        const EROFS: i32 = 30;
        if is_full(&e) {
            Error::InsufficientStorage(format!(
                "There was not enough space to save the resource ({context})"
            ))
        } else if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem
            || e.raw_os_error() == Some(EROFS)
        {
            tracing::error!(error = %e, "{context}: the data directory is read-only");
            Error::Unavailable {
                retry_after: 10,
                message: "the data directory cannot be written now (read-only file system)".into(),
            }
        } else {
            // a disk that fails is the store unavailable, as Swift answers when its
            // object servers fail; what failed is logged, not answered
            tracing::error!(error = %e, "{context}: the data directory failed");
            Error::Unavailable {
                retry_after: 10,
                message: format!("the data directory failed while {context}"),
            }
        }
    }

    /// The gateway found what cannot be: `context` says what.
    pub fn broken(context: impl Into<String>) -> Self {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// A task on the blocking pool failed (it panicked, or the runtime is shutting down).
    pub fn task_failed(e: tokio::task::JoinError) -> Self {
        Error::internal("a blocking task failed", e)
    }

    /// The error and each of its causes, outermost first, for the log.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            out.push_str(": ");
            out.push_str(&e.to_string());
            cause = e.source();
        }
        out
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Denied { status, .. } => *status,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::Report { status, .. } => *status,
            Error::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Error::LengthRequired(_) => StatusCode::LENGTH_REQUIRED,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Malformed { status, .. } => *status,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::UpstreamUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Store(e) => e.status(),
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The policy rule that refused the request, if one did.
    pub fn rule(&self) -> Option<&str> {
        match self {
            Error::Denied { rule, .. } => Some(rule),
            _ => None,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            Error::BadRequest(_)
            | Error::Unauthorized { .. }
            | Error::Denied { .. }
            | Error::NotFound(_)
            | Error::MethodNotAllowed { .. }
            | Error::Conflict(_)
            | Error::NotAcceptable
            | Error::LengthRequired(_)
            | Error::RequestTimeout(_)
            | Error::PayloadTooLarge(_)
            | Error::Unprocessable(_)
            | Error::RangeNotSatisfiable(_)
            | Error::PreconditionFailed(_)
            | Error::TooManyRequests { .. }
            | Error::Malformed { .. }
            | Error::NotImplemented(_) => Fault::Client,
            // a bulk report's fault is that of its worst failure
            Error::Report { status, .. } if status.is_server_error() => Fault::Internal,
            Error::Report { .. } => Fault::Client,
            Error::UpstreamUnavailable(_) | Error::BadGateway(_) | Error::GatewayTimeout(_) => {
                Fault::Upstream
            }
            Error::Unavailable { .. } | Error::Internal { .. } | Error::InsufficientStorage(_) => {
                Fault::Internal
            }
            Error::Store(e) if e.status().is_server_error() => Fault::Internal,
            Error::Store(_) => Fault::Client,
        }
    }

    /// The response a client sees. Internal faults get a generic body naming the
    /// transaction id, so the operator can find the detail in the log.
    pub fn into_response(self, trans_id: &str) -> Response<Body> {
        let message = self.public_message(trans_id);
        self.respond(message)
    }

    fn store_down(&self) -> bool {
        matches!(self, Error::Store(e) if e.status() == StatusCode::SERVICE_UNAVAILABLE)
    }

    /// What the client is told. The gateway's own failures are told as such and logged
    /// (once, here) with their detail under `trans_id`.
    pub(crate) fn public_message(&self, trans_id: &str) -> String {
        let hidden = self.fault() == Fault::Internal
            && !matches!(
                self,
                Error::Unavailable { .. } | Error::InsufficientStorage(_)
            );
        if let Error::InsufficientStorage(m) = self {
            tracing::error!(trans_id, "{m}");
        }
        if matches!(self, Error::Store(e) if e.status() == StatusCode::INSUFFICIENT_STORAGE) {
            tracing::error!(trans_id, error = %self.chain(), "the identity store's disk is full");
            return "There was not enough space to save the resource (the identity store)".into();
        }
        if self.store_down() {
            tracing::error!(trans_id, error = %self.chain(), "the identity store is unavailable");
            format!(
                "the identity store is unavailable; try again shortly (the gateway log has the \
                 details under {trans_id})"
            )
        } else if hidden {
            tracing::error!(trans_id, error = %self.chain(), "request failed");
            format!("internal error; the gateway log has the details under {trans_id}")
        } else {
            self.to_string()
        }
    }

    /// The plain answer, saying `message`, with the headers the error calls for.
    pub(crate) fn respond(self, message: String) -> Response<Body> {
        let status = self.status();
        let store_down = self.store_down();
        let answered = self.answered();
        if let Error::Report {
            status,
            body,
            content_type,
        } = self
        {
            let mut resp = Response::new(full(body));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.extensions_mut().insert(answered);
            return resp;
        }
        // plain text, never HTML: a message may hold what the request named (Swift types
        // its answers text/html; a name holding markup would run on the gateway's origin)
        let mut resp = Response::new(full(Bytes::from(message)));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match &self {
            Error::Unauthorized { realm, .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{realm}\"")) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            Error::MethodNotAllowed { allow, .. } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Error::TooManyRequests { retry_after, .. } | Error::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Error::UpstreamUnavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UPSTREAM_RETRY_AFTER));
            }
            Error::Store(_) if store_down => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UPSTREAM_RETRY_AFTER));
            }
            // answers to HEAD have no body: the rule is named in a header too
            Error::Denied { rule, .. } => {
                if let Ok(v) = HeaderValue::from_str(rule) {
                    headers.insert("x-denied-by", v);
                }
            }
            _ => {}
        }
        resp.extensions_mut().insert(answered);
        resp
    }

    /// The answer in the words of Keystone's identity API: `{"error": {"code",
    /// "message", "title"}}` with the headers of the plain answer; a 401 has Keystone's
    /// one message, whatever was wrong, and its challenge naming `identity_base` (the
    /// gateway's base URL).
    pub fn into_keystone_response(
        self,
        trans_id: &str,
        identity_base: Option<&str>,
    ) -> Response<Body> {
        let status = self.status();
        let message = if status == StatusCode::UNAUTHORIZED {
            "The request you have made requires authentication.".to_owned()
        } else {
            self.public_message(trans_id)
        };
        let (mut parts, _) = self.respond(String::new()).into_parts();
        let body = serde_json::json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "title": status.canonical_reason().unwrap_or("Error"),
        }});
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::WWW_AUTHENTICATE);
        if status == StatusCode::UNAUTHORIZED
            && let Some(base) = identity_base
            && let Ok(v) = HeaderValue::from_str(&format!("Keystone uri=\"{base}/v3\""))
        {
            parts.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        parts
            .headers
            .insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
        Response::from_parts(parts, full(Bytes::from(body.to_string())))
    }

    /// What the answer made of this error carries for the access log.
    pub(crate) fn answered(&self) -> Answered {
        Answered {
            fault: self.fault(),
            rule: self.rule().map(str::to_owned),
        }
    }
}

/// Who was at fault for an answer made from an error, and the rule that refused it: kept
/// on the answer, so that the access log names them wherever the answer was made (a
/// proxied read refused once the cluster answered, an error page).
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub fault: Fault,
    pub rule: Option<String>,
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether `e` says the disk, or the owner's quota on it, is full.
fn is_full(e: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(ENOSPC | EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(resp: Response<Body>) -> String {
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_refusal_names_its_rule() {
        let e = Error::forbidden("acl", "alice:alice may not write in AUTH_bob");
        assert_eq!(e.fault(), Fault::Client);
        assert_eq!(e.rule(), Some("acl"));
        let resp = e.into_response("tx1");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()["x-denied-by"], "acl");
        let answered = resp.extensions().get::<Answered>().unwrap();
        assert_eq!(
            (answered.fault, answered.rule.as_deref()),
            (Fault::Client, Some("acl"))
        );
        assert_eq!(
            text(resp).await,
            "denied by acl: alice:alice may not write in AUTH_bob"
        );
    }

    #[test]
    fn an_unreadable_segment_is_a_conflict_that_names_its_rule() {
        let resp =
            Error::conflict_by("acl", "alice:alice may not read the segments").into_response("tx");
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()["x-denied-by"], "acl");
        let answered = resp.extensions().get::<Answered>().unwrap();
        assert_eq!(answered.rule.as_deref(), Some("acl"));
    }

    #[tokio::test]
    async fn the_gateway_s_failures_keep_their_cause_for_the_log_only() {
        let cause = std::io::Error::other("disk full");
        let e = Error::internal("writing an object body", cause);
        assert_eq!(e.fault(), Fault::Internal);
        assert_eq!(
            e.chain(),
            "internal error: writing an object body: disk full"
        );
        let body = text(e.into_response("tx2")).await;
        assert!(body.contains("tx2"), "{body}");
        assert!(!body.contains("disk full"), "{body}");
        assert_eq!(
            Error::broken("no such backend").chain(),
            "internal error: no such backend"
        );
    }

    #[test]
    fn a_503_says_when_to_come_back() {
        let resp = Error::UpstreamUnavailable("the upstream \"c\" cannot be reached".into())
            .into_response("tx3");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
        let e = Error::Unavailable {
            retry_after: 60,
            message: "too many links are under way".into(),
        };
        assert_eq!(e.fault(), Fault::Internal);
        let resp = e.into_response("tx4");
        assert_eq!(resp.headers()[header::RETRY_AFTER], "60");
    }

    #[test]
    fn faults_are_by_who_is_to_blame() {
        assert_eq!(Error::bad_request("x").fault(), Fault::Client);
        assert_eq!(Error::NotImplemented("x".into()).fault(), Fault::Client);
        let malformed = Error::Malformed {
            status: StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            message: "x".into(),
        };
        assert_eq!(malformed.fault(), Fault::Client);
        assert_eq!(Error::BadGateway("x".into()).fault(), Fault::Upstream);
        assert_eq!(Error::GatewayTimeout("x".into()).fault(), Fault::Upstream);
        let report = |status| Error::Report {
            status,
            body: String::new(),
            content_type: "text/plain",
        };
        assert_eq!(report(StatusCode::BAD_REQUEST).fault(), Fault::Client);
        assert_eq!(report(StatusCode::BAD_GATEWAY).fault(), Fault::Internal);
    }
}
