//! HTTP/1.1 request heads, checked before hyper reads them. hyper answers a head it
//! cannot parse with a bare 400 (no body, no trans id) and serves some that RFC 9112 says
//! to refuse: two `Host` headers or none, `Transfer-Encoding: chunked, chunked`, a length
//! beside chunked framing. Here every head is checked first, as it comes; a head that
//! fails never reaches hyper. In its place hyper reads a stand-in request, and the
//! gateway answers that one with the status and the words saying what was wrong, like
//! any other answer (trans id, access log), then closes the connection.
//!
//! To find where the next head starts, bodies are followed by their framing (a length,
//! or chunks); HTTP/2 connections are passed through untouched.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::request::Refusal;

/// Header lines a request may carry: Swift's 90 metadata items and the usual others.
pub(super) const MAX_HEADERS: usize = 256;
/// Largest request head; single headers are limited further by the app.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Heads up to this length are parsed whenever more of them arrives.
const QUICK_HEAD: usize = 1024;
/// Bytes of empty lines taken before a request line.
const MAX_EMPTY_BEFORE_HEAD: usize = 64;
/// The longest body hyper reads by its length (its two larger values mean other
/// framings).
const MAX_BODY_LENGTH: u64 = u64::MAX - 2;
/// Longest chunk-size or trailer line followed.
const MAX_LINE: usize = 4096;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What hyper reads in place of a refused head.
pub(crate) const STAND_IN: &[u8] =
    b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

fn refusal(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> Refusal {
    refusal(StatusCode::BAD_REQUEST, message)
}

/// A connection's refused head, handed to the request that stands in for it.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    /// Requests hyper has handed over on this connection.
    served: AtomicU64,
    pending: AtomicBool,
    /// The refusal, and the number of the request that stands in for it.
    slot: Mutex<Option<(u64, Refusal)>>,
}

impl Refusals {
    /// For each request hyper hands over, in order: the refusal it stands in for.
    pub(super) fn next(&self) -> Option<Refusal> {
        let n = self.served.fetch_add(1, Ordering::Relaxed);
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match &*slot {
            Some((at, _)) if *at == n => slot.take().map(|(_, r)| r),
            _ => None,
        }
    }

    fn put(&self, at: u64, r: Refusal) {
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, r));
        self.pending.store(true, Ordering::Release);
    }
}

/// Where the byte stream stands.
#[derive(Debug)]
enum Framing {
    /// The first bytes of a connection: HTTP/1.1, or HTTP/2's preface.
    Start,
    Head,
    /// A body of this many more bytes.
    Body(u64),
    Chunked(Chunk),
    /// Bytes hyper alone reads: HTTP/2, or after framing hyper will refuse itself.
    Through,
}

/// Where a chunked body stands.
#[derive(Debug)]
enum Chunk {
    /// A chunk-size line, read so far.
    Size(Vec<u8>),
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd(Vec<u8>),
    /// A trailer line after the last chunk, read so far.
    Trailer(Vec<u8>),
}

/// A line of a chunked body, taken from `bytes` up to its LF: `Ok(Some(line))` when it
/// ended, `Err` past `MAX_LINE`.
fn take_line(line: &mut Vec<u8>, bytes: &[u8], used: &mut usize) -> Result<Option<Vec<u8>>, ()> {
    let rest = &bytes[*used..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&rest[..i]);
            *used += i + 1;
            if line.len() > MAX_LINE {
                return Err(());
            }
            let mut done = std::mem::take(line);
            if done.last() == Some(&b'\r') {
                done.pop();
            }
            Ok(Some(done))
        }
        None => {
            line.extend_from_slice(rest);
            *used = bytes.len();
            if line.len() > MAX_LINE {
                return Err(());
            }
            Ok(None)
        }
    }
}

