//! Request guards: DNS-rebinding protection (the `Host` header), cross-origin
//! refusal (the `Origin` header) and the bearer token required off loopback.
//! Pure decisions over header values, so they are tested without a server.

use std::net::IpAddr;

/// Name of the cookie a `?token=` login sets.
pub const TOKEN_COOKIE: &str = "procnet_token";

/// What the guard decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Allowed, and the response should set the token cookie.
    AllowAndSetCookie,
    /// 421: the Host is not this server's (DNS rebinding).
    BadHost,
    /// 403: a cross-origin request to the API.
    CrossOrigin,
    /// 401: a token is needed and none (or a wrong one) was given.
    Unauthorized,
}

/// The headers and query the guard looks at.
#[derive(Debug, Default, Clone)]
pub struct RequestFacts<'a> {
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub query_token: Option<&'a str>,
}

/// The server's guard settings.
#[derive(Debug, Clone)]
pub struct Guard {
    pub bind: IpAddr,
    pub token: Option<String>,
}

/// Splits `host[:port]` / `[v6]:port` into the host part, lower-cased.
pub fn host_part(host: &str) -> String {
    let h = host.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if h.matches(':').count() > 1 {
        h // a bare IPv6 address
    } else {
        h.split(':').next().unwrap_or("")
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn is_loopback_name(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

impl Guard {
    /// True when the server listens only on loopback.
    pub fn loopback_only(&self) -> bool {
        self.bind.is_loopback()
    }

    fn host_allowed(&self, host: &str) -> bool {
        if is_loopback_name(host) {
            return true;
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if ip == self.bind {
                return true;
            }
        }
        // Off loopback, names we cannot know (the machine's DNS names) are
        // allowed: the token, not the Host, protects the server there.
        !self.loopback_only()
    }

    /// Decides one request.
    pub fn check(&self, req: &RequestFacts<'_>) -> Verdict {
        let Some(host) = req.host.map(host_part) else {
            return Verdict::BadHost;
        };
        if !self.host_allowed(&host) {
            return Verdict::BadHost;
        }
        let guarded_path = req.path.starts_with("/api/") || req.path == "/metrics";
        if guarded_path {
            if let Some(origin) = req.origin {
                if !same_origin(origin, req.host.unwrap_or("")) {
                    return Verdict::CrossOrigin;
                }
            }
        }
        let Some(token) = self.token.as_deref() else {
            return Verdict::Allow;
        };
        if req.path == "/healthz" {
            return Verdict::Allow;
        }
        let bearer = req
            .authorization
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim);
        if bearer.is_some_and(|b| constant_time_eq(b, token)) {
            return Verdict::Allow;
        }
        if req
            .cookie
            .and_then(|c| cookie_value(c, TOKEN_COOKIE))
            .is_some_and(|c| constant_time_eq(c, token))
        {
            return Verdict::Allow;
        }
        if req.query_token.is_some_and(|q| constant_time_eq(q, token)) {
            return Verdict::AllowAndSetCookie;
        }
        Verdict::Unauthorized
    }
}

/// True when `origin` (`scheme://host[:port]`) names the same host and port
/// as the request's `Host` header.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let norm = |hp: &str| {
        let h = host_part(hp);
        let port = if let Some(rest) = hp.trim().strip_prefix('[') {
            rest.split_once("]:").map(|(_, p)| p.to_string())
        } else if hp.matches(':').count() == 1 {
            hp.split_once(':').map(|(_, p)| p.to_string())
        } else {
            None
        };
        (h, port.unwrap_or_else(|| default_port.to_string()))
    };
    norm(rest.trim_end_matches('/')) == norm(host)
}

/// The `Set-Cookie` value for a token login: HttpOnly, SameSite=Strict.
pub fn token_cookie(token: &str) -> String {
    format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bind: &str, token: Option<&str>) -> Guard {
        Guard {
            bind: bind.parse().unwrap(),
            token: token.map(String::from),
        }
    }

    fn req<'a>(path: &'a str, host: &'a str) -> RequestFacts<'a> {
        RequestFacts {
            path,
            host: Some(host),
            ..RequestFacts::default()
        }
    }

    #[test]
    fn hosts() {
        let g = guard("127.0.0.1", None);
        for ok in [
            "localhost:8765",
            "127.0.0.1:8765",
            "[::1]:8765",
            "LOCALHOST",
            "app.localhost:1",
        ] {
            assert_eq!(g.check(&req("/", ok)), Verdict::Allow, "{ok}");
        }
        for bad in ["evil.example:8765", "192.168.1.4:8765", ""] {
            assert_eq!(g.check(&req("/", bad)), Verdict::BadHost, "{bad}");
        }
        assert_eq!(
            g.check(&RequestFacts {
                path: "/",
                ..Default::default()
            }),
            Verdict::BadHost
        );
    }

    #[test]
    fn origins() {
        let g = guard("127.0.0.1", None);
        let mut r = req("/api/graph", "127.0.0.1:8765");
        r.origin = Some("http://127.0.0.1:8765");
        assert_eq!(g.check(&r), Verdict::Allow);
        r.origin = Some("http://evil.example");
        assert_eq!(g.check(&r), Verdict::CrossOrigin);
        r.origin = Some("http://localhost:8765");
        assert_eq!(
            g.check(&r),
            Verdict::CrossOrigin,
            "another origin, even if loopback"
        );
        r.origin = Some("null");
        assert_eq!(g.check(&r), Verdict::CrossOrigin);
        assert!(same_origin("http://[::1]:8765", "[::1]:8765"));
        assert!(same_origin("http://localhost", "localhost:80"));
    }

    #[test]
    fn tokens() {
        let g = guard("0.0.0.0", Some("s3cret"));
        let mut r = req("/api/graph", "myhost:8765");
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.authorization = Some("Bearer s3cret");
        assert_eq!(g.check(&r), Verdict::Allow);
        r.authorization = Some("Bearer wrong");
        assert_eq!(g.check(&r), Verdict::Unauthorized);
        r.authorization = None;
        r.cookie = Some("a=b; procnet_token=s3cret");
        assert_eq!(g.check(&r), Verdict::Allow);
        r.cookie = None;
        r.query_token = Some("s3cret");
        assert_eq!(g.check(&r), Verdict::AllowAndSetCookie);
        assert_eq!(g.check(&req("/healthz", "myhost")), Verdict::Allow);
    }
}
