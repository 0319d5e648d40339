//! Request guards: DNS-rebinding protection (the `Host` header), cross-origin
//! refusal (the `Origin` header) and the bearer token required off loopback.
//!
//! Two steps, both pure so they are tested (and fuzzed) without a server:
//! [`RequestFacts::from_parts`] reads what the guard needs from the raw
//! request (any bytes, repeated headers included) and [`Guard::check`]
//! decides. Nothing here can panic on what a client sends.
//!
//! `Host` and `Origin` are parsed strictly, as browsers send them: an
//! RFC 3986 authority reduced to `host [":" port]` (no userinfo, an IPv6
//! literal only in brackets, nothing after `]`, a port of digits that fits
//! in 16 bits). Anything looser is how a request smuggles a foreign name
//! past a lenient check (`localhost:8765@evil.example`).

use axum::http::{header, HeaderMap, HeaderName, Uri};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Name of the cookie a `?token=` login sets.
pub const TOKEN_COOKIE: &str = "procnet_token";

/// The query parameter of the one-time login.
const TOKEN_PARAM: &str = "token";

/// The longest DNS name (RFC 1035), so no name check walks megabytes.
const MAX_NAME_LEN: usize = 253;

/// What the guard decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed, and the response should set the token cookie.
    AllowAndSetCookie,
    /// 400: the request is ambiguous (a header given twice); the text says
    /// which and how to fix it.
    BadRequest(&'static str),
    /// 421: the Host is not this server's (DNS rebinding).
    BadHost,
    /// 403: a cross-origin request to the API.
    CrossOrigin,
    /// 401: a token is needed and none (or a wrong one) was given.
    Unauthorized,
}

/// What the guard looks at, read from one request by [`RequestFacts::from_parts`].
///
/// Header values are raw bytes: HTTP allows non-ASCII bytes in a value,
/// and the guard must judge them rather than skip them.
#[derive(Debug, Default, Clone)]
pub struct RequestFacts<'a> {
    pub path: &'a str,
    /// The raw query string (without `?`), kept for the login redirect.
    pub query: &'a str,
    /// The authority of an absolute-form request target
    /// (`GET http://host:port/path`), which names the host the request is for.
    pub target_authority: Option<&'a str>,
    pub host: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub authorization: Option<&'a [u8]>,
    /// Every `Cookie` header (HTTP/2 clients may split them).
    pub cookies: Vec<&'a [u8]>,
    /// The decoded `?token=` value.
    pub query_token: Option<String>,
    /// Why the request is ambiguous, if it is: the first field that occurs
    /// more than once where only one is allowed.
    pub repeated: Option<&'static str>,
}

/// The server's guard settings.
#[derive(Debug, Clone)]
pub struct Guard {
    pub bind: IpAddr,
    pub token: Option<String>,
}

/// Why a `Host` or `Origin` authority was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("empty host")]
    Empty,
    #[error("not printable ASCII")]
    NotAscii,
    #[error("userinfo (`user@`) is not allowed")]
    UserInfo,
    #[error("an IPv6 address must be in brackets: `[::1]:8765`")]
    UnbracketedIpv6,
    #[error("`[` without a closing `]`")]
    UnclosedBracket,
    #[error("text after `]` that is not `:port`")]
    AfterBracket,
    #[error("not an IPv6 address inside `[]`")]
    BadIpv6,
    #[error("the port must be 0-65535, in digits")]
    BadPort,
    #[error("not a host name (letters, digits, `-`, `_`, `.`)")]
    BadName,
}

/// The host part of an authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    Ip(IpAddr),
    /// Lower-cased, without one trailing dot (`LocalHost.` is `localhost`).
    Name(String),
}

/// `host [":" port]`, as a `Host` header or the authority of an `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub host: HostName,
    pub port: Option<u16>,
}

