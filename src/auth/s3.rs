//! S3 signatures, as Swift's `s3token` middleware hands them to Keystone's
//! `POST /v3/s3tokens`: the string the client signed and the signature it sent. The check
//! is Keystone's: a string beginning `AWS4` is signed with AWS Signature Version 4
//! (HMAC-SHA256 under a key derived from the secret, the date, the region and the
//! service, in hex), any other with Version 2 (HMAC-SHA1 under the secret, in base64).
//!
//! And EC2 requests, as an EC2 API service hands them to `POST /v3/ec2tokens`: the parts
//! of the request (verb, host, path, parameters, headers, the body's hash), from which
//! the string to sign is made again as Keystone's `Ec2Signer` makes it: Signature Version
//! 2 (`SignatureVersion=2`, HMAC-SHA256) and Version 4 (an `AWS4-HMAC-SHA256`
//! `Authorization` header or `X-Amz-Algorithm` parameter). Versions 0 and 1, which AWS
//! retired, are refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The services a Version 4 signature may be scoped to, as Keystone allows.
const SERVICES: [&[u8]; 3] = [b"s3", b"iam", b"sts"];

/// Why a string to sign cannot be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A Version 4 string that is not `AWS4-HMAC-SHA256`, a timestamp, a scope
    /// `date/region/service/aws4_request` and a hash, one per line.
    Malformed,
    /// A Version 4 scope for a service other than S3's, IAM's and STS's.
    Service,
    /// An EC2 request of a signature version not served (0, 1, or none recognised).
    Version,
    /// An EC2 Version 4 request whose date is not its credential scope's.
    Date,
}

// HMAC takes keys of any length: a key it refused would match no signature
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map(|m| m.chain_update(msg).finalize().into_bytes().into())
        .unwrap_or_default()
}

/// The Version 2 signature of `string_to_sign`.
pub fn signature_v2(secret: &str, string_to_sign: &[u8]) -> String {
    let mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .map(|m| {
            m.chain_update(string_to_sign)
                .finalize()
                .into_bytes()
                .to_vec()
        })
        .unwrap_or_default();
    STANDARD.encode(mac)
}

/// The Version 4 signature of `string_to_sign`, for whichever service its scope names.
pub fn signature_v4(secret: &str, string_to_sign: &[u8]) -> Result<String, Refusal> {
    let scope = v4_scope(string_to_sign)?;
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), scope[0]);
    for part in &scope[1..] {
        key = hmac_sha256(&key, part);
    }
    Ok(hex::encode(hmac_sha256(&key, string_to_sign)))
}

/// The four parts of a Version 4 string's scope: date, region, service, `aws4_request`.
fn v4_scope(string_to_sign: &[u8]) -> Result<Vec<&[u8]>, Refusal> {
    let lines: Vec<&[u8]> = string_to_sign.split(|b| *b == b'\n').collect();
    let [algorithm, _, scope, _] = lines.as_slice() else {
        return Err(Refusal::Malformed);
    };
    if *algorithm != b"AWS4-HMAC-SHA256" {
        return Err(Refusal::Malformed);
    }
    let scope: Vec<&[u8]> = scope.split(|b| *b == b'/').collect();
    if scope.len() != 4 || scope[3] != b"aws4_request" {
        return Err(Refusal::Malformed);
    }
    Ok(scope)
}

/// Whether `signature` is the signature of `string_to_sign` under `secret`, by the
/// version the string is written for, compared in constant time.
pub fn verify(secret: &str, string_to_sign: &[u8], signature: &str) -> Result<bool, Refusal> {
    let expected = if string_to_sign.starts_with(b"AWS4") {
        if !SERVICES.contains(&v4_scope(string_to_sign)?[2]) {
            return Err(Refusal::Service);
        }
        signature_v4(secret, string_to_sign)?
    } else {
        signature_v2(secret, string_to_sign)
    };
    Ok(expected.as_bytes().ct_eq(signature.as_bytes()).into())
}

/// What RFC 3986 leaves unreserved, and so Python's `quote(…, safe='-_~')`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An EC2 request as `ec2tokens` receives it.
#[derive(Debug, Clone, Default)]
pub struct Ec2Request {
    pub verb: String,
    pub host: String,
    pub path: String,
    pub params: BTreeMap<String, String>,
    /// As the request had them (names as sent: Keystone looks `Authorization` and
    /// `X-Amz-Date` up as written).
    pub headers: BTreeMap<String, String>,
    /// The SHA-256 of the body, in hex (Version 4).
    pub body_hash: String,
}

