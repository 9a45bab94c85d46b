//! Bulk delete (`POST` or `DELETE` with `?bulk-delete`: a body of paths, one per
//! line), and the report format it shares with SLO manifest operations.

use http::{HeaderMap, HeaderValue, Response, header};
use serde_json::json;

use super::object::{authorize, encode};
use super::{Caller, LocalStore, history, versioning};
use crate::body::{Body, RequestBody, full};
use crate::error::{Error, Result};
use crate::http_util::read_limited;
use crate::http_util::xml_escape;
use crate::swift::limits::MAX_DELETES_PER_REQUEST;
use crate::swift::names::Reference;

const MAX_PATH_LENGTH: usize = 1024 + 256 + 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReportFormat {
    Plain,
    Json,
    Xml,
}

impl ReportFormat {
    pub(super) fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Plain => "text/plain; charset=utf-8",
            ReportFormat::Json => "application/json; charset=utf-8",
            ReportFormat::Xml => "application/xml; charset=utf-8",
        }
    }
}

pub(super) fn accept_format(headers: &HeaderMap) -> ReportFormat {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accept.contains("application/json") {
        ReportFormat::Json
    } else if accept.contains("/xml") {
        ReportFormat::Xml
    } else {
        ReportFormat::Plain
    }
}

/// What a bulk operation did.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub deleted: u64,
    pub not_found: u64,
    /// (quoted path, status line)
    pub errors: Vec<(String, String)>,
}

/// Swift's bulk report: `key: value` lines then `Errors:` (plain), or JSON/XML.
pub(super) fn report(
    fmt: ReportFormat,
    pairs: &[(&str, String)],
    errors: &[(String, String)],
) -> String {
    match fmt {
        ReportFormat::Json => {
            let mut v = serde_json::Map::new();
            for (k, val) in pairs {
                let value = val
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| json!(val));
                v.insert((*k).to_owned(), value);
            }
            v.insert(
                "Errors".into(),
                json!(
                    errors
                        .iter()
                        .map(|(p, s)| json!([p, s]))
                        .collect::<Vec<_>>()
                ),
            );
            serde_json::Value::Object(v).to_string()
        }
        ReportFormat::Xml => {
            let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<delete>");
            for (k, val) in pairs {
                let tag = k.to_ascii_lowercase().replace(' ', "_");
                s.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(val)));
            }
            s.push_str("<errors>");
            for (p, st) in errors {
                s.push_str(&format!(
                    "<object><name>{}</name><status>{}</status></object>",
                    xml_escape(p),
                    xml_escape(st)
                ));
            }
            s.push_str("</errors></delete>");
            s
        }
        ReportFormat::Plain => {
            let mut sorted: Vec<_> = pairs.to_vec();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let mut s: String = sorted.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
            s.push_str("Errors:\n");
            for (p, st) in errors {
                s.push_str(&format!("{p}, {st}\n"));
            }
            s
        }
    }
}

/// A 200 whose body carries the outcome (the status of the operation is inside).
pub(super) fn respond(fmt: ReportFormat, o: &Outcome) -> Response<Body> {
    let status = if o.errors.is_empty() {
        "200 OK".to_owned()
    } else if o.errors.iter().all(|(_, s)| s == &o.errors[0].1) {
        o.errors[0].1.clone()
    } else {
        "400 Bad Request".to_owned()
    };
    let body = report(
        fmt,
        &[
            ("Number Deleted", o.deleted.to_string()),
            ("Number Not Found", o.not_found.to_string()),
            ("Response Body", String::new()),
            ("Response Status", status),
        ],
        &o.errors,
    );
    let mut resp = Response::new(full(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fmt.content_type()),
    );
    resp
}

/// Deletes one object, or one empty container (`object` empty), counting the outcome.
pub(super) async fn delete_one(
    store: &LocalStore,
    account: &str,
    container: &str,
    object: &str,
    caller: &Caller,
    o: &mut Outcome,
) {
    let path = encode(&if object.is_empty() {
        format!("/{container}")
    } else {
        format!("/{container}/{object}")
    });
    let result: Result<bool> = async {
        let c = store.container(account, container).await?;
        if object.is_empty() {
            if !caller.owns(account) {
                return Err(caller.denied(account));
            }
            let (a, n) = (account.to_owned(), container.to_owned());
            return match store.db(move |db| db.delete_container(&a, &n)).await? {
                None => Ok(false),
                Some(true) => Ok(true),
                Some(false) => Err(Error::Conflict("container not empty".into())),
            };
        }
        authorize(caller, account, c.as_ref(), true)?;
        let Some(c) = c else { return Ok(false) };
        let resp = if versioning::enabled(&c) {
            versioning::delete(store, account, &c, object).await?
        } else {
            match history::delete(store, account, &c, object, caller).await {
                Err(Error::NotFound(_)) => return Ok(false),
                r => r?,
            }
        };
        Ok(resp.status().is_success())
    }
    .await;
    match result {
        Ok(true) => o.deleted += 1,
        Ok(false) => o.not_found += 1,
        Err(e) => o.errors.push((path, status_line(&e))),
    }
}

/// How an error shows in a bulk answer's list: `404 Not Found`.
fn status_line(e: &Error) -> String {
    let s = e.status();
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// The paths a bulk-delete body lists, one a line (blank lines skipped); 413 past the
/// most one request may delete.
pub(crate) fn listed_paths(text: &str) -> Result<Vec<&str>> {
    let paths: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if paths.len() > MAX_DELETES_PER_REQUEST {
        return Err(Error::PayloadTooLarge(format!(
            "Maximum Bulk Deletes: {MAX_DELETES_PER_REQUEST} per request"
        )));
    }
    Ok(paths)
}

/// `?bulk-delete`: the body lists `/container/object` or `/container` paths, URL-encoded.
pub(super) async fn bulk_delete<B: RequestBody>(
    store: &LocalStore,
    headers: &HeaderMap,
    body: B,
    account: &str,
    caller: &Caller,
) -> Result<Response<Body>> {
    let fmt = accept_format(headers);
    let raw = read_limited(
        body,
        MAX_DELETES_PER_REQUEST * (MAX_PATH_LENGTH + 1),
        "reading the request body failed",
        || Error::PayloadTooLarge("too many paths to delete in one request".into()),
    )
    .await?;
    let text = String::from_utf8_lossy(&raw);
    let paths = listed_paths(&text)?;
    let mut o = Outcome::default();
    for p in paths {
        match Reference::parse(p, "a path to delete") {
            Ok(r) => delete_one(store, account, &r.container, &r.object, caller, &mut o).await,
            Err(e) => o.errors.push((p.to_owned(), status_line(&e))),
        }
    }
    Ok(respond(fmt, &o))
}