impl Authority {
    /// Parses `host [":" port]` strictly (see the module doc).
    pub fn parse(text: &[u8]) -> Result<Authority, AuthorityError> {
        if text.is_empty() {
            return Err(AuthorityError::Empty);
        }
        if !text.iter().all(|b| b.is_ascii_graphic()) {
            return Err(AuthorityError::NotAscii);
        }
        // Only ASCII from here on, so byte offsets are char boundaries.
        let text = std::str::from_utf8(text).map_err(|_| AuthorityError::NotAscii)?;
        if text.contains('@') {
            return Err(AuthorityError::UserInfo);
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or(AuthorityError::UnclosedBracket)?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or(AuthorityError::AfterBracket)?,
                ),
            };
            // `Ipv6Addr` refuses zone ids (`%25eth0`) and IPvFuture (`v1.x`).
            let ip: Ipv6Addr = inside.parse().map_err(|_| AuthorityError::BadIpv6)?;
            (HostName::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            };
            if port.is_some_and(|p| p.contains(':')) {
                return Err(AuthorityError::UnbracketedIpv6);
            }
            (host_name(host)?, port)
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().map_err(|_| AuthorityError::BadPort)?)
            }
            Some(_) => return Err(AuthorityError::BadPort),
        };
        Ok(Authority { host, port })
    }

    /// The port, 80 when none is given: the server speaks http only.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(80)
    }

    /// True when this names this machine's loopback: `localhost`,
    /// `*.localhost` (RFC 6761), 127.0.0.0/8, `::1`, or an IPv4-mapped
    /// loopback address (`[::ffff:127.0.0.1]`).
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            HostName::Ip(ip) => ip.to_canonical().is_loopback(),
            HostName::Name(n) => n == "localhost" || n.ends_with(".localhost"),
        }
    }

    /// True when both name the same host and port (as an origin does).
    fn same_place(&self, other: &Authority) -> bool {
        self.host == other.host && self.port_or_default() == other.port_or_default()
    }
}

/// An IPv4 address or a DNS-like name (RFC 3986 `IPv4address / reg-name`,
/// the reg-name reduced to what a browser puts in a Host).
fn host_name(host: &str) -> Result<HostName, AuthorityError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(HostName::Ip(IpAddr::V4(ip)));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(if host.is_empty() {
            AuthorityError::Empty
        } else {
            AuthorityError::BadName
        });
    }
    Ok(HostName::Name(name.to_ascii_lowercase()))
}

/// Parses an `Origin` header (RFC 6454: `scheme "://" host [":" port]`,
/// nothing else). Only `http` origins are returned, the only scheme this
/// server speaks; `null`, `https://…` and anything malformed are `None`.
pub fn parse_origin(origin: &[u8]) -> Option<Authority> {
    let split = origin.windows(3).position(|w| w == b"://")?;
    let (scheme, rest) = (&origin[..split], &origin[split + 3..]);
    if !scheme.eq_ignore_ascii_case(b"http") {
        return None;
    }
    Authority::parse(rest).ok()
}

/// True when `origin` is `http://` with the same host and port as the
/// request's `Host` header (default port 80 on both sides).
pub fn same_origin(origin: &[u8], host: &[u8]) -> bool {
    match (parse_origin(origin), Authority::parse(host)) {
        (Some(o), Ok(h)) => o.same_place(&h),
        _ => false,
    }
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every value of the cookie `name` in the `Cookie` headers. A name may
/// occur more than once: cookies ignore ports, so another app on
/// localhost can set its own `procnet_token`.
fn cookie_values<'a>(headers: &'a [&'a [u8]], name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .flat_map(|h| h.split(|&b| b == b';'))
        .filter_map(move |pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (k, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            (k == name.as_bytes()).then_some(v)
        })
}

/// The credentials of `Authorization: Bearer <token>` (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer(authorization: &[u8]) -> Option<&[u8]> {
    let text = authorization.trim_ascii();
    let space = text.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = text.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// The decoded value of `?token=`, with `+` and `%XX` decoded as in a form
/// (invalid UTF-8 becomes U+FFFD, so it never matches a token). `Err` when
/// the parameter is given more than once.
pub fn query_token(query: &str) -> Result<Option<String>, &'static str> {
    let mut tokens = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == TOKEN_PARAM)
        .map(|(_, v)| v.into_owned());
    let first = tokens.next();
    match tokens.next() {
        Some(_) => Err("procnet: `token` is given more than once in the query; give it once: /?token=<token>\n"),
        None => Ok(first),
    }
}

