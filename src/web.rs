//! Pages for people, each behind a login: linking an account to its OAuth2 provider
//! (`/link/<account>`, then the provider, then `/callback`) and what accounts store
//! (`/usage` as HTML, `/usage.json` for scripts). A link is started by an admin of the
//! account with their key; the provider is sent a fresh `state` and a PKCE challenge,
//! and the grant it gives is kept sealed. A link is finished only in the browser that
//! started it (a cookie the verifier is sealed to): a link started by one admin and
//! opened by someone else cannot tie that person's grant to the first admin's account.
//! Provider errors are shown in plain words.

use std::net::IpAddr;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::auth::identity::{Identity, Principal};
use crate::backend::credentials::{AccountCredentials, Sealer};
use crate::backend::local::LocalStore;
use crate::backend::oauth;
use crate::backend::swift::Clusters;
use crate::body::{Body, full, json};
use crate::error::{Error, Result};
use crate::store::{AccountRecord, LinkLimits, LinkRecord, StoreError};

/// How long a started link waits for the provider's answer.
const LINK_LIFE: Duration = Duration::from_secs(600);
/// Links waiting at once, in all and for one account; more are refused until some
/// finish or expire.
const LINK_LIMITS: LinkLimits = LinkLimits {
    total: 1000,
    per_account: 10,
};
/// The cookie that ties a link to the browser that started it is named by this and the
/// start of the hash of the link's `state`, so that links started together each keep
/// theirs.
const LINK_COOKIE: &str = "swiftgate_link_";
/// The largest form a page accepts.
pub(crate) const MAX_FORM: usize = 8192;

/// A link on its way through the provider.
struct Pending {
    account: String,
    verifier: String,
    redirect_uri: String,
}

/// Text for HTML: the XML escapes serve.
fn escape(s: &str) -> String {
    crate::http_util::xml_escape(s)
}

fn path_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// An HTML page; `body` is already escaped.
fn page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t} · swiftgate</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         label{{display:block;margin:.6em 0}}input{{margin-left:.5em}}\
         td,th{{padding:.2em 1em;text-align:left}}</style></head>\
         <body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    );
    let mut resp = Response::new(full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    resp
}

/// An error as a page: its status, its message in plain words (the gateway's own
/// failures as such, their detail in the log under `trans_id`) and the headers a plain
/// answer has (`Retry-After`, `X-Denied-By`).
pub(crate) fn error_page(e: Error, trans_id: &str) -> Response<Body> {
    let status = e.status();
    let title = match status {
        StatusCode::UNAUTHORIZED => "Not signed in",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "The gateway could not finish",
        _ => "This did not work",
    };
    let message = e.public_message(trans_id);
    let mut resp = page(status, title, &format!("<p>{}</p>", escape(&message)));
    let (parts, _) = e.respond(String::new()).into_parts();
    for name in [header::RETRY_AFTER.as_str(), "x-denied-by"] {
        if let Some(v) = parts.headers.get(name) {
            resp.headers_mut().insert(name, v.clone());
        }
    }
    if let Some(answered) = parts.extensions.get::<crate::error::Answered>() {
        resp.extensions_mut().insert(answered.clone());
    }
    resp
}

fn sign_in_form(action: &str, user_label: &str, button: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\
         <label>{}<input name=\"user\" autocomplete=\"username\" required></label>\
         <label>Key<input name=\"key\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">{}</button></form>",
        escape(action),
        escape(user_label),
        escape(button)
    )
}

/// `GET /link/<account>`: the sign-in form of an account admin.
pub(crate) fn link_page(account: &str) -> Response<Body> {
    let action = format!("/link/{}", path_segment(account));
    let body = format!(
        "<p>Sign in as an admin of account <b>{}</b>; you will then be sent to its storage \
         provider to grant access. The grant is kept sealed by this gateway, and Swift clients \
         keep logging in here with their own keys.</p>{}",
        escape(account),
        sign_in_form(
            &action,
            "User (of this account)",
            "Continue to the provider"
        )
    );
    page(StatusCode::OK, &format!("Link account {account}"), &body)
}

/// A form's fields.
fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>> {
    let text =
        std::str::from_utf8(body).map_err(|_| Error::bad_request("the form is not UTF-8"))?;
    crate::swift::query::query_pairs(Some(text))
        .map_err(|_| Error::bad_request("the form is not valid form data"))
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::bad_request(format!("the form needs {name}")))
}

