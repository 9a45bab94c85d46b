//! One error type for every request: each variant knows its status, who is at fault
//! (the client, an upstream, or the gateway itself) and the body a client sees.
//! Internal details are logged, never sent.

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
    #[error("{0}")]
    Forbidden(String),
    /// Refused by a rule of the gateway's policy (403), or over a policy's upload size
    /// limit (413); the rule is named in the answer and in the access log.
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
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// An upstream cluster cannot be reached.
    #[error("service unavailable: {0}")]
    UpstreamUnavailable(String),
    /// An upstream answered with something the gateway cannot use.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    #[error("gateway timeout: {0}")]
    GatewayTimeout(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

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

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
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
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::UpstreamUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Error::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::Store(e) => e.status(),
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
        if matches!(
            self,
            Error::UpstreamUnavailable(_) | Error::BadGateway(_) | Error::GatewayTimeout(_)
        ) {
            return Fault::Upstream;
        }
        if self.status().is_server_error()
            && !matches!(self, Error::NotImplemented(_) | Error::Malformed { .. })
        {
            Fault::Internal
        } else {
            Fault::Client
        }
    }

    /// The response a client sees. Internal faults get a generic body naming the
    /// transaction id, so the operator can find the detail in the log.
    pub fn into_response(self, trans_id: &str) -> Response<Body> {
        let status = self.status();
        let message = if self.fault() == Fault::Internal {
            tracing::error!(trans_id, error = %self, "request failed");
            format!("internal error; the gateway log has the details under {trans_id}")
        } else {
            self.to_string()
        };
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
            Error::TooManyRequests { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            // answers to HEAD have no body: the rule is named in a header too
            Error::Denied { rule, .. } => {
                if let Ok(v) = HeaderValue::from_str(rule) {
                    headers.insert("x-denied-by", v);
                }
            }
            _ => {}
        }
        resp
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