/// The query without its `token` parameter (however it is encoded), the
/// other parameters left exactly as they were; `None` when nothing is left.
pub fn query_without_token(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            form_urlencoded::parse(pair.as_bytes())
                .next()
                .is_none_or(|(k, _)| k != TOKEN_PARAM)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Where a successful `?token=` login on the page sends the browser: the
/// same address without the token, so it leaves the address bar and history.
pub fn login_redirect(path: &str, query: &str) -> String {
    match query_without_token(query) {
        Some(rest) => format!("{path}?{rest}"),
        None => path.to_string(),
    }
}

/// The only value of a header that must occur at most once, or the reason
/// the request is refused.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a [u8]>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().map(|v| v.as_bytes());
    if values.next().is_none() {
        return Ok(first);
    }
    Err(if name == header::HOST {
        "procnet: the request has more than one Host header; send exactly one\n"
    } else if name == header::ORIGIN {
        "procnet: the request has more than one Origin header; send at most one\n"
    } else {
        "procnet: the request has more than one Authorization header; send at most one\n"
    })
}

impl<'a> RequestFacts<'a> {
    /// Reads the facts from a request's target and headers.
    pub fn new(uri: &'a Uri, headers: &'a HeaderMap) -> RequestFacts<'a> {
        RequestFacts::from_parts(
            uri.path(),
            uri.query().unwrap_or(""),
            uri.authority().map(|a| a.as_str()),
            headers,
        )
    }

    /// Reads the facts from the parts of a request. Any input is accepted;
    /// a repeated header or `token` parameter is recorded in `repeated`.
    pub fn from_parts(
        path: &'a str,
        query: &'a str,
        target_authority: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> RequestFacts<'a> {
        let mut repeated = None;
        let mut one = |name: HeaderName| {
            single(headers, &name).unwrap_or_else(|why| {
                repeated.get_or_insert(why);
                None
            })
        };
        let (host, origin, authorization) = (
            one(header::HOST),
            one(header::ORIGIN),
            one(header::AUTHORIZATION),
        );
        let query_token = query_token(query).unwrap_or_else(|why| {
            repeated.get_or_insert(why);
            None
        });
        RequestFacts {
            path,
            query,
            target_authority,
            host,
            origin,
            authorization,
            cookies: headers
                .get_all(header::COOKIE)
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
            query_token,
            repeated,
        }
    }

    /// True for the page itself, where a login redirects.
    pub fn is_page(&self) -> bool {
        self.path == "/" || self.path == "/index.html"
    }

    /// True for the paths a cross-origin page must not read.
    fn is_guarded(&self) -> bool {
        self.path.starts_with("/api/") || self.path == "/metrics"
    }
}

impl Guard {
    /// True when the server listens only on loopback.
    pub fn loopback_only(&self) -> bool {
        self.bind.is_loopback()
    }

    /// True when a request for `host` is meant for this server.
    pub fn host_allowed(&self, host: &Authority) -> bool {
        if host.is_loopback() {
            return true;
        }
        if let HostName::Ip(ip) = host.host {
            if ip.to_canonical() == self.bind.to_canonical() {
                return true;
            }
        }
        // Off loopback, names we cannot know (the machine's DNS names) are
        // allowed: the token, not the Host, protects the server there.
        !self.loopback_only()
    }