/// Checks an admin of `account` (or a reseller admin) by their key.
async fn sign_in_admin(
    identity: &Identity,
    account: &str,
    fields: &[(String, String)],
    source: IpAddr,
) -> Result<String> {
    let user = field(fields, "user")?;
    let user = match user.split_once(':') {
        Some((a, u)) if a == account => u,
        Some(_) => {
            return Err(Error::forbidden(
                "link-account",
                format!("{user} is not a user of account {account}"),
            ));
        }
        None => user,
    };
    let key = field(fields, "key")?.to_owned();
    let record = identity.verify_key(account, user, &[key], source).await?;
    if !record.is_admin() {
        return Err(Error::forbidden(
            "account-admin",
            format!("{account}:{user} is not an admin of account {account}"),
        ));
    }
    Ok(user.to_owned())
}

/// What a link's sealed verifier is bound to: the hash of its `state`, which is what the
/// store keeps it by (the `state` itself is a bearer secret and is not stored), and the
/// hash of the cookie of the browser that started it.
fn link_context(state_hash: &[u8], browser: &str) -> String {
    format!(
        "link/{}/{}",
        hex::encode(state_hash),
        hex::encode(sha256(browser))
    )
}

/// The name of the cookie of the link whose `state` hashes to this.
fn link_cookie(state_hash: &[u8]) -> String {
    format!("{LINK_COOKIE}{}", hex::encode(&state_hash[..8]))
}

