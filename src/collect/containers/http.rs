//! A minimal HTTP/1.1 client for a local unix socket (the container
//! engine's API): one `GET`, `Connection: close`, a response body framed by
//! `Content-Length`, `Transfer-Encoding: chunked` or the end of the stream.
//!
//! [`parse_response`] is pure and never panics on any input; only [`get`]
//! does I/O.

/// Most bytes of status line and headers accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most body bytes accepted (a `/containers/json` for thousands of
/// containers is a few MiB).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

/// Why a response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed status line `{0}`")]
    StatusLine(String),
    #[error("malformed header line `{0}`")]
    Header(String),
    #[error("response head is larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("response body is larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    #[error("invalid Content-Length `{0}`")]
    ContentLength(String),
    #[error("unsupported Transfer-Encoding `{0}`")]
    TransferEncoding(String),
    #[error("malformed chunk: {0}")]
    Chunk(&'static str),
    #[error("the connection closed before the response was complete")]
    Truncated,
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits off one line ending in `\n` (a `\r` before it is dropped).
fn take_line(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, &buf[end + 1..]))
}

/// Where the head ends: after the first empty line (`\r\n\r\n` or `\n\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned()
}

/// Parses what has been read so far. `Ok(None)`: more bytes are needed.
/// `eof`: the peer closed the connection, so nothing more will come (a
/// body with neither length nor chunking ends here; anything incomplete is
/// [`HttpError::Truncated`]).
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, HttpError> {
    let Some(head_len) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        return if eof {
            Err(HttpError::Truncated)
        } else {
            Ok(None)
        };
    };
    if head_len > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let (status_line, mut rest) = take_line(&buf[..head_len]).ok_or(HttpError::Truncated)?;
    let status = parse_status_line(status_line)?;
    let mut headers = Vec::new();
    while let Some((line, next)) = take_line(rest) {
        rest = next;
        if line.is_empty() {
            break;
        }
        let text = std::str::from_utf8(line).map_err(|_| HttpError::Header(lossy(line)))?;
        let (name, value) = text
            .split_once(':')
            .filter(|(n, _)| !n.is_empty() && !n.contains(char::is_whitespace))
            .ok_or_else(|| HttpError::Header(lossy(line)))?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let body = &buf[head_len..];
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some(response));
    }
    if let Some(te) = response.header("transfer-encoding") {
        if !te.eq_ignore_ascii_case("chunked") {
            return Err(HttpError::TransferEncoding(te.to_string()));
        }
        return match parse_chunked(body)? {
            Some(b) => {
                response.body = b;
                Ok(Some(response))
            }
            None if eof => Err(HttpError::Truncated),
            None => Ok(None),
        };
    }
    if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::ContentLength(len.to_string()))?;
        if len > MAX_BODY {
            return Err(HttpError::BodyTooLarge);
        }
        return match body.get(..len) {
            Some(b) => {
                response.body = b.to_vec();
                Ok(Some(response))
            }
            None if eof => Err(HttpError::Truncated),
            None => Ok(None),
        };
    }
    // Neither: the body runs to the end of the stream.
    if body.len() > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    if !eof {
        return Ok(None);
    }
    response.body = body.to_vec();
    Ok(Some(response))
}

fn parse_status_line(line: &[u8]) -> Result<u16, HttpError> {
    let bad = || HttpError::StatusLine(lossy(line));
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let mut parts = text.splitn(3, ' ');
    let version = parts.next().ok_or_else(bad)?;
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let code = parts.next().ok_or_else(bad)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    code.parse().map_err(|_| bad())
}

/// Decodes a chunked body; `Ok(None)` when it is not complete yet.
fn parse_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    loop {
        let Some((line, rest)) = take_line(buf) else {
            if buf.len() > 1024 {
                return Err(HttpError::Chunk("chunk size line too long"));
            }
            return Ok(None);
        };
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 16)
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(HttpError::Chunk("invalid chunk size"))?;
        if size == 0 {
            // Trailers, then an empty line.
            let mut rest = rest;
            loop {
                let Some((line, next)) = take_line(rest) else {
                    return Ok(None);
                };
                if line.is_empty() {
                    return Ok(Some(body));
                }
                rest = next;
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError::BodyTooLarge);
        }
        let Some(data) = rest.get(..size) else {
            return Ok(None);
        };
        let after = &rest[size..];
        let after = if after.starts_with(b"\r\n") {
            &after[2..]
        } else if after.starts_with(b"\n") {
            &after[1..]
        } else if after.is_empty() || after == b"\r" {
            return Ok(None);
        } else {
            return Err(HttpError::Chunk("chunk data not followed by CRLF"));
        };
        body.extend_from_slice(data);
        buf = after;
    }
}