impl Chunk {
    /// Follows `bytes` of a chunked body: how many belong to it, and whether it ended.
    /// `None` when the framing is broken (hyper refuses the body itself).
    fn advance(&mut self, bytes: &[u8]) -> Option<(usize, bool)> {
        let mut used = 0;
        while used < bytes.len() {
            match self {
                Chunk::Data(n) => {
                    let left = bytes.len() - used;
                    let k = usize::try_from(*n).map_or(left, |n| n.min(left));
                    used += k;
                    *n -= k as u64;
                    if *n == 0 {
                        *self = Chunk::DataEnd(Vec::new());
                    }
                }
                Chunk::Size(line) => {
                    let Some(line) = take_line(line, bytes, &mut used).ok()? else {
                        continue;
                    };
                    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                    let digits = std::str::from_utf8(digits)
                        .ok()?
                        .trim_end_matches([' ', '\t']);
                    let size = u64::from_str_radix(digits, 16).ok()?;
                    *self = if size == 0 {
                        Chunk::Trailer(Vec::new())
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::DataEnd(line) => {
                    let Some(line) = take_line(line, bytes, &mut used).ok()? else {
                        continue;
                    };
                    if !line.is_empty() {
                        return None;
                    }
                    *self = Chunk::Size(Vec::new());
                }
                Chunk::Trailer(line) => {
                    let Some(line) = take_line(line, bytes, &mut used).ok()? else {
                        continue;
                    };
                    if line.is_empty() {
                        return Some((used, true));
                    }
                }
            }
        }
        Some((used, false))
    }
}

/// What the bytes at the start of a head hold.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// Not all of it yet.
    Partial,
    /// A head of this many bytes that may go on, and what follows it.
    Complete(usize, Body),
    Refused(Refusal),
}

#[derive(Debug, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// Checks the head at the start of `bytes`.
fn check_head(bytes: &[u8]) -> Head {
    // empty lines before a request line are ignored (RFC 9112, 2.2), a few of them: a
    // head of nothing else would be parsed anew for each line that arrives
    let empty = bytes
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if empty > MAX_EMPTY_BEFORE_HEAD {
        return Head::Refused(bad(format!(
            "the request has more than {MAX_EMPTY_BEFORE_HEAD} bytes of empty lines before its \
             request line"
        )));
    }
    // left uninitialized: httparse fills what it parses (8 KiB to zero per head otherwise)
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Partial) => return Head::Partial,
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => {
            return Head::Refused(refusal(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("the request has more than {MAX_HEADERS} header lines"),
            ));
        }
        Err(e) => return Head::Refused(diagnose(bytes, e)),
    };
    match framing(&req) {
        Ok(body) => Head::Complete(len, body),
        Err(r) => Head::Refused(r),
    }
}

/// The first line of a head, after the empty lines a client may send before it.
fn request_line(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let line = &rest[..end];
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The words for a head httparse refused: what is wrong with which part.
fn diagnose(bytes: &[u8], e: httparse::Error) -> Refusal {
    let line = request_line(bytes);
    if let Some(b) = line.iter().find(|&&b| b < b' ' || b == b'\x7f') {
        return bad(format!(
            "the request line holds the control byte 0x{b:02x}; percent-encode it (RFC 3986)"
        ));
    }
    if std::str::from_utf8(line).is_err() {
        return bad(
            "the request line is not UTF-8: send names percent-encoded (RFC 3986), as UTF-8",
        );
    }
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return bad(format!(
            "the request line {:?} is not METHOD SP TARGET SP HTTP-VERSION with single \
             spaces; a space in the target is sent as %20",
            String::from_utf8_lossy(line)
        ));
    }
    let (method, version) = (parts[0], parts[2]);
    if !is_token(method) {
        return bad(format!(
            "the method {:?} is not a token",
            String::from_utf8_lossy(method)
        ));
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        let text = String::from_utf8_lossy(version);
        let versioned = version.len() == 8
            && version.starts_with(b"HTTP/")
            && version[5].is_ascii_digit()
            && version[6] == b'.'
            && version[7].is_ascii_digit();
        return if versioned {
            bad(format!(
                "{text} is not served here: HTTP/1.1, HTTP/1.0, and HTTP/2 by prior \
                 knowledge or TLS ALPN"
            ))
        } else {
            bad(format!(
                "the HTTP version {text:?} is not HTTP/1.1 or HTTP/1.0"
            ))
        };
    }
    let head_lines = bytes
        .split(|&b| b == b'\n')
        .skip_while(|l| l.is_empty() || *l == b"\r");
    for raw in head_lines.skip(1) {
        let l = raw.strip_suffix(b"\r").unwrap_or(raw);
        if l.is_empty() {
            break;
        }
        if l.contains(&b'\r') {
            return bad("a line of the request head holds a CR that does not end it");
        }
        if l[0] == b' ' || l[0] == b'\t' {
            return bad(
                "a header line starts with a space or tab: line folding is obsolete \
                 (RFC 9112); send each header on one line",
            );
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return bad(format!(
                "the header line {:?} has no colon",
                String::from_utf8_lossy(l)
            ));
        };
        if !is_token(&l[..colon]) {
            return bad(format!(
                "the header name {:?} is not a token (no spaces, not even before the colon)",
                String::from_utf8_lossy(&l[..colon])
            ));
        }
        if l[colon + 1..]
            .iter()
            .any(|&b| (b < b' ' && b != b'\t') || b == b'\x7f')
        {
            return bad(format!(
                "the value of header {} holds a control character",
                String::from_utf8_lossy(&l[..colon])
            ));
        }
    }
    bad(format!("the request head is not HTTP/1.1 (RFC 9112): {e}"))
}