/// The signature of an EC2 request under `secret`, as Keystone's `Ec2Signer` computes it.
pub fn ec2_signature(secret: &str, r: &Ec2Request) -> Result<String, Refusal> {
    match r.params.get("SignatureVersion").map(String::as_str) {
        Some("2") => {
            let mut params = r.params.clone();
            params.insert("SignatureMethod".into(), "HmacSHA256".into());
            let sts = format!(
                "{}\n{}\n{}\n{}",
                r.verb,
                r.host,
                r.path,
                canonical_query(&params)
            );
            Ok(STANDARD.encode(hmac_sha256(secret.as_bytes(), sts.as_bytes())))
        }
        Some(_) => Err(Refusal::Version),
        None if is_v4(r) => ec2_signature_v4(secret, r),
        None => Err(Refusal::Version),
    }
}

/// The times an EC2 request's signature covers, as written: when it was signed
/// (`Timestamp` for Version 2, `X-Amz-Date` for Version 4, read as the signature reads
/// it) and when it stops being good (`Expires`, Version 2; `X-Amz-Expires`, in seconds,
/// Version 4 in the query).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SignedTimes<'a> {
    pub signed_at: Option<&'a str>,
    pub expires: Option<&'a str>,
    /// Whether `signed_at` is Version 4's `X-Amz-Date` (`20261203T080000Z`) and
    /// `expires` a number of seconds after it.
    pub v4: bool,
}

/// What of an EC2 request's time its signature covers (nothing is taken from what it
/// does not sign).
pub fn ec2_signed_times(r: &Ec2Request) -> SignedTimes<'_> {
    let param = |name: &str| r.params.get(name).map(String::as_str);
    if r.params.contains_key("SignatureVersion") {
        SignedTimes {
            signed_at: param("Timestamp"),
            expires: param("Expires"),
            v4: false,
        }
    } else {
        let header_signed = r.headers.contains_key("Authorization");
        SignedTimes {
            signed_at: r
                .headers
                .get("X-Amz-Date")
                .map(String::as_str)
                .or_else(|| param("X-Amz-Date")),
            expires: (!header_signed).then(|| param("X-Amz-Expires")).flatten(),
            v4: true,
        }
    }
}

fn is_v4(r: &Ec2Request) -> bool {
    match r.headers.get("Authorization") {
        Some(a) => a.starts_with("AWS4-HMAC-SHA256"),
        None => r.params.get("X-Amz-Algorithm").map(String::as_str) == Some("AWS4-HMAC-SHA256"),
    }
}

/// Keys in order, each `key=value` with everything but unreserved characters encoded.
fn canonical_query(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, UNRESERVED),
                utf8_percent_encode(v, UNRESERVED)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn ec2_signature_v4(secret: &str, r: &Ec2Request) -> Result<String, Refusal> {
    // from the Authorization header when there is one, else the X-Amz-* parameters
    let auth_param = |name: &str| -> Option<String> {
        match r.headers.get("Authorization") {
            Some(a) => {
                let after = a.split_once(&format!("{name}="))?.1;
                Some(after.split(',').next().unwrap_or_default().to_owned())
            }
            None => r.params.get(&format!("X-Amz-{name}")).cloned(),
        }
    };
    let signed_headers = auth_param("SignedHeaders").ok_or(Refusal::Malformed)?;
    let credential = auth_param("Credential").ok_or(Refusal::Malformed)?;
    let date = r
        .headers
        .get("X-Amz-Date")
        .or_else(|| r.params.get("X-Amz-Date"))
        .ok_or(Refusal::Malformed)?;
    let lower: BTreeMap<String, &str> = r
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
        .collect();
    let mut canonical_headers = String::new();
    for h in signed_headers.split(';') {
        if let Some(v) = lower.get(h) {
            canonical_headers.push_str(&format!("{h}:{v}\n"));
        }
    }
    let query = if r.verb.eq_ignore_ascii_case("POST") {
        String::new()
    } else {
        canonical_query(&r.params)
    };
    let canonical_request = [
        r.verb.to_ascii_uppercase().as_str(),
        &r.path,
        &query,
        &canonical_headers,
        &signed_headers,
        &r.body_hash,
    ]
    .join("\n");
    let parts: Vec<&str> = credential.split('/').collect();
    let [_, day, region, service, ..] = parts.as_slice() else {
        return Err(Refusal::Malformed);
    };
    if !date.starts_with(day) {
        return Err(Refusal::Date);
    }
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        parts[1..].join("/"),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), day.as_bytes());
    for part in [region.as_bytes(), service.as_bytes(), b"aws4_request"] {
        key = hmac_sha256(&key, part);
    }
    Ok(hex::encode(hmac_sha256(&key, string_to_sign.as_bytes())))
}