    /// Decides one request.
    pub fn check(&self, req: &RequestFacts<'_>) -> Verdict {
        if let Some(why) = req.repeated {
            return Verdict::BadRequest(why);
        }
        let Some(Ok(host)) = req.host.map(Authority::parse) else {
            return Verdict::BadHost;
        };
        if !self.host_allowed(&host) {
            return Verdict::BadHost;
        }
        // An absolute-form target overrides the Host (RFC 9112 §3.2.2), so
        // it must name the same place.
        if let Some(target) = req.target_authority {
            if Authority::parse(target.as_bytes()).as_ref() != Ok(&host) {
                return Verdict::BadHost;
            }
        }
        if req.is_guarded() {
            if let Some(origin) = req.origin {
                if !parse_origin(origin).is_some_and(|o| o.same_place(&host)) {
                    return Verdict::CrossOrigin;
                }
            }
        }
        let Some(token) = self.token.as_deref().map(str::as_bytes) else {
            return Verdict::Allow;
        };
        if req.path == "/healthz" {
            return Verdict::Allow;
        }
        if req
            .authorization
            .and_then(bearer)
            .is_some_and(|b| constant_time_eq(b, token))
        {
            return Verdict::Allow;
        }
        // Every candidate is compared, so the time says nothing about which.
        let cookie_ok = cookie_values(&req.cookies, TOKEN_COOKIE)
            .fold(false, |ok, c| constant_time_eq(c, token) | ok);
        if cookie_ok {
            return Verdict::Allow;
        }
        if req
            .query_token
            .as_deref()
            .is_some_and(|q| constant_time_eq(q.as_bytes(), token))
        {
            return Verdict::AllowAndSetCookie;
        }
        Verdict::Unauthorized
    }
}