/// The value of cookie `name` in a request's `Cookie` headers.
fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The SHA-256 of a link's `state` or of its browser's cookie: what is kept and sealed to.
fn sha256(text: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

/// A link started: its `state`, and the cookie (name and value) of the browser that
/// started it.
struct Started {
    state: String,
    cookie: (String, String),
}

/// Keeps a link under way in the store, where any gateway of the store finds it when the
/// provider sends the browser back.
async fn start(
    identity: &Identity,
    sealer: &Sealer,
    account: &str,
    verifier: &str,
    redirect_uri: String,
) -> Result<Started> {
    let (state, browser) = (oauth::nonce(), oauth::nonce());
    let hash = sha256(&state);
    let link = LinkRecord {
        account: account.to_owned(),
        verifier: sealer.seal_secret(&link_context(&hash, &browser), verifier)?,
        redirect_uri,
        until: crate::auth::identity::unix_now() + LINK_LIFE.as_secs(),
    };
    match identity.store().put_link(&hash, &link, LINK_LIMITS).await {
        Ok(()) => Ok(Started {
            cookie: (link_cookie(&hash), browser),
            state,
        }),
        Err(e @ StoreError::TooManyLinks { .. }) => Err(Error::Unavailable {
            retry_after: 60,
            message: e.to_string(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// What a `state` at `/callback` stands for.
enum Taken {
    /// No link under way (never, finished, or expired).
    Unknown,
    /// A link, started in another browser than the one that came back with it.
    OtherBrowser,
    Pending(Pending),
}

/// The link a `state` stands for, once: it is used up whoever comes back with it.
async fn take(
    identity: &Identity,
    sealer: &Sealer,
    state: &str,
    headers: &http::HeaderMap,
) -> Result<Taken> {
    let hash = sha256(state);
    let Some(link) = identity.store().take_link(&hash).await? else {
        return Ok(Taken::Unknown);
    };
    let Some(browser) = cookie(headers, &link_cookie(&hash)) else {
        return Ok(Taken::OtherBrowser);
    };
    Ok(
        match sealer.open_secret(&link_context(&hash, browser), &link.verifier) {
            Some(verifier) => Taken::Pending(Pending {
                account: link.account,
                verifier,
                redirect_uri: link.redirect_uri,
            }),
            None => Taken::OtherBrowser,
        },
    )
}

/// The `Set-Cookie` value of a link's cookie (`value` empty: its removal).
fn set_cookie(name: &str, value: &str, public_base: &str) -> Result<HeaderValue> {
    let life = if value.is_empty() {
        0
    } else {
        LINK_LIFE.as_secs()
    };
    let secure = if public_base.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/callback; Max-Age={life}; HttpOnly; SameSite=Lax{secure}"
    ))
    .map_err(|_| Error::broken("a link cookie is not a valid header"))
}

/// Where the provider sends the browser back.
pub(crate) fn redirect_uri(configured: Option<&str>, public_base: &str) -> String {
    match configured {
        Some(u) => u.to_owned(),
        None => format!("{public_base}/callback"),
    }
}

/// `POST /link/<account>`: an admin signed in; off to the provider (303).
pub(crate) async fn link_start(
    identity: &Identity,
    clusters: &Clusters,
    account: &str,
    form: &[u8],
    source: IpAddr,
    public_base: &str,
) -> Result<Response<Body>> {
    let fields = form_fields(form)?;
    sign_in_admin(identity, account, &fields, source).await?;
    let record = identity
        .account(account)
        .ok_or_else(|| Error::NotFound(format!("no account {account}")))?;
    let settings = clusters.oauth(&record.backend).ok_or_else(|| {
        Error::Conflict(format!(
            "account {account} is on backend {:?}, which is not an OAuth2 provider",
            record.backend
        ))
    })?;
    let redirect = redirect_uri(settings.redirect_uri.as_deref(), public_base);
    let pkce = oauth::pkce();
    let started = start(
        identity,
        &*clusters.sealer()?,
        account,
        &pkce.verifier,
        redirect.clone(),
    )
    .await?;
    let to = oauth::authorize_url(settings, &redirect, &started.state, &pkce.challenge);
    let mut resp = page(
        StatusCode::SEE_OTHER,
        "On to the provider",
        "<p>Continue at the storage provider.</p>",
    );
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&to)
            .map_err(|_| Error::broken("the provider's address is not a valid URL"))?,
    );
    let (name, value) = &started.cookie;
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(name, value, public_base)?);
    Ok(resp)
}

/// `GET /callback?code=…&state=…` (or `?error=…`): the provider's answer.
pub(crate) async fn callback(
    identity: &std::sync::Arc<Identity>,
    clusters: &Clusters,
    query: Option<&str>,
    headers: &http::HeaderMap,
    public_base: &str,
    trans_id: &str,
) -> Response<Body> {
    match finish_link(identity, clusters, query, headers, public_base).await {
        Ok(resp) => resp,
        Err(e) => error_page(e, trans_id),
    }
}

async fn finish_link(
    identity: &std::sync::Arc<Identity>,
    clusters: &Clusters,
    query: Option<&str>,
    headers: &http::HeaderMap,
    public_base: &str,
) -> Result<Response<Body>> {
    let q = crate::swift::query::query_pairs(query)
        .map_err(|_| Error::bad_request("the provider's answer is not a valid query"))?;
    let get = |name: &str| {
        q.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let taken = match get("state") {
        Some(state) => take(identity, &*clusters.sealer()?, state, headers).await?,
        None => Taken::Unknown,
    };
    let pending = match taken {
        Taken::Pending(p) => p,
        Taken::OtherBrowser => {
            return Ok(page(
                StatusCode::BAD_REQUEST,
                "Not linked",
                "<p>This link was started in another browser, or at another address of \
                 this gateway than the one the provider sent you back to. Nothing was \
                 linked. If you did not start it yourself, someone may have tried to have \
                 you grant your storage to their account. Otherwise start again from the \
                 link page of the account, in this browser.</p>",
            ));
        }
        Taken::Unknown => {
            let mut body = "<p>This link attempt is unknown or has expired (links wait ten \
                        minutes). Start again from the link page of the account.</p>"
                .to_owned();
            if let Some(code) = get("code") {
                body.push_str(&format!(
                    "<p>If you started it with <code>swiftgate link</code>, paste this code \
                 there: <code>{}</code></p>",
                    escape(code)
                ));
            }
            return Ok(page(StatusCode::BAD_REQUEST, "Unknown link", &body));
        }
    };
    let account = pending.account.as_str();
    if let Some(error) = get("error") {
        let said = get("error_description").unwrap_or(match error {
            "access_denied" => "access was not granted",
            _ => "no reason given",
        });
        let body = format!(
            "<p>The provider did not link account <b>{}</b>: {} <small>({})</small>.</p>\
             <p><a href=\"/link/{}\">Try again</a></p>",
            escape(account),
            escape(said),
            escape(error),
            escape(&path_segment(account))
        );
        return Ok(page(StatusCode::BAD_REQUEST, "Not linked", &body));
    }
    let code = get("code")
        .ok_or_else(|| Error::bad_request("the provider sent neither a code nor an error"))?;
    let record = identity
        .account(account)
        .ok_or_else(|| Error::NotFound(format!("account {account} is gone")))?;
    let refresh_token = clusters
        .link_grant(
            &record.backend,
            code,
            &pending.verifier,
            &pending.redirect_uri,
        )
        .await?;
    keep_grant(identity, clusters, &record, refresh_token).await?;
    tracing::info!(account, backend = %record.backend, "linked an account to its OAuth2 provider");
    let body = format!(
        "<p>Account <b>{}</b> is linked to <b>{}</b>.</p><p>Swift clients log in with v1 auth \
         at <code>{}/auth/v1.0</code> as <code>{}:USER</code> and their key.</p>",
        escape(account),
        escape(&record.backend),
        escape(public_base),
        escape(account)
    );
    Ok(page(StatusCode::OK, "Linked", &body))
}

/// Seals and stores an account's new grant.
pub(crate) async fn keep_grant(
    identity: &std::sync::Arc<Identity>,
    clusters: &Clusters,
    record: &AccountRecord,
    refresh_token: String,
) -> Result<()> {
    let grant = AccountCredentials::oauth2(refresh_token);
    let sealed = clusters.sealer()?.seal(&record.storage_id, &grant)?;
    identity.set_credentials(&record.name, sealed).await
}

/// One account's usage, as shown.
#[derive(serde::Serialize)]
struct AccountUsage {
    account: String,
    backend: String,
    used: Option<u64>,
    quota: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn usage_of(
    identity: &Identity,
    clusters: &Clusters,
    local: &LocalStore,
    record: &AccountRecord,
) -> AccountUsage {
    let found = match clusters.upstream(record) {
        Ok(Some(up)) => up
            .cluster
            .usage(&record.storage_id, identity.prefixes())
            .await
            .map(|u| (u.used, u.quota)),
        Ok(None) => local.usage(&record.storage_id).await,
        Err(e) => Err(e),
    };
    let (used, quota, error) = match found {
        Ok((used, quota)) => (Some(used), (quota > 0).then_some(quota), None),
        Err(e) => (None, None, Some(e.to_string())),
    };
    AccountUsage {
        account: record.name.clone(),
        backend: record.backend.clone(),
        used,
        quota,
        error,
    }
}

/// The accounts a caller may see the usage of: all for a reseller admin, else its own.
fn visible(identity: &Identity, account: &str, reseller: bool) -> Vec<AccountRecord> {
    if reseller {
        identity.accounts()
    } else {
        identity.account(account).into_iter().collect()
    }
}

/// `GET /usage.json` with a token.
pub(crate) async fn usage_json(
    identity: &Identity,
    clusters: &Clusters,
    local: &LocalStore,
    principal: &Principal,
) -> Result<Response<Body>> {
    let mut out = Vec::new();
    for record in visible(identity, &principal.account, principal.is_reseller_admin()) {
        out.push(usage_of(identity, clusters, local, &record).await);
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "accounts": out }),
    ))
}