/// Checks what httparse does not, as RFC 9112 asks, and finds how the body is framed.
fn framing(req: &httparse::Request<'_, '_>) -> Result<Body, Refusal> {
    // raw UTF-8 in a target is taken, as eventlet (Swift) and hyper take it; a target of
    // the usual characters needs no parse to know hyper takes it
    let target = req.path.unwrap_or_default();
    let usual = target.starts_with('/') && target.bytes().all(usual_in_target);
    if !usual && let Err(e) = http::Uri::try_from(target) {
        return Err(bad(format!(
            "the request target {target:?} is not a valid URI: {e}"
        )));
    }
    let http11 = req.version == Some(1);
    // one pass over the headers, for the three that decide how a request is read
    let (mut hosts, mut host) = (0, &b""[..]);
    let mut length: Option<u64> = None;
    let (mut codings, mut chunked, mut other_coding) = (0, 0, false);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host = h.value;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // a length given on more than one line must be the same each time (RFC 9110,
            // 8.6); a list on one line is not taken
            let text = std::str::from_utf8(h.value).unwrap_or_default().trim();
            let n = text
                .parse::<u64>()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    bad(format!(
                        "Content-Length {:?} is not a number of bytes",
                        String::from_utf8_lossy(h.value)
                    ))
                })?;
            if n > MAX_BODY_LENGTH {
                return Err(refusal(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Content-Length {n} is more than any request body may be"),
                ));
            }
            if length.is_some_and(|l| l != n) {
                return Err(bad("the request has Content-Length values that differ"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            for c in h.value.split(|&b| b == b',') {
                let c = c.trim_ascii();
                if c.is_empty() {
                    return Err(bad("Transfer-Encoding names an empty coding"));
                }
                codings += 1;
                if c.eq_ignore_ascii_case(b"chunked") {
                    chunked += 1;
                } else {
                    other_coding = true;
                }
            }
        }
    }
    match hosts {
        0 if http11 => return Err(bad("an HTTP/1.1 request needs a Host header")),
        0 => {}
        1 => {
            let host = std::str::from_utf8(host).unwrap_or("\u{fffd}").trim();
            if !host.is_empty() && !crate::request::valid_host(host) {
                return Err(bad(format!(
                    "the Host header {host:?} is not a host name or address with an \
                     optional port"
                )));
            }
        }
        _ => return Err(bad("the request has more than one Host header")),
    }
    if codings > 0 {
        if length.is_some() {
            return Err(bad(
                "the request has both Content-Length and Transfer-Encoding: its length \
                 is ambiguous",
            ));
        }
        if !http11 {
            return Err(bad("Transfer-Encoding needs HTTP/1.1"));
        }
        if chunked > 1 {
            return Err(bad("Transfer-Encoding applies chunked more than once"));
        }
        if other_coding || chunked == 0 {
            let named: Vec<String> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect();
            // chunked not last leaves the length unknown: 400 (RFC 9112 6.3); a coding
            // besides chunked is bad input here too, not a 5xx
            return Err(bad(format!(
                "Transfer-Encoding {:?}: only chunked is supported",
                named.join(", ")
            )));
        }
        return Ok(Body::Chunked);
    }
    Ok(match length {
        None | Some(0) => Body::None,
        Some(n) => Body::Length(n),
    })
}

/// Bytes a request target of names, a query and percent-encodings is made of: every
/// URI parser takes them in an origin-form target.
fn usual_in_target(b: u8) -> bool {
    const USUAL: [bool; 256] = {
        let mut t = [false; 256];
        let mut b: u8 = 0;
        loop {
            t[b as usize] = b.is_ascii_alphanumeric();
            if b == u8::MAX {
                break;
            }
            b += 1;
        }
        let extra = b"-._~!$&'()*+,;=:@/%?";
        let mut j = 0;
        while j < extra.len() {
            t[extra[j] as usize] = true;
            j += 1;
        }
        t
    };
    USUAL[b as usize]
}