/// The `Set-Cookie` value for a token login: HttpOnly, SameSite=Strict.
pub fn token_cookie(token: &str) -> String {
    format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn guard(bind: &str, token: Option<&str>) -> Guard {
        Guard {
            bind: bind.parse().unwrap(),
            token: token.map(String::from),
        }
    }

    fn req<'a>(path: &'a str, host: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            path,
            host: Some(host.as_bytes()),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn hosts() {
        let g = guard("127.0.0.1", None);
        for ok in [
            "localhost:8765",
            "127.0.0.1:8765",
            "127.9.9.9",
            "[::1]:8765",
            "[::ffff:127.0.0.1]:8765",
            "[::ffff:7f00:1]",
            "LOCALHOST",
            "localhost.:80",
            "app.localhost:1",
        ] {
            assert_eq!(g.check(&req("/", ok)), Verdict::Allow, "{ok}");
        }
        for bad in [
            "evil.example:8765",
            "192.168.1.4:8765",
            "",
            "localhost:8765@evil.example",
            "[::1]evil.example",
            "[::1",
            "::1",
            "[::127.0.0.1]",
            "localhost:",
            "localhost:65536",
            "localhost..:80",
        ] {
            assert_eq!(g.check(&req("/", bad)), Verdict::BadHost, "{bad}");
        }
        assert_eq!(
            g.check(&RequestFacts {
                path: "/",
                ..Default::default()
            }),
            Verdict::BadHost
        );
        let g = guard("192.168.1.4", Some("t"));
        let mut r = req("/healthz", "[::ffff:192.168.1.4]:80");
        assert_eq!(g.check(&r), Verdict::Allow, "off loopback, any name");
        r.target_authority = Some("evil.example");
        assert_eq!(g.check(&r), Verdict::BadHost, "target must match Host");
    }

    #[test]
    fn authorities() {
        let a = |s: &str| Authority::parse(s.as_bytes());
        use AuthorityError::*;
        assert_eq!(a("").unwrap_err(), Empty);
        assert_eq!(a(":80").unwrap_err(), Empty);
        assert_eq!(a("a b").unwrap_err(), NotAscii);
        assert_eq!(a("é").unwrap_err(), NotAscii);
        assert_eq!(a("u@localhost").unwrap_err(), UserInfo);
        assert_eq!(a("::1").unwrap_err(), UnbracketedIpv6);
        assert_eq!(a("[::1").unwrap_err(), UnclosedBracket);
        assert_eq!(a("[::1]x").unwrap_err(), AfterBracket);
        assert_eq!(a("[::1]:8]").unwrap_err(), BadPort);
        assert_eq!(a("[fe80::1%25lo]").unwrap_err(), BadIpv6);
        assert_eq!(a("[v1.x]").unwrap_err(), BadIpv6);
        assert_eq!(a("h:+80").unwrap_err(), BadPort);
        assert_eq!(a("h:99999").unwrap_err(), BadPort);
        assert_eq!(a("a%2fb").unwrap_err(), BadName);
        assert_eq!(
            a("[::FFFF:127.0.0.1]:0080").unwrap(),
            Authority {
                host: HostName::Ip("::ffff:7f00:1".parse().unwrap()),
                port: Some(80)
            }
        );
        assert_eq!(
            a("Example.COM.").unwrap().host,
            HostName::Name("example.com".into())
        );
    }

    #[test]
    fn origins() {
        let g = guard("127.0.0.1", None);
        let mut r = req("/api/graph", "127.0.0.1:8765");
        r.origin = Some(b"http://127.0.0.1:8765");
        assert_eq!(g.check(&r), Verdict::Allow);
        for bad in [
            &b"http://evil.example"[..],
            b"http://localhost:8765",
            b"https://127.0.0.1:8765",
            b"http://127.0.0.1:8766",
            b"http://127.0.0.1",
            b"http://127.0.0.1:8765/",
            b"http://u@127.0.0.1:8765",
            b"null",
            b"",
        ] {
            r.origin = Some(bad);
            assert_eq!(
                g.check(&r),
                Verdict::CrossOrigin,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(same_origin(b"http://[::1]:8765", b"[::1]:8765"));
        assert!(same_origin(b"http://localhost", b"localhost:80"));
        assert!(same_origin(b"HTTP://LocalHost:80", b"localhost"));
        assert!(same_origin(
            b"http://[::ffff:7f00:1]:1",
            b"[::ffff:127.0.0.1]:1"
        ));
        assert!(!same_origin(b"https://localhost:443", b"localhost:443"));
    }

    #[test]
    fn tokens() {
        let g = guard("0.0.0.0", Some("s3cret"));
        let mut r = req("/api/graph", "myhost:8765");
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.authorization = Some(b"Bearer s3cret");
        assert_eq!(g.check(&r), Verdict::Allow);
        r.authorization = Some(b"bEaReR   s3cret ");
        assert_eq!(g.check(&r), Verdict::Allow);
        r.authorization = Some(b"Bearer wrong");
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.authorization = Some(b"Basic s3cret");
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.authorization = None;
        r.cookies = vec![b"a=b; procnet_token=s3cret"];
        assert_eq!(g.check(&r), Verdict::Allow);
        r.cookies = vec![b"procnet_token=old", b"x=\xff; procnet_token=s3cret"];
        assert_eq!(g.check(&r), Verdict::Allow);
        r.cookies = vec![b"procnet_token=old"];
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.cookies.clear();
        r.query_token = Some("s3cret".into());
        assert_eq!(g.check(&r), Verdict::AllowAndSetCookie);
        assert_eq!(g.check(&req("/healthz", "myhost")), Verdict::Allow);
    }

    #[test]
    fn repeated_headers_are_refused() {
        let g = guard("127.0.0.1", None);
        let mut h = HeaderMap::new();
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1:1"));
        assert_eq!(
            g.check(&RequestFacts::from_parts("/", "", None, &h)),
            Verdict::Allow
        );
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1:1"));
        let facts = RequestFacts::from_parts("/", "", None, &h);
        assert!(
            matches!(g.check(&facts), Verdict::BadRequest(m) if m.contains("Host")),
            "{facts:?}"
        );
        let mut h = HeaderMap::new();
        h.append(header::HOST, HeaderValue::from_static("127.0.0.1:1"));
        let facts = RequestFacts::from_parts("/", "token=a&b=1&%74oken=b", None, &h);
        assert!(matches!(g.check(&facts), Verdict::BadRequest(m) if m.contains("token")));
    }

    #[test]
    fn query_decoding() {
        assert_eq!(
            query_token("a=1&token=a%20b+c").unwrap().as_deref(),
            Some("a b c")
        );
        assert_eq!(query_token("token=%zz%").unwrap().as_deref(), Some("%zz%"));
        assert_eq!(
            query_token("token=%a\u{e9}").unwrap().as_deref(),
            Some("%a\u{e9}")
        );
        assert_eq!(query_token("%74oken=x").unwrap().as_deref(), Some("x"));
        assert_eq!(query_token("tokens=x").unwrap(), None);
        assert!(query_token("token=1&token=1").is_err());
        assert_eq!(login_redirect("/", "token=x"), "/");
        assert_eq!(login_redirect("/", "a=%2F&%74oken=x&&b"), "/?a=%2F&b");
    }

    /// Any bytes a header value can hold (hyper refuses CR, LF and NUL),
    /// plus values glued from the pieces of real and hostile hosts and
    /// origins, so that allowed values are found too.
    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just("localhost"),
            Just("127.0.0.1"),
            Just("[::1]"),
            Just("[::ffff:127.0.0.1]"),
            Just("::1"),
            Just(":8765"),
            Just(":"),
            Just("@"),
            Just("evil.example"),
            Just("["),
            Just("]"),
            Just("."),
            Just("%25"),
            Just("http://"),
            Just("https://"),
            Just("/"),
            Just("é"),
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            "[a-z0-9\\[\\]:@.%/ -]{0,40}".prop_map(String::into_bytes),
            proptest::collection::vec(piece, 1..6).prop_map(|p| p.concat().into_bytes()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn authority_parse_never_panics_and_is_strict(bytes in header_bytes()) {
            if let Ok(a) = Authority::parse(&bytes) {
                prop_assert!(!bytes.contains(&b'@'));
                prop_assert!(bytes.iter().all(u8::is_ascii_graphic));
                let text = String::from_utf8(bytes.clone()).unwrap();
                if let Some((_, after)) = text.split_once(']') {
                    prop_assert!(after.is_empty() || after[1..].parse::<u16>().is_ok(), "{text}");
                    prop_assert!(text.starts_with('['));
                }
                if let HostName::Name(n) = &a.host {
                    prop_assert!(!n.contains(':') && !n.is_empty());
                }
            }
        }

        #[test]
        fn origin_parse_never_panics(bytes in header_bytes(), host in header_bytes()) {
            let o = parse_origin(&bytes);
            if o.is_some() {
                prop_assert!(bytes[..4].eq_ignore_ascii_case(b"http") && bytes[4..7] == *b"://");
            }
            let _ = same_origin(&bytes, &host);
        }

        #[test]
        fn an_allowed_host_is_plain(host in header_bytes()) {
            let g = guard("127.0.0.1", None);
            let verdict = g.check(&RequestFacts { path: "/", host: Some(&host), ..Default::default() });
            if verdict != Verdict::BadHost {
                prop_assert!(!host.contains(&b'@'));
                let text = String::from_utf8(host.clone()).unwrap();
                let tail = text.rsplit(']').next().unwrap();
                prop_assert!(!text.contains(']') || tail.is_empty() || tail.starts_with(':'));
                prop_assert!(Authority::parse(&host).unwrap().is_loopback());
            }
        }

        #[test]
        fn facts_and_check_never_panic(
            path in any::<String>(),
            query in prop_oneof![any::<String>(), "[a-z%=&+\u{e9}0-9]{0,30}"],
            target in proptest::option::of(any::<String>()),
            headers in proptest::collection::vec((0..5usize, header_bytes()), 0..8),
            token in proptest::option::of("[a-z]{1,8}"),
            bind in prop_oneof![Just("127.0.0.1"), Just("::1"), Just("0.0.0.0"), Just("10.1.2.3")],
        ) {
            let names = [header::HOST, header::ORIGIN, header::AUTHORIZATION, header::COOKIE, header::USER_AGENT];
            let mut map = HeaderMap::new();
            for (i, value) in &headers {
                if let Ok(v) = HeaderValue::from_bytes(value) {
                    map.append(names[*i].clone(), v);
                }
            }
            let facts = RequestFacts::from_parts(&path, &query, target.as_deref(), &map);
            let verdict = guard(bind, token.as_deref()).check(&facts);
            if verdict == Verdict::AllowAndSetCookie && facts.is_page() {
                let target = login_redirect(facts.path, facts.query);
                prop_assert!(query_token(target.split_once('?').map_or("", |(_, q)| q)).unwrap().is_none());
            }
        }

        #[test]
        fn query_token_round_trips(token in any::<String>(), before in "[a-s]{0,5}", after in "[a-s]{0,5}") {
            let enc: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
            let query = format!("{before}=1&token={enc}&{after}=2");
            prop_assert_eq!(query_token(&query).unwrap(), Some(token));
            let rest = query_without_token(&query).unwrap_or_default();
            prop_assert!(!rest.contains("token="));
        }
    }
}
