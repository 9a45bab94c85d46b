//! Container ACLs as TempAuth reads them: `X-Container-Read` holds referrer rules
//! (`.r:*`, `.r:example.com`, `.r:-bad.example.com`), `.rlistings` and group names;
//! `X-Container-Write` holds group names only. Groups are `acct`, `acct:user`, and
//! the storage id (account admins).

use crate::error::{Error, Result};
use crate::swift::tempurl::Scope;

/// Normalizes an ACL header as Swift's `clean_acl` does; 400 for what it refuses.
pub(crate) fn clean(header: &str, value: &str) -> Result<String> {
    let write = header.eq_ignore_ascii_case("x-container-write");
    let mut out = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if !item.starts_with('.') {
            out.push(item.to_owned());
            continue;
        }
        if item == ".rlistings" {
            if write {
                return Err(Error::bad_request(format!(
                    "Referrers not allowed in write ACL: {item:?}"
                )));
            }
            out.push(item.to_owned());
            continue;
        }
        let Some((kind, rule)) = item.split_once(':') else {
            return Err(Error::bad_request(format!(
                "Unknown designator {item:?} in ACL"
            )));
        };
        if !matches!(kind.trim(), ".r" | ".ref" | ".referer" | ".referrer") {
            return Err(Error::bad_request(format!(
                "Unknown designator {kind:?} in ACL"
            )));
        }
        if write {
            return Err(Error::bad_request(format!(
                "Referrers not allowed in write ACL: {item:?}"
            )));
        }
        let rule = rule.trim();
        if rule.is_empty() || rule == "-" {
            return Err(Error::bad_request(format!(
                "No host/domain value after referrer designation in ACL: {item:?}"
            )));
        }
        // `*.example.com` means the domain and its subdomains, as `.example.com`
        let rule = match rule.strip_prefix('-') {
            Some(r) if r.len() > 1 => format!("-{}", r.strip_prefix('*').unwrap_or(r)),
            _ if rule.len() > 1 => rule.strip_prefix('*').unwrap_or(rule).to_owned(),
            _ => rule.to_owned(),
        };
        out.push(format!(".r:{rule}"));
    }
    Ok(out.join(","))
}

/// The account ACL header, stored with the account.
pub(crate) const ACCOUNT_ACL: &str = "x-account-access-control";

/// What `X-Account-Access-Control` grants, in increasing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccountAccess {
    #[default]
    None,
    ReadOnly,
    ReadWrite,
    Admin,
}

const ACCOUNT_ACL_KEYS: &[&str] = &["admin", "read-write", "read-only"];

/// Checks an account ACL as TempAuth does: a JSON object whose keys are `admin`,
/// `read-write`, `read-only`, each a list of strings.
pub(crate) fn check_account_acl(raw: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(raw);
    if text.trim().is_empty() {
        return Ok(());
    }
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| Error::bad_request(format!("Syntax error in input ({text:?})")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Error::bad_request(format!("Syntax error in input ({text:?})")))?;
    for (key, value) in obj {
        if !ACCOUNT_ACL_KEYS.contains(&key.as_str()) {
            return Err(Error::bad_request(format!("Key \"{key}\" not recognized")));
        }
        let list = value
            .as_array()
            .ok_or_else(|| Error::bad_request(format!("Value for key \"{key}\" must be a list")))?;
        if !list.iter().all(|g| g.is_string()) {
            return Err(Error::bad_request(format!(
                "Elements of \"{key}\" list must be strings"
            )));
        }
    }
    Ok(())
}

/// The highest access an account ACL gives any of `groups`.
pub(crate) fn account_access(acl: Option<&String>, groups: &[String]) -> AccountAccess {
    let Some(v) = acl.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok()) else {
        return AccountAccess::None;
    };
    let has = |key: &str| {
        v.get(key).and_then(|l| l.as_array()).is_some_and(|l| {
            l.iter()
                .filter_map(|g| g.as_str())
                .any(|g| groups.iter().any(|u| u == g))
        })
    };
    if has("admin") {
        AccountAccess::Admin
    } else if has("read-write") {
        AccountAccess::ReadWrite
    } else if has("read-only") {
        AccountAccess::ReadOnly
    } else {
        AccountAccess::None
    }
}