/// A connection's reading side with its HTTP/1.1 heads checked (see the module).
pub(super) struct Checked<I> {
    inner: I,
    refusals: std::sync::Arc<Refusals>,
    /// Bytes read and not yet handed on; `held[..ready]` may go.
    held: Vec<u8>,
    ready: usize,
    framing: Framing,
    /// Heads handed on so far.
    heads: u64,
    /// How much of the head being read has been looked at.
    seen: usize,
    /// A stand-in was handed on: nothing more is read.
    ended: bool,
    /// Where bytes are read while a head is incomplete.
    scratch: Vec<u8>,
    /// How long a head may take to arrive once it has begun, and when that is over.
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Checked<I> {
    /// `timeout`: how long a head may take from its first byte (hyper's own header
    /// timeout only runs once it sees bytes, which it does not while a head is held).
    pub(super) fn new(
        inner: I,
        refusals: std::sync::Arc<Refusals>,
        timeout: Duration,
    ) -> Checked<I> {
        Checked {
            inner,
            refusals,
            held: Vec::new(),
            ready: 0,
            framing: Framing::Start,
            heads: 0,
            seen: 0,
            ended: false,
            scratch: Vec::new(),
            timeout,
            deadline: None,
        }
    }

    /// How many of `bytes` (the stream from where it stands) may go on now; a refused
    /// head is replaced by the stand-in, in `held`.
    fn release(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            let rest = &bytes[used..];
            match &mut self.framing {
                Framing::Through => return bytes.len(),
                Framing::Start => {
                    let n = rest.len().min(H2_PREFACE.len());
                    if rest[..n] != H2_PREFACE[..n] {
                        self.framing = Framing::Head;
                    } else if n == H2_PREFACE.len() {
                        self.framing = Framing::Through;
                    } else {
                        return used;
                    }
                }
                Framing::Head => match self.check_partial(rest) {
                    Head::Partial => {
                        if rest.len() > MAX_HEAD_BYTES {
                            self.refuse(refusal(
                                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                                format!(
                                    "the request head is larger than {} KiB",
                                    MAX_HEAD_BYTES / 1024
                                ),
                            ));
                        }
                        return used;
                    }
                    Head::Refused(r) => {
                        self.refuse(r);
                        return used;
                    }
                    Head::Complete(len, body) => {
                        used += len;
                        self.heads += 1;
                        self.seen = 0;
                        self.framing = match body {
                            Body::None => Framing::Head,
                            Body::Length(n) => Framing::Body(n),
                            Body::Chunked => Framing::Chunked(Chunk::Size(Vec::new())),
                        };
                    }
                },
                Framing::Body(n) => {
                    let k = usize::try_from(*n).map_or(rest.len(), |n| n.min(rest.len()));
                    used += k;
                    *n -= k as u64;
                    if *n == 0 {
                        self.framing = Framing::Head;
                    }
                }
                Framing::Chunked(chunk) => match chunk.advance(rest) {
                    Some((k, ended)) => {
                        used += k;
                        if ended {
                            self.framing = Framing::Head;
                        }
                    }
                    None => self.framing = Framing::Through,
                },
            }
        }
        used
    }

    /// [`check_head`] on the head that `rest` begins with, parsed again only when it is
    /// short or a line of it has ended since it was last parsed: parsing a long head
    /// anew for each piece it arrives in would cost the square of its length.
    fn check_partial(&mut self, rest: &[u8]) -> Head {
        let parse = rest.len() <= QUICK_HEAD
            || rest
                .get(self.seen..)
                .is_some_and(|new| new.contains(&b'\n'));
        self.seen = rest.len();
        if !parse {
            return Head::Partial;
        }
        check_head(rest)
    }

    /// Puts the stand-in for a refused head after what may go on already.
    fn refuse(&mut self, r: Refusal) {
        self.refusals.put(self.heads, r);
        self.heads += 1;
        self.ended = true;
    }

    /// Hands on what may go; true when something did.
    fn hand_on(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        if self.ready == 0 {
            return false;
        }
        let n = buf.remaining().min(self.ready);
        buf.put_slice(&self.held[..n]);
        self.held.drain(..n);
        self.ready -= n;
        if self.held.is_empty() {
            // an idle connection keeps no buffer from a large head
            self.held = Vec::new();
            self.scratch = Vec::new();
        }
        true
    }

