//! What a listing request asks for, as Swift reads it: `prefix`, `delimiter`, `marker`,
//! `end_marker`, `limit`, `reverse`, `path`, and the format (`format=` or `Accept`).

use http::HeaderMap;

use crate::error::{Error, Result};
use crate::swift::limits::LISTING_LIMIT;
use crate::swift::query::param;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Plain,
    Json,
    Xml,
}

impl Format {
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Plain => "text/plain; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub marker: Option<String>,
    pub end_marker: Option<String>,
    pub limit: usize,
    pub reverse: bool,
    /// `path=`: only the direct children of a pseudo-directory.
    pub path: bool,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "t" | "y"
    )
}

pub(crate) fn params(pairs: &[(String, String)]) -> Result<Params> {
    // as Swift: a limit that is not a whole number is ignored, one above the maximum refused
    let limit = match param(pairs, "limit") {
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: usize = v.parse().unwrap_or(usize::MAX);
            if n > LISTING_LIMIT {
                return Err(Error::PreconditionFailed(format!(
                    "Maximum limit is {LISTING_LIMIT}"
                )));
            }
            n
        }
        _ => LISTING_LIMIT,
    };
    let mut p = Params {
        prefix: param(pairs, "prefix").unwrap_or_default().to_owned(),
        delimiter: None,
        marker: param(pairs, "marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        end_marker: param(pairs, "end_marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        limit,
        reverse: param(pairs, "reverse").is_some_and(truthy),
        path: false,
    };
    if let Some(d) = param(pairs, "delimiter").filter(|d| !d.is_empty()) {
        p.delimiter = Some(d.to_owned());
    }
    if let Some(path) = param(pairs, "path") {
        p.path = true;
        p.delimiter = Some("/".into());
        p.prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{}/", path.trim_end_matches('/'))
        };
    }
    Ok(p)
}

/// `format=` wins over `Accept`; plain text by default.
pub(crate) fn format(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Format> {
    if let Some(f) = param(pairs, "format") {
        return match f.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            "plain" | "" => Ok(Format::Plain),
            _ => Ok(Format::Plain),
        };
    }
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for item in accept.split(',') {
        let mime = item
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/json" => return Ok(Format::Json),
            "application/xml" | "text/xml" => return Ok(Format::Xml),
            "text/plain" | "*/*" | "text/*" | "" => return Ok(Format::Plain),
            _ => {}
        }
    }
    if accept.trim().is_empty() {
        Ok(Format::Plain)
    } else {
        Err(Error::NotAcceptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swift::query::query_pairs;

    #[test]
    fn bad_parameters() {
        assert!(params(&query_pairs(Some("limit=10001")).unwrap()).is_err());
        assert_eq!(
            params(&query_pairs(Some("limit=5000.0")).unwrap())
                .unwrap()
                .limit,
            LISTING_LIMIT
        );
        assert!(query_pairs(Some("prefix=%ff")).is_err());
    }
}