pub(crate) struct Acl {
    pub referrers: Vec<String>,
    pub groups: Vec<String>,
    pub listings: bool,
}

pub(crate) fn parse(value: Option<&str>) -> Acl {
    let mut acl = Acl {
        referrers: Vec::new(),
        groups: Vec::new(),
        listings: false,
    };
    for item in value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        if item == ".rlistings" {
            acl.listings = true;
        } else if let Some(r) = item.strip_prefix(".r:") {
            acl.referrers.push(r.to_owned());
        } else {
            acl.groups.push(item.to_owned());
        }
    }
    acl
}

/// The host a `Referer` names, lowercased, without user info or port, as Swift's
/// `urlparse(referer).hostname`; empty when it names none.
fn referrer_host(referer: Option<&str>) -> String {
    let Some((_, rest)) = referer.and_then(|r| r.split_once("://")) else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
}

/// Whether the `Referer` host passes the referrer rules; the last matching rule wins.
/// Host names compare without regard to case.
pub(crate) fn referrer_allowed(referer: Option<&str>, rules: &[String]) -> bool {
    let host = referrer_host(referer);
    let host = host.as_str();
    let mut allowed = false;
    for rule in rules {
        let rule = rule.to_ascii_lowercase();
        let (deny, pattern) = match rule.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, rule.as_str()),
        };
        let hit = pattern == "*"
            || pattern == host
            || (pattern.starts_with('.') && (host.ends_with(pattern) || host == &pattern[1..]));
        if hit {
            allowed = !deny;
        }
    }
    allowed
}

impl Acl {
    /// Whether the ACL names one of `groups`; `*` names every caller with a token or a
    /// certificate, never an anonymous one (who has no groups).
    pub(crate) fn has_group(&self, groups: &[String]) -> bool {
        !groups.is_empty() && self.groups.iter().any(|g| g == "*" || groups.contains(g))
    }
}

/// A container as an ACL decision sees it: its name and its ACL headers as stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Container<'a> {
    pub name: &'a str,
    pub read: Option<&'a str>,
    pub write: Option<&'a str>,
}

/// Where in an account a request reaches: the account itself (its listing and
/// metadata), a container (its listing, metadata, creation, deletion), or an object in
/// a container; `None` for a container that does not exist.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach<'a> {
    Account,
    Container(Option<Container<'a>>),
    Object(Option<Container<'a>>),
}

/// Who asks, as an access decision in one account sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing<'a> {
    /// An admin of the account, or a reseller admin.
    pub owner: bool,
    /// What the account's ACL grants.
    pub access: AccountAccess,
    /// The caller's groups, as container ACLs name them.
    pub groups: &'a [String],
    pub referer: Option<&'a str>,
    /// The scope of the temporary URL the request carries.
    pub temp_url: Option<&'a Scope>,
}

/// Whether a temporary URL's scope reaches on past an object of `container` (to a
/// link's target, a dynamic manifest's segments): only through what no one but the
/// account's owners could have made, an object an owner wrote last (`made_by_owner`) or
/// one in a container no one else may write. Those a container's write ACL names could
/// have left a link or a manifest in it, made in their own account and copied in, or
/// pointing at a link that leads on, which a URL of the owner's key would follow where
/// they may not read; past such an object, a temporary URL's read is judged as an
/// anonymous one.
pub(crate) fn scope_passes(container: &Container<'_>, made_by_owner: bool) -> bool {
    let acl = parse(container.write);
    made_by_owner || (acl.groups.is_empty() && acl.referrers.is_empty())
}