/// `GET /usage`: the sign-in form.
pub(crate) fn usage_page() -> Response<Body> {
    let body = format!(
        "<p>Sign in to see what your account stores.</p>{}",
        sign_in_form("/usage", "User (ACCOUNT:USER)", "Show usage")
    );
    page(StatusCode::OK, "Usage", &body)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `POST /usage`: signed in with a key; the table.
pub(crate) async fn usage_signed_in(
    identity: &Identity,
    clusters: &Clusters,
    local: &LocalStore,
    form: &[u8],
    source: IpAddr,
) -> Result<Response<Body>> {
    let fields = form_fields(form)?;
    let user = field(&fields, "user")?;
    let (account, name) = user
        .split_once(':')
        .ok_or_else(|| Error::bad_request("give the user as ACCOUNT:USER"))?;
    let key = field(&fields, "key")?.to_owned();
    let record = identity.verify_key(account, name, &[key], source).await?;
    let mut rows = String::new();
    for r in visible(identity, account, record.is_reseller_admin()) {
        let u = usage_of(identity, clusters, local, &r).await;
        let (used, quota) = match (&u.error, u.used) {
            (Some(e), _) => (format!("unknown: {e}"), String::new()),
            (None, used) => (
                used.map(bytes).unwrap_or_default(),
                u.quota.map(bytes).unwrap_or_else(|| "none".into()),
            ),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&u.account),
            escape(&u.backend),
            escape(&used),
            escape(&quota)
        ));
    }
    let body = format!(
        "<table><tr><th>Account</th><th>Backend</th><th>Used</th><th>Quota</th></tr>{rows}</table>"
    );
    Ok(page(StatusCode::OK, "Usage", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