/// Whether `signature` signs the EC2 request under `secret`; as Keystone, a request
/// whose host names a port is also tried without it (some clients sign the host alone).
pub fn verify_ec2(secret: &str, r: &Ec2Request, signature: &str) -> Result<bool, Refusal> {
    let same =
        |expected: String| -> bool { expected.as_bytes().ct_eq(signature.as_bytes()).into() };
    if same(ec2_signature(secret, r)?) {
        return Ok(true);
    }
    match host_without_port(&r.host) {
        Some(host) => {
            let bare = Ec2Request { host, ..r.clone() };
            Ok(same(ec2_signature(secret, &bare)?))
        }
        None => Ok(false),
    }
}

/// `host:port` (or `[v6]:port`) without its port, lowercased as Python's `urlsplit` gives
/// a hostname.
fn host_without_port(host: &str) -> Option<String> {
    if !host.contains(':') {
        return None;
    }
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// AWS's signing test suite (tests/vectors/aws-sigv4): for each request, the string
    /// to sign and the signature, both when signed in headers and in the query.
    #[test]
    fn version_4_signatures_are_those_of_aws_test_suite() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/aws-sigv4");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let case = entry.unwrap().path();
            if !case.is_dir() {
                continue;
            }
            let context: serde_json::Value =
                serde_json::from_slice(&std::fs::read(case.join("context.json")).unwrap()).unwrap();
            let secret = context["credentials"]["secret_access_key"]
                .as_str()
                .unwrap();
            for form in ["header", "query"] {
                let sts = std::fs::read(case.join(format!("{form}-string-to-sign.txt"))).unwrap();
                let want =
                    std::fs::read_to_string(case.join(format!("{form}-signature.txt"))).unwrap();
                let want = want.trim();
                assert_eq!(
                    signature_v4(secret, &sts).as_deref(),
                    Ok(want),
                    "{} ({form})",
                    case.display()
                );
                // scoped to the suite's service "service", which Keystone does not allow
                assert_eq!(verify(secret, &sts, want), Err(Refusal::Service));
                checked += 1;
            }
        }
        assert_eq!(
            checked, 76,
            "the suite has 38 requests, each signed two ways"
        );
    }

    /// The examples of Amazon S3's "Signing and authenticating REST requests" (Signature
    /// Version 2), with its example secret.
    #[test]
    fn version_2_signatures_are_those_of_the_s3_documentation() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        for (sts, want) in [
            (
                "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
                "bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
            (
                "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg",
                "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
            ),
            (
                "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
                "MyyxeRY7whkBe+bq8fHCL/2kKUg=",
            ),
            (
                "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
                "htDYFYduRNen8P9ZfE/s9SuKy0U=",
            ),
        ] {
            assert_eq!(signature_v2(secret, sts.as_bytes()), want, "{sts:?}");
            assert_eq!(verify(secret, sts.as_bytes(), want), Ok(true));
            assert_eq!(verify("another", sts.as_bytes(), want), Ok(false));
        }
    }

    fn ec2_case(c: &serde_json::Value) -> Ec2Request {
        let map = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect()
        };
        Ec2Request {
            verb: c["verb"].as_str().unwrap().into(),
            host: c["host"].as_str().unwrap().into(),
            path: c["path"].as_str().unwrap().into(),
            params: map(&c["params"]),
            headers: map(&c["headers"]),
            body_hash: c["body_hash"].as_str().unwrap().into(),
        }
    }

    #[test]
    fn an_ec2_request_s_times_are_those_its_signature_covers() {
        let mut v4 = Ec2Request::default();
        v4.headers.insert(
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Credential=a/20261203/r/ec2/aws4_request".into(),
        );
        v4.headers
            .insert("X-Amz-Date".into(), "20261203T080000Z".into());
        // what a POST's parameters say is not signed: not read
        v4.params
            .insert("Timestamp".into(), "2030-01-01T00:00:00Z".into());
        v4.params.insert("X-Amz-Expires".into(), "999999".into());
        assert_eq!(
            ec2_signed_times(&v4),
            SignedTimes {
                signed_at: Some("20261203T080000Z"),
                expires: None,
                v4: true
            }
        );
        let mut query = Ec2Request::default();
        query
            .params
            .insert("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into());
        query
            .params
            .insert("X-Amz-Date".into(), "20261203T080000Z".into());
        query.params.insert("X-Amz-Expires".into(), "60".into());
        assert_eq!(
            ec2_signed_times(&query),
            SignedTimes {
                signed_at: Some("20261203T080000Z"),
                expires: Some("60"),
                v4: true
            }
        );
        let mut v2 = Ec2Request::default();
        v2.params.insert("SignatureVersion".into(), "2".into());
        v2.params
            .insert("Expires".into(), "2026-12-03T09:00:00Z".into());
        v2.headers
            .insert("X-Amz-Date".into(), "20261203T080000Z".into());
        assert_eq!(
            ec2_signed_times(&v2),
            SignedTimes {
                signed_at: None,
                expires: Some("2026-12-03T09:00:00Z"),
                v4: false
            }
        );
    }

    /// tests/vectors/ec2-signer.json: EC2 requests signed by Keystone's own signer
    /// (python-keystoneclient's `Ec2Signer`), versions 2 and 4.
    #[test]
    fn ec2_signatures_are_those_of_keystone_s_signer() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/ec2-signer.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let secret = v["secret"].as_str().unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for c in cases {
            let r = ec2_case(c);
            let want = c["signature"].as_str().unwrap();
            assert_eq!(
                ec2_signature(secret, &r).as_deref(),
                Ok(want),
                "{}",
                c["name"]
            );
            assert_eq!(verify_ec2(secret, &r, want), Ok(true));
            assert_eq!(verify_ec2("another secret", &r, want), Ok(false));
        }
        // signed without the port of its host, as some clients sign
        let mut r = ec2_case(&cases[0]);
        let want = ec2_signature(secret, &r).unwrap();
        r.host = "EC2.example.com:8773".into();
        assert_ne!(ec2_signature(secret, &r).unwrap(), want);
        assert_eq!(verify_ec2(secret, &r, &want), Ok(true));
        r.host = "[::1]:8773".into();
        assert_eq!(host_without_port(&r.host).as_deref(), Some("::1"));
    }

    #[test]
    fn ec2_requests_of_versions_not_served_or_of_another_day_are_refused() {
        let mut r = Ec2Request::default();
        assert_eq!(ec2_signature("s", &r), Err(Refusal::Version));
        for version in ["0", "1", "3", ""] {
            r.params.insert("SignatureVersion".into(), version.into());
            assert_eq!(ec2_signature("s", &r), Err(Refusal::Version), "{version}");
        }
        let mut r = Ec2Request::default();
        r.headers.insert(
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Credential=AKID/20261203/us-east-1/ec2/aws4_request, SignedHeaders=host".into(),
        );
        assert_eq!(ec2_signature("s", &r), Err(Refusal::Malformed), "no date");
        r.headers
            .insert("X-Amz-Date".into(), "20261204T000000Z".into());
        assert_eq!(ec2_signature("s", &r), Err(Refusal::Date));
        r.headers.insert(
            "Authorization".into(),
            "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host".into(),
        );
        assert_eq!(ec2_signature("s", &r), Err(Refusal::Malformed), "no scope");
        r.headers
            .insert("Authorization".into(), "AWS4-HMAC-SHA256".into());
        assert_eq!(ec2_signature("s", &r), Err(Refusal::Malformed));
    }

    #[test]
    fn version_4_for_s3_verifies_and_refuses_what_is_not_its_shape() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let sts = b"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/s3/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63";
        let good = signature_v4(secret, sts).unwrap();
        assert_eq!(verify(secret, sts, &good), Ok(true));
        assert_eq!(verify(secret, sts, &good.to_uppercase()), Ok(false));
        assert_eq!(verify(secret, sts, ""), Ok(false));
        assert_eq!(verify("wrong", sts, &good), Ok(false));
        for bad in [
            &b"AWS4"[..],
            b"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/s3/aws4_request",
            b"AWS4-HMAC-SHA1\n20150830T123600Z\n20150830/us-east-1/s3/aws4_request\nx",
            b"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/s3\nx",
            b"AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/s3/aws5_request\nx",
            b"AWS4-HMAC-SHA256\n1\n2/3/s3/aws4_request\nx\n",
        ] {
            assert_eq!(
                verify(secret, bad, &good),
                Err(Refusal::Malformed),
                "{bad:?}"
            );
        }
    }
}