/// The bytes of a `GET path` request for the engine's socket.
pub fn request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: procnet/{}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// Why a `GET` over the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("no complete answer within {0} ms")]
    Timeout(u128),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad HTTP response: {0}")]
    Http(#[from] HttpError),
}

/// `GET path` over the unix socket at `socket`, all within `timeout`.
#[cfg(unix)]
pub fn get(
    socket: &std::path::Path,
    path: &str,
    timeout: std::time::Duration,
) -> Result<Response, GetError> {
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    let deadline = Instant::now() + timeout;
    let timed_out = || GetError::Timeout(timeout.as_millis());
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    };
    let mut stream = UnixStream::connect(socket).map_err(GetError::Connect)?;
    stream.set_write_timeout(Some(remaining().ok_or_else(timed_out)?))?;
    stream
        .write_all(&request(path))
        .map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(),
            _ => GetError::Io(e),
        })?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream.set_read_timeout(Some(remaining().ok_or_else(timed_out)?))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(e) => return Err(GetError::Io(e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(response) = parse_response(&buf, n == 0)? {
            return Ok(response);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn done(raw: &[u8]) -> Response {
        parse_response(raw, false).unwrap().unwrap()
    }

    #[test]
    fn content_length_body() {
        let r = done(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.body, b"[]");
        // Not all there yet.
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[]";
        assert_eq!(parse_response(partial, false), Ok(None));
        assert_eq!(parse_response(partial, true), Err(HttpError::Truncated));
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n[{\"a\r\n3\r\n\":1\r\n2\r\n}]\r\n0\r\nX-Trailer: 1\r\n\r\n";
        assert_eq!(done(raw).body, b"[{\"a\":1}]");
        for cut in 0..raw.len() {
            assert_eq!(parse_response(&raw[..cut], false), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn body_to_end_of_stream() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(raw, false), Ok(None));
        assert_eq!(parse_response(raw, true).unwrap().unwrap().body, b"hello");
    }

    #[test]
    fn no_body_statuses() {
        let r = done(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (204, 0));
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(matches!(
            parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", false),
            Err(HttpError::StatusLine(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 2000 OK\r\n\r\n", false),
            Err(HttpError::StatusLine(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false),
            Err(HttpError::Header(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false),
            Err(HttpError::ContentLength(_))
        ));
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false),
            Err(HttpError::TransferEncoding(_))
        ));
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false
            ),
            Err(HttpError::Chunk("invalid chunk size"))
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
                false
            ),
            Err(HttpError::Chunk("chunk data not followed by CRLF"))
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
                false
            ),
            Err(HttpError::BodyTooLarge)
        );
        assert_eq!(parse_response(b"", true), Err(HttpError::Truncated));
        assert_eq!(
            parse_response(&vec![b'a'; MAX_HEAD + 1], false),
            Err(HttpError::HeadTooLarge)
        );
    }

    fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = body;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(i)
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            out.extend_from_slice(&rest[..n]);
            out.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    proptest! {
        /// Any bytes, complete or not: an answer or an error, never a panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), eof in any::<bool>()) {
            let _ = parse_response(&bytes, eof);
        }

        /// Arbitrary heads in front of arbitrary bytes, too.
        #[test]
        fn never_panics_after_a_head(
            head in "HTTP/1\\.[01] [0-9]{3} [A-Za-z ]{0,8}\r\n((Content-Length: [0-9]{1,3}|Transfer-Encoding: chunked|X: y)\r\n){0,3}\r\n",
            tail in proptest::collection::vec(any::<u8>(), 0..256),
            eof in any::<bool>(),
        ) {
            let mut raw = head.into_bytes();
            raw.extend_from_slice(&tail);
            let _ = parse_response(&raw, eof);
        }

        /// A body sent in any chunking comes back whole, and every prefix
        /// of the response asks for more.
        #[test]
        fn chunked_round_trip(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            sizes in proptest::collection::vec(1usize..40, 0..20),
        ) {
            let raw = chunked(&body, &sizes);
            let r = parse_response(&raw, true).unwrap().unwrap();
            prop_assert_eq!(r.body, body);
            for cut in 0..raw.len() {
                prop_assert_eq!(parse_response(&raw[..cut], false), Ok(None));
            }
        }
    }
}