    /// Keeps `bytes`, of which the first `k` may go on: the rest waits for more, or, once
    /// a head was refused, gives way to the stand-in.
    fn keep(&mut self, mut bytes: Vec<u8>, k: usize) {
        if self.ended {
            bytes.truncate(k);
            bytes.extend_from_slice(STAND_IN);
            self.ready = bytes.len();
        } else {
            self.ready = k;
        }
        self.held = bytes;
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Checked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.hand_on(buf) || this.ended {
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // the usual case: read where hyper wants the bytes, and take back only
                // what may not go on yet
                let before = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                let got = buf.filled().len() - before;
                if got == 0 {
                    return Poll::Ready(Ok(()));
                }
                let k = this.release(&buf.filled()[before..]);
                if k == got && !this.ended {
                    return Poll::Ready(Ok(()));
                }
                let rest = buf.filled()[before + k..].to_vec();
                buf.set_filled(before + k);
                this.keep(rest, 0);
                if k > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // a head arriving in pieces: gathered until it can be checked whole, for as
            // long as the header timeout allows
            if this.scratch.is_empty() {
                this.scratch = vec![0; 16 * 1024];
            }
            let timeout = this.timeout;
            let deadline = this
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
            let mut more = ReadBuf::new(&mut this.scratch);
            if Pin::new(&mut this.inner)
                .poll_read(cx, &mut more)?
                .is_pending()
            {
                ready!(deadline.as_mut().poll(cx));
                this.held.clear();
                this.refuse(refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("the request head did not arrive within {timeout:?}"),
                ));
                this.keep(Vec::new(), 0);
                continue;
            }
            let got = more.filled().len();
            if got == 0 {
                // the client left in the middle of a head: hyper sees a clean end
                this.held.clear();
                return Poll::Ready(Ok(()));
            }
            let mut pending = std::mem::take(&mut this.held);
            pending.extend_from_slice(&this.scratch[..got]);
            let k = this.release(&pending);
            if k > 0 {
                this.deadline = None;
            }
            this.keep(pending, k);
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Checked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A peer that sends its bytes in the pieces given.
struct Pieces(std::collections::VecDeque<Vec<u8>>);

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(mut p) = self.0.pop_front() {
            let n = p.len().min(buf.remaining());
            buf.put_slice(&p[..n]);
            if n < p.len() {
                self.0.push_front(p.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// What hyper reads from `stream` sent in pieces of `size` bytes (at least 1), and the
/// refusal, if a head was refused.
pub(crate) async fn read_checked(stream: &[u8], size: usize) -> (Vec<u8>, Option<Refusal>) {
    let pieces = stream.chunks(size.max(1)).map(<[u8]>::to_vec).collect();
    let refusals = std::sync::Arc::new(Refusals::default());
    let mut checked = Checked::new(Pieces(pieces), refusals.clone(), Duration::from_secs(5));
    let mut out = Vec::new();
    // the pieces never fail, and a head's time is not up before they are all read
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut checked, &mut out).await;
    // hyper hands over each head in turn; a head has a line feed at least
    let heads = stream.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut refusal = None;
    for _ in 0..heads {
        refusal = refusal.or_else(|| refusals.next());
        if refusal.is_some() {
            break;
        }
    }
    (out, refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &[u8]) -> u16 {
        match check_head(head) {
            Head::Refused(r) => r.status.as_u16(),
            Head::Complete(..) => 200,
            Head::Partial => 0,
        }
    }

    fn message(head: &[u8]) -> String {
        match check_head(head) {
            Head::Refused(r) => r.message,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn heads_rfc_9112_refuses() {
        let rows: &[(&[u8], u16, &str)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
            (b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
            (b"\n\n\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
            (&[b'\n'; 65], 400, "empty lines"),
            (b"GET / HTTP/1.0\r\n\r\n", 200, ""),
            (b"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
            (b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 200, ""),
            (b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200, ""),
            (b"GET / HTTP/1.1\r\n\r\n", 400, "needs a Host"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "Host header"),
            (b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "Host header"),
            (b"GET / HTTP/1.1\r\nHost: a:ab\r\n\r\n", 400, "Host header"),
            (b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400, "Host header"),
            (b"GET /info asdf HTTP/1.1\r\nHost: a\r\n\r\n", 400, "single spaces"),
            (b"GET /a\xffb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not UTF-8"),
            (b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""),
            (b"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "control byte 0x01"),
            (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, "HTTP/1.2"),
            (b"GET / HTTX\r\nHost: a\r\n\r\n", 400, "version"),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not a token"),
            (b"HELLO\r\n\r\n", 400, "METHOD SP TARGET"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX y: z\r\n\r\n", 400, "not a token"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-Y : z\r\n\r\n", 400, "not a token"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "no colon"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "folding"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400, "control character"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 200, ""),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400, "not a number"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0,0\r\n\r\n", 400, "not a number"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400, "differ"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551613\r\n\r\n", 200, ""),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551614\r\n\r\n", 413, "more than any"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", 400, "not a number"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", 400, "not a number"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", 400, "not a number"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400, "not a number"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400, "more than once"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "more than once"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "only chunked"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "only chunked"),
            (b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.1"),
            (b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", 200, ""),
        ];
        for (head, want, needle) in rows {
            let text = String::from_utf8_lossy(head);
            assert_eq!(status(head), *want, "{text:?}");
            if *want != 200 {
                let m = message(head);
                assert!(m.contains(needle), "{text:?}: {m:?} should say {needle:?}");
            }
        }
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\n"), 0);
        let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(status(&many), 431);
    }

    #[tokio::test]
    async fn good_streams_pass_whole_in_any_pieces() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"PUT /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /");
        stream
            .extend_from_slice(b"PUT /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        stream.extend_from_slice(b"4;ext=1\r\nGET \r\n0\r\nX-Trailer: 1\r\n\r\n");
        stream.extend_from_slice(b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n");
        for size in [1, 2, 3, 7, 64, 4096] {
            let (out, refusal) = read_checked(&stream, size).await;
            assert_eq!(out, stream, "pieces of {size}");
            assert_eq!(refusal, None);
        }
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00garbage".to_vec();
        for size in [1, 5, 100] {
            assert_eq!(read_checked(&h2, size).await, (h2.clone(), None));
        }
    }

    #[tokio::test]
    async fn a_refused_head_gives_way_to_the_stand_in() {
        let good = b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
        let mut stream = good.clone();
        stream.extend_from_slice(b"GET /b HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nmore bytes");
        for size in [1, 10, 4096] {
            let (out, refusal) = read_checked(&stream, size).await;
            let mut want = good.clone();
            want.extend_from_slice(STAND_IN);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want)
            );
            let r = refusal.expect("refused");
            assert_eq!(r.status, StatusCode::BAD_REQUEST);
            assert!(r.message.contains("more than one Host"));
        }
        // the refusal goes with the second request, not the first
        let refusals = Refusals::default();
        refusals.put(1, bad("x"));
        assert_eq!(refusals.next(), None);
        assert!(refusals.next().is_some());
        // a head that never ends is refused at the limit
        let mut endless = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        endless.resize(MAX_HEAD_BYTES + 100, b'x');
        let (out, refusal) = read_checked(&endless, 1000).await;
        assert_eq!(out, STAND_IN);
        assert_eq!(refusal.unwrap().status.as_u16(), 431);
        // a body hyper will refuse is passed on for it to refuse
        let broken =
            b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
        assert_eq!(read_checked(&broken, 3).await, (broken.clone(), None));
        // a client gone in the middle of a head: nothing of it reaches hyper
        assert_eq!(
            read_checked(b"GET / HTTP/1.1\r\nHo", 4).await,
            (Vec::new(), None)
        );
    }
    #[tokio::test]
    async fn a_long_head_in_small_pieces_is_judged_as_it_would_be_whole() {
        // a long header line arrives a byte at a time: checked once it has ended
        let mut long = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".to_vec();
        long.resize(30 * 1024, b'v');
        long.extend_from_slice(b"\r\n\r\n");
        for size in [1, 7, 1500] {
            assert_eq!(
                read_checked(&long, size).await,
                (long.clone(), None),
                "{size}"
            );
        }
        // a bad byte inside it is refused all the same, once its line ends
        let mut bad_byte = long.clone();
        bad_byte[20 * 1024] = 0;
        for size in [1, 7, 1500] {
            let (out, refusal) = read_checked(&bad_byte, size).await;
            assert_eq!(out, STAND_IN, "{size}");
            assert_eq!(refusal.map(|r| r.status.as_u16()), Some(400), "{size}");
        }
        // empty lines before a request line: a few are taken, more are refused
        let mut few = b"\r\n".repeat(32);
        few.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(read_checked(&few, 1).await, (few.clone(), None));
        let many = b"\n".repeat(20_000);
        let (out, refusal) = read_checked(&many, 1).await;
        assert_eq!(out, STAND_IN);
        let refusal = refusal.expect("refused");
        assert_eq!(refusal.status.as_u16(), 400);
        assert!(
            refusal.message.contains("empty lines"),
            "{}",
            refusal.message
        );
    }
}