/// The decision, when the container's ACLs do not change it: `None` when they do.
pub(crate) fn settled(who: &Standing<'_>, reach: &Reach<'_>, write: bool) -> Option<bool> {
    if who.owner || who.access == AccountAccess::Admin {
        return Some(true);
    }
    match (who.access, reach) {
        (AccountAccess::ReadWrite, Reach::Container(_) | Reach::Object(_)) => Some(true),
        (AccountAccess::ReadWrite | AccountAccess::ReadOnly, _) => Some(!write),
        (_, Reach::Account) => Some(false),
        // creating, changing or deleting a container takes the account's ACL
        (_, Reach::Container(_)) if write => Some(false),
        _ => None,
    }
}

/// Whether `who` may read (or write) `reach` in `account`: one decision for the
/// embedded store and the proxy, from what the account's ACL grants, a temporary URL's
/// scope, and the container's read or write ACL (groups; referrers for reads, and for
/// container listings only with `.rlistings`).
pub(crate) fn allows(who: &Standing<'_>, account: &str, reach: &Reach<'_>, write: bool) -> bool {
    if let Some(decided) = settled(who, reach, write) {
        return decided;
    }
    let (container, object) = match reach {
        Reach::Object(c) => (c, true),
        Reach::Container(c) => (c, false),
        Reach::Account => return false,
    };
    if object
        && who
            .temp_url
            .is_some_and(|s| s.covers(account, container.map(|c| c.name)))
    {
        return true;
    }
    let Some(container) = container else {
        return false;
    };
    let acl = parse(if write {
        container.write
    } else {
        container.read
    });
    acl.has_group(who.groups)
        || (!write && (object || acl.listings) && referrer_allowed(who.referer, &acl.referrers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_url_s_scope_ends_where_others_write() {
        let container = |write| Container {
            name: "c",
            read: Some(".r:*"),
            write,
        };
        assert!(scope_passes(&container(None), false));
        assert!(scope_passes(&container(Some("")), false));
        assert!(!scope_passes(&container(Some("bob:owner")), false));
        assert!(!scope_passes(&container(Some("*")), false));
        assert!(scope_passes(&container(Some("bob:owner")), true));
    }

    #[test]
    fn cleaning() {
        assert_eq!(
            clean("x-container-read", " .r:*, .rlistings,test:tester ").unwrap(),
            ".r:*,.rlistings,test:tester"
        );
        assert_eq!(
            clean("x-container-read", ".referrer:example.com").unwrap(),
            ".r:example.com"
        );
        assert!(clean("x-container-write", ".r:*").is_err());
        assert!(clean("x-container-read", ".bogus:x").is_err());
        assert!(clean("x-container-read", ".r:").is_err());
    }

    #[test]
    fn referrers() {
        let rules = vec!["*".to_string(), "-bad.example.com".to_string()];
        assert!(referrer_allowed(None, &rules));
        assert!(referrer_allowed(Some("http://good.example.com/x"), &rules));
        assert!(!referrer_allowed(Some("http://bad.example.com/x"), &rules));
        let dom = vec![".example.com".to_string()];
        assert!(referrer_allowed(Some("https://a.example.com"), &dom));
        assert!(!referrer_allowed(Some("https://example.org"), &dom));
        assert!(!referrer_allowed(None, &dom));
        // the host as a URL parser reads it: no user info, no port, any case
        let deny = vec![".good.com".to_string(), "-bad.good.com".to_string()];
        for sneaky in [
            "http://x@bad.good.com/",
            "http://BAD.good.com/",
            "http://bad.good.com:8080/x",
            "http://user:pw@Bad.Good.Com",
        ] {
            assert!(!referrer_allowed(Some(sneaky), &deny), "{sneaky}");
        }
        assert!(referrer_allowed(Some("http://WWW.Good.com/"), &deny));
        assert!(referrer_allowed(
            Some("http://bad.good.com@www.good.com/"),
            &deny
        ));
        let v6 = vec!["[::1]".to_string(), "::1".to_string()];
        assert!(referrer_allowed(Some("http://[::1]:8080/"), &v6));
    }

    fn who(access: AccountAccess, groups: &[String]) -> Standing<'_> {
        Standing {
            owner: false,
            access,
            groups,
            referer: None,
            temp_url: None,
        }
    }

    #[test]
    fn one_decision_for_every_reach() {
        use AccountAccess::{Admin, None as No, ReadOnly, ReadWrite};
        let groups = vec!["bob".to_string()];
        let shared = Container {
            name: "c",
            read: Some("bob,.r:*"),
            write: Some("bob"),
        };
        let public = Container {
            name: "p",
            read: Some(".r:*"),
            write: None,
        };
        let listed = Container {
            name: "l",
            read: Some(".r:*,.rlistings"),
            write: None,
        };
        let private = Container {
            name: "x",
            read: None,
            write: None,
        };
        // (access, reach, write, allowed)
        let table = [
            (Admin, Reach::Account, true, true),
            (ReadWrite, Reach::Account, false, true),
            (ReadWrite, Reach::Account, true, false),
            (ReadWrite, Reach::Container(Some(private)), true, true),
            (ReadWrite, Reach::Object(None), true, true),
            (ReadOnly, Reach::Account, false, true),
            (ReadOnly, Reach::Object(Some(private)), false, true),
            (ReadOnly, Reach::Object(Some(private)), true, false),
            (ReadOnly, Reach::Container(Some(private)), true, false),
            (No, Reach::Account, false, false),
            (No, Reach::Container(Some(shared)), true, false),
            (No, Reach::Container(Some(shared)), false, true),
            (No, Reach::Object(Some(shared)), true, true),
            (No, Reach::Object(Some(shared)), false, true),
            (No, Reach::Object(Some(private)), false, false),
            (No, Reach::Object(None), false, false),
        ];
        for (access, reach, write, allowed) in table {
            let w = who(access, &groups);
            assert_eq!(
                allows(&w, "AUTH_a", &reach, write),
                allowed,
                "{access:?} {reach:?} {write}"
            );
        }
        let stranger = who(No, &[]);
        // a referrer rule lets anyone read objects; listings only with .rlistings
        assert!(allows(
            &stranger,
            "AUTH_a",
            &Reach::Object(Some(public)),
            false
        ));
        assert!(!allows(
            &stranger,
            "AUTH_a",
            &Reach::Object(Some(public)),
            true
        ));
        assert!(!allows(
            &stranger,
            "AUTH_a",
            &Reach::Container(Some(public)),
            false
        ));
        assert!(allows(
            &stranger,
            "AUTH_a",
            &Reach::Container(Some(listed)),
            false
        ));
        let owner = Standing {
            owner: true,
            ..stranger
        };
        assert!(allows(&owner, "AUTH_a", &Reach::Account, true));
        assert!(settled(&stranger, &Reach::Object(Some(public)), false).is_none());
    }

    #[test]
    fn a_temporary_url_reaches_objects_of_its_scope() {
        let whole = Scope {
            account: "AUTH_a".into(),
            container: None,
        };
        let one = Scope {
            account: "AUTH_a".into(),
            container: Some("c".into()),
        };
        let c = Container {
            name: "c",
            read: None,
            write: None,
        };
        let d = Container { name: "d", ..c };
        let by = |scope| Standing {
            owner: false,
            access: AccountAccess::None,
            groups: &[],
            referer: None,
            temp_url: Some(scope),
        };
        assert!(allows(
            &by(&whole),
            "AUTH_a",
            &Reach::Object(Some(d)),
            false
        ));
        assert!(allows(&by(&whole), "AUTH_a", &Reach::Object(None), false));
        assert!(!allows(
            &by(&whole),
            "AUTH_b",
            &Reach::Object(Some(d)),
            false
        ));
        assert!(allows(&by(&one), "AUTH_a", &Reach::Object(Some(c)), false));
        assert!(!allows(&by(&one), "AUTH_a", &Reach::Object(Some(d)), false));
        assert!(!allows(&by(&one), "AUTH_a", &Reach::Object(None), false));
        assert!(!allows(
            &by(&whole),
            "AUTH_a",
            &Reach::Container(Some(c)),
            false
        ));
        assert!(!allows(&by(&whole), "AUTH_a", &Reach::Account, false));
    }
}
