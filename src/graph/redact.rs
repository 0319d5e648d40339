//! Hides secrets that people put on command lines before a command line
//! leaves procnet (graph, connections, table, snapshot files, metrics).
//!
//! Secrets are found by *rule families*, not by a list of examples, so a
//! shape nobody thought of is still caught when it follows a family:
//!
//! 1. **Secret-named options** — an option whose name has a secret-like word
//!    part, with its value joined (`--db-password=PW`, `--auth:PW`,
//!    `-Djavax.net.ssl.keyStorePassword=PW`) or as the next argument
//!    (`--access-token PW`, `-storepass PW`). See [`is_secret_name`] for the
//!    words: `password`, `passwd`, `passphrase`, `secret`, `credential`
//!    anywhere in the name; `pass`, `pwd`, `pw`, `token`, `auth`, `key`,
//!    `sig`, `bearer`… (and compounds such as `apikey`, `requirepass`) as the
//!    last word part. Not secret: negated or sized booleans (`--no-auth`,
//!    `--max-tokens`) and names that say where a secret lives rather than
//!    what it is (`--password-file`, `--key-type`, `--token-url`). A next
//!    argument that is itself an option (`--auth --port 80`) is not a value.
//! 2. **Tool-specific short flags** — flags that only mean "password" for one
//!    program (found by the basename of any argument, so `sudo mysql` and
//!    `sh -c "redis-cli …"` count): `mysql -pPW`, `redis-cli -a PW`,
//!    `sshpass -p PW`, `mongo -p PW`, `sqlcmd -P PW`, `docker login -p PW`,
//!    `openssl -k PW`, the password half of `curl -u user:PW` /
//!    `http -a user:PW` / `smbclient -U user%PW`. The same letters stay for
//!    every other program (`psql -p 5432`, `ssh -p 22`).
//! 3. **Header values** — `Authorization: Bearer PW`, `X-Api-Key: PW`,
//!    `Cookie: …`, and any `Name: value` whose name is secret-like; the
//!    authentication scheme (`Bearer`, `Basic`) stays readable.
//! 4. **Userinfo** in any URL (`https://TOKEN@host`, `redis://:PW@host`,
//!    `postgres://u:PW@host`) and in scheme-less DSNs (`user:PW@tcp(host)`).
//! 5. **Secret-named assignments** — `NAME=value` anywhere in an argument
//!    (`PGPASSWORD=PW`, `?access_token=PW&`, `user=a,password=PW`), and
//!    quoted pairs (`{"password":"PW"}`, `{'token': 'PW'}`).
//! 6. **Self-identifying tokens** — values whose own shape says "credential"
//!    wherever they stand: GitHub (`ghp_…`, `github_pat_…`), GitLab
//!    (`glpat-…`), Slack (`xox?-…`), AWS access key ids (`AKIA…`), OpenAI-style
//!    `sk-…` keys and JWTs (`eyJ….….…`).
//!
//! An argument that holds a whole command line (`sh -c "…"`, a process that
//! rewrote its argv into one string) is also split at whitespace and run
//! through the same rules, so families 1–2 apply inside it too.
//!
//! Everything here is pure: no I/O, no state beyond compiled patterns.

use crate::snapshot::Snapshot;
use regex::{Captures, Regex};
use std::sync::OnceLock;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Redacts one command line given as its arguments, joined by spaces.
pub fn redact_cmdline(args: &[String]) -> String {
    redact_args(args).join(" ")
}

/// Redacts each argument of a command line, keeping one output element per
/// input element (so a recorded snapshot keeps its shape).
pub fn redact_args(args: &[String]) -> Vec<String> {
    let tokens: Vec<&str> = args.iter().map(String::as_str).collect();
    redact_tokens(&tokens, true)
}

/// Redacts every process's command line in a snapshot, so that a recorded
/// `--format snapshot` file carries no more than the API shows.
pub fn redact_snapshot(snapshot: &mut Snapshot) {
    for p in &mut snapshot.processes {
        p.cmdline = redact_args(&p.cmdline);
    }
}

/// Redacts secrets inside free text (one argument, or a joined line).
pub fn redact_text(text: &str) -> String {
    redact_arg(text, true)
}

// ---------------------------------------------------------------------------
// Family 1: which names are secret-like.

/// Words that make a name secret wherever they occur in it.
const STRONG: &[&str] = &["password", "passwd", "passphrase", "secret", "credential"];

/// Words that make a name secret as its last word part.
const WEAK: &[&str] = &[
    "pass",
    "pwd",
    "pw",
    "token",
    "auth",
    "key",
    "apikey",
    "sig",
    "signature",
    "bearer",
    "authorization",
    "cred",
    "creds",
    "passin",
    "passout",
];

/// Endings that, after one of [`COMPOUND_PREFIXES`], make a one-word compound
/// secret (`apikey`, `accesstoken`, `storepass`, `requirepass`, `masterauth`).
const COMPOUND_ENDINGS: &[&str] = &["key", "token", "pass", "pwd", "auth", "secret"];

const COMPOUND_PREFIXES: &[&str] = &[
    "access",
    "admin",
    "api",
    "app",
    "auth",
    "bearer",
    "bot",
    "client",
    "db",
    "deploy",
    "deststore",
    "destkey",
    "encryption",
    "hmac",
    "id",
    "key",
    "license",
    "master",
    "new",
    "old",
    "personal",
    "private",
    "refresh",
    "require",
    "root",
    "secret",
    "service",
    "session",
    "sign",
    "signing",
    "srckey",
    "srcstore",
    "store",
    "user",
];

/// First word parts that make an option a switch or a quantity about a
/// secret, not the secret (`--no-auth`, `--max-tokens`, `--ask-password`).
const NEGATIONS: &[&str] = &[
    "no", "non", "disable", "enable", "skip", "without", "require", "allow", "ignore", "insecure",
    "show", "hide", "prompt", "ask", "max", "min", "num", "use", "check",
];

/// Last word parts that say where or what kind a secret is, not what it is
/// (`--password-file`, `--key-type`, `--token-url`, `SSH_AUTH_SOCK`).
const METADATA: &[&str] = &[
    "agent",
    "alg",
    "algorithm",
    "backend",
    "bits",
    "cmd",
    "command",
    "count",
    "db",
    "dir",
    "directory",
    "enabled",
    "endpoint",
    "env",
    "expires",
    "expiry",
    "fd",
    "file",
    "files",
    "format",
    "helper",
    "host",
    "id",
    "len",
    "length",
    "level",
    "limit",
    "max",
    "mechanism",
    "method",
    "min",
    "mode",
    "name",
    "path",
    "plugin",
    "policy",
    "port",
    "prompt",
    "provider",
    "realm",
    "required",
    "retries",
    "scheme",
    "server",
    "size",
    "sock",
    "socket",
    "source",
    "stdin",
    "store",
    "timeout",
    "ttl",
    "type",
    "uri",
    "url",
    "user",
    "username",
];

/// Whether an option, variable, field or header name names a secret
/// (family 1). Leading dashes and a Java `-D` are ignored; word parts are
/// split at `-`, `_`, `.` and camelCase (`keyStorePassword` → key, store,
/// password).
pub fn is_secret_name(raw: &str) -> bool {
    let name = match raw.strip_prefix("-D") {
        Some(rest) if !rest.is_empty() => rest,
        _ => raw.trim_start_matches('-'),
    };
    let parts = word_parts(name);
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() > 1 && (NEGATIONS.contains(&first.as_str()) || METADATA.contains(&last.as_str()))
    {
        return false;
    }
    if parts.iter().any(|p| STRONG.iter().any(|s| p.contains(s))) {
        return true;
    }
    is_weak_word(last)
}

fn is_weak_word(part: &str) -> bool {
    WEAK.contains(&part)
        || COMPOUND_ENDINGS.iter().any(|end| {
            part.strip_suffix(end)
                .is_some_and(|prefix| COMPOUND_PREFIXES.contains(&prefix))
        })
}

/// Lower-case word parts of a name: split at every non-alphanumeric
/// character and at camelCase boundaries (`XApiKey` → x, api, key).
fn word_parts(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for chunk in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let chars: Vec<char> = chunk.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (prev, cur) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_ascii_lowercase());
            let boundary = cur.is_ascii_uppercase()
                && (prev.is_ascii_lowercase()
                    || prev.is_ascii_digit()
                    || (prev.is_ascii_uppercase() && next_lower));
            if boundary {
                parts.push(chars[start..i].iter().collect::<String>());
                start = i;
            }
        }
        if start < chars.len() {
            parts.push(chars[start..].iter().collect::<String>());
        }
    }
    parts.iter().map(|p| p.to_ascii_lowercase()).collect()
}

/// Whether a header name's value is a credential (family 3).
fn is_secret_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || is_secret_name(name)
}

// ---------------------------------------------------------------------------
// Family 2: programs whose short flags carry secrets.

/// How a tool-specific flag carries its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Only joined to the flag (`mysql -pPW`; `mysql -p db` prompts and
    /// `db` is a database).
    Joined,
    /// Only as the next argument (`redis-cli -a PW`; `-askpass` is another
    /// option, so no joined form).
    Next,
    /// Joined or next (`sshpass -pPW`, `sshpass -p PW`).
    NextOrJoined,
    /// `user:PW`, joined or next: only the part after the first `:` (or,
    /// for `TOKEN:`, the part before it).
    UserColon,
    /// `user%PW` (Samba), joined or next.
    UserPercent,
}

/// A program whose arguments have their own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Mysql,
    RedisCli,
    Sshpass,
    Mongo,
    Sqlcmd,
    Curl,
    Httpie,
    Samba,
    Openssl,
    /// `docker`/`podman`/… before `login`.
    Registry,
    /// `docker login` and the like.
    RegistryLogin,
    /// ffmpeg's `-pass 1` is an encoding pass, not a password.
    Ffmpeg,
    /// A program known to have no secret short flags (`ssh -p 22`): seeing
    /// it ends the previous tool's rules.
    Plain,
}

impl Tool {
    /// The tool an argument names by its basename, if any.
    fn named_by(token: &str) -> Option<Tool> {
        let base = token.rsplit(['/', '\\']).next().unwrap_or(token);
        if base.len() > 18 {
            return None; // longer than any name below (`mariadb-binlog.exe`)
        }
        let lower = base.to_ascii_lowercase();
        let lower = lower.strip_suffix(".exe").unwrap_or(&lower);
        let tool = match lower {
            "mysql" | "mysqldump" | "mysqladmin" | "mysqlimport" | "mysqlcheck" | "mysqlshow"
            | "mysqlslap" | "mysqlpump" | "mysqlbinlog" | "mysqlsh" | "mysql_upgrade"
            | "mariadb" | "mariadb-dump" | "mariadb-admin" | "mariadb-import" | "mariadb-check"
            | "mariadb-show" | "mariadb-slap" | "mariadb-binlog" => Tool::Mysql,
            "redis-cli" | "valkey-cli" | "keydb-cli" => Tool::RedisCli,
            "sshpass" => Tool::Sshpass,
            "mongo" | "mongosh" | "mongodump" | "mongorestore" | "mongoexport" | "mongoimport"
            | "mongostat" | "mongotop" | "mongofiles" => Tool::Mongo,
            "sqlcmd" | "bcp" | "osql" | "isql" => Tool::Sqlcmd,
            "curl" => Tool::Curl,
            "http" | "https" | "httpie" => Tool::Httpie,
            "smbclient" | "rpcclient" | "smbcacls" | "smbget" => Tool::Samba,
            "openssl" => Tool::Openssl,
            "docker" | "podman" | "nerdctl" | "buildah" | "skopeo" | "helm" | "oras" => {
                Tool::Registry
            }
            "ffmpeg" | "ffprobe" => Tool::Ffmpeg,
            "ssh" | "scp" | "sftp" | "rsync" | "psql" | "pg_dump" | "pg_dumpall" | "pg_restore"
            | "pg_isready" | "redis-server" | "valkey-server" | "mongod" | "mongos" | "mysqld"
            | "mariadbd" | "postgres" | "nc" | "ncat" | "socat" | "telnet" | "sudo" | "env"
            | "sh" | "bash" | "zsh" | "node" | "java" | "python" | "python3" => Tool::Plain,
            _ => return None,
        };
        Some(tool)
    }

    /// How `flag` carries a secret for this tool.
    fn take(self, flag: &str) -> Option<Take> {
        let take = match (self, flag) {
            (Tool::Mysql, "-p") => Take::Joined,
            (Tool::RedisCli, "-a") => Take::Next,
            (Tool::Sshpass, "-p") => Take::NextOrJoined,
            (Tool::Mongo, "-p") => Take::Next,
            (Tool::Sqlcmd, "-P") => Take::NextOrJoined,
            (Tool::Curl, "-u" | "-U" | "--user" | "--proxy-user" | "-E" | "--cert") => {
                Take::UserColon
            }
            (Tool::Httpie, "-a") => Take::UserColon,
            (Tool::Samba, "-U" | "--user") => Take::UserPercent,
            (Tool::Openssl, "-k") => Take::Next,
            (Tool::RegistryLogin, "-p") => Take::NextOrJoined,
            _ => return None,
        };
        Some(take)
    }

    /// Flags of this tool that look like family 1 but are not secrets.
    fn not_secret(self, option_name: &str) -> bool {
        self == Tool::Ffmpeg && option_name == "-pass"
    }
}

/// Splits a tool flag use into the flag and a joined value:
/// `-pPW` → (`-p`, `PW`), `--user=u:p` → (`--user`, `u:p`).
fn tool_flag(tool: Tool, token: &str) -> Option<(Take, Option<&str>)> {
    if let Some(take) = tool.take(token) {
        return Some((take, None));
    }
    if let Some((flag, value)) = token.split_once('=') {
        if flag.starts_with("--") {
            return tool.take(flag).map(|t| (t, Some(value)));
        }
    }
    if token.len() > 2 && !token.starts_with("--") && token.is_char_boundary(2) {
        let (flag, value) = token.split_at(2);
        if let Some(take) = tool.take(flag) {
            if take != Take::Next {
                return Some((take, Some(value)));
            }
        }
    }
    None
}

/// Masks a tool flag's value as `take` says.
fn mask_tool_value(take: Take, value: &str) -> String {
    match take {
        Take::UserColon => match value.split_once(':') {
            Some((user, "")) if !user.is_empty() => format!("{MASK}:"),
            Some((user, _)) => format!("{user}:{MASK}"),
            None => value.to_string(),
        },
        Take::UserPercent => match value.split_once('%') {
            Some((user, _)) => format!("{user}%{MASK}"),
            None => value.to_string(),
        },
        Take::Joined | Take::Next | Take::NextOrJoined => MASK.to_string(),
    }
}

// ---------------------------------------------------------------------------
// The argument walk (families 1 and 2, and headers split across arguments).

/// Whether an argument can be an option's value (an option is not:
/// `--auth --port 80`).
fn is_value(token: &str) -> bool {
    !(token.len() > 1 && token.starts_with('-'))
}

/// An option's name (dashes kept) and its joined value, if any:
/// `--db-password=PW` → (`--db-password`, `=`, `PW`).
fn split_option(token: &str) -> Option<(&str, Option<(char, &str)>)> {
    let body = token.strip_prefix('-')?;
    let body = body.strip_prefix('-').unwrap_or(body);
    if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    match token.find(['=', ':']) {
        Some(at) => {
            let sep = token[at..].chars().next().unwrap_or('=');
            Some((&token[..at], Some((sep, &token[at + 1..]))))
        }
        None => Some((token, None)),
    }
}

/// Authentication schemes that stay readable before a masked credential.
fn is_auth_scheme(word: &str) -> bool {
    const SCHEMES: &[&str] = &[
        "bearer",
        "basic",
        "token",
        "digest",
        "negotiate",
        "ntlm",
        "apikey",
        "key",
        "bot",
        "oauth",
        "sso-key",
        "aws4-hmac-sha256",
    ];
    SCHEMES.contains(&word.to_ascii_lowercase().as_str())
}

/// Redacts a sequence of arguments (or of words inside one argument).
/// `nested` says whether an argument with whitespace is itself walked as a
/// command line.
fn redact_tokens(tokens: &[&str], nested: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut tool: Option<Tool> = None;
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let next = tokens.get(i + 1).copied();
        let next_is_value = next.is_some_and(is_value);
        let words = may_name_a_secret(token);

        if let Some(t) = Tool::named_by(token) {
            tool = Some(t);
            out.push(redact_arg(token, nested));
            i += 1;
            continue;
        }
        if tool == Some(Tool::Registry) && token == "login" {
            tool = Some(Tool::RegistryLogin);
        }

        // Family 2: tool-specific flags.
        if let Some((take, joined)) = tool.and_then(|t| tool_flag(t, token)) {
            match joined {
                Some(value) => {
                    let flag = &token[..token.len() - value.len()];
                    out.push(format!("{flag}{}", mask_tool_value(take, value)));
                    i += 1;
                }
                None if next_is_value && take != Take::Joined => {
                    out.push(token.to_string());
                    out.push(mask_tool_value(take, next.unwrap_or_default()));
                    i += 2;
                }
                None => {
                    out.push(token.to_string());
                    i += 1;
                }
            }
            continue;
        }

        // Family 1: secret-named options.
        if let Some((name, joined)) = split_option(token).filter(|_| words) {
            if is_secret_name(name) && !tool.is_some_and(|t| t.not_secret(name)) {
                match joined {
                    Some((sep, value)) if !value.is_empty() => {
                        out.push(format!("{name}{sep}{MASK}"));
                        i += 1;
                    }
                    Some(_) => {
                        out.push(token.to_string());
                        i += 1;
                    }
                    None if next_is_value => {
                        out.push(token.to_string());
                        out.push(MASK.to_string());
                        i += 2;
                    }
                    None => {
                        out.push(token.to_string());
                        i += 1;
                    }
                }
                continue;
            }
        }

        // Family 3 split across arguments: `-H Authorization: Bearer PW`.
        if let Some(header) = token.strip_suffix(':') {
            let is_name = header.starts_with(|c: char| c.is_ascii_alphabetic())
                && header
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if is_name && words && is_secret_header(header) {
                if let Some(next) = next {
                    out.push(token.to_string());
                    let scheme_then_value = is_auth_scheme(next) && i + 2 < tokens.len();
                    if scheme_then_value {
                        out.push(next.to_string());
                        out.push(MASK.to_string());
                        i += 3;
                    } else {
                        out.push(MASK.to_string());
                        i += 2;
                    }
                    continue;
                }
            }
        }

        out.push(redact_arg(token, nested));
        i += 1;
    }
    out
}

/// Redacts one argument: the text families (3–6), then, if it holds
/// whitespace and `nested`, the argument walk over its words.
fn redact_arg(arg: &str, nested: bool) -> String {
    let text = redact_text_families(arg);
    if !nested || !text.contains(char::is_whitespace) {
        return text;
    }
    // Words without the shell quotes around them, so `'--password=x'`
    // and `"mysql` are seen as an option and a program.
    let quote = |c: char| matches!(c, '\'' | '"' | '(' | ')' | '`');
    let words: Vec<(usize, usize)> = word_spans()
        .find_iter(&text)
        .filter_map(|m| {
            let w = m.as_str();
            let inner = w.trim_start_matches(quote);
            let start = m.start() + (w.len() - inner.len());
            let end = start + inner.trim_end_matches(quote).len();
            (start < end).then_some((start, end))
        })
        .collect();
    let slices: Vec<&str> = words.iter().map(|&(s, e)| &text[s..e]).collect();
    let redacted = redact_tokens(&slices, false);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (&(start, end), word) in words.iter().zip(&redacted) {
        out.push_str(&text[last..start]);
        out.push_str(word);
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

fn word_spans() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\S+").expect("valid pattern"))
}

// ---------------------------------------------------------------------------
// Families 3-6: patterns inside one argument.

struct Patterns {
    url_userinfo: Regex,
    dsn_userinfo: Regex,
    quoted_pair: Regex,
    assignment: Regex,
    header: Regex,
    known_token: Regex,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let build = |re: &str| Regex::new(re).expect("redaction patterns are valid");
        Patterns {
            // scheme://userinfo@ — greedy up to the last `@` before the path,
            // so an unescaped `@` in a password is still covered.
            url_userinfo: build(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s'\x22]*)@"),
            // user:pass@host without a scheme (Go's MySQL DSN, libpq-like).
            dsn_userinfo: build(
                r"(^|[\s'\x22=,;(])([^\s:@/'\x22=,;()]*):([^\s@'\x22/][^\s@'\x22]*)@(sha\d+:)?",
            ),
            // "name": "value" and 'name': 'value' (JSON, Python dicts).
            quoted_pair: build(
                r#"(["'])([A-Za-z0-9_.\-]{1,64})["']\s*:\s*(["'])((?:[^"'\\]|\\.)*)(["'])"#,
            ),
            // NAME=value (env, query strings, mount options, -Dprop=).
            assignment: build(
                r#"(^|[\s'"{,;&?(])(-{0,2}[A-Za-z][A-Za-z0-9_.\-]*)(\s*=\s*['"]?)([^\s&;,'"]+)"#,
            ),
            // Name: [scheme] value (HTTP headers, `key: value`).
            header: build(r#"(^|[\s'"{,;(=])([A-Za-z][A-Za-z0-9_\-]*)(\s*:\s*)([^'"\r\n]*)"#),
            known_token: build(concat!(
                r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}",
                r"|glpat-[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}",
                r"|AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9_\-]{20,}",
                r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
            )),
        }
    })
}

fn redact_text_families(arg: &str) -> String {
    let p = patterns();
    let mut s = arg.to_string();
    let has = |s: &str, c: char| s.contains(c);
    if s.contains("://") && has(&s, '@') {
        replace(&mut s, &p.url_userinfo, |c| match c[2].split_once(':') {
            Some((user, _)) => format!("{}{user}:{MASK}@", &c[1]),
            None => format!("{}{MASK}@", &c[1]),
        });
    }
    if has(&s, ':') && has(&s, '@') {
        replace(&mut s, &p.dsn_userinfo, |c| {
            if c.get(4).is_some() || &c[3] == MASK {
                return c[0].to_string(); // an image digest, or done already
            }
            format!("{}{}:{MASK}@", &c[1], &c[2])
        });
    }
    // Families 3 and 5 need a secret-like name, so text without one of
    // its words (most arguments) skips them.
    if may_name_a_secret(&s) {
        if has(&s, ':') && (has(&s, '"') || has(&s, '\'')) {
            replace(&mut s, &p.quoted_pair, |c| {
                if is_secret_name(&c[2]) && !c[4].is_empty() {
                    format!("{}{}{}:{}{MASK}{}", &c[1], &c[2], &c[1], &c[3], &c[5])
                } else {
                    c[0].to_string()
                }
            });
        }
        if has(&s, '=') {
            replace(&mut s, &p.assignment, |c| {
                if is_secret_name(&c[2]) {
                    format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
                } else {
                    c[0].to_string()
                }
            });
        }
        if has(&s, ':') {
            s = redact_headers(&s);
        }
    }
    if p.known_token.is_match(&s) {
        s = p.known_token.replace_all(&s, MASK).into_owned();
    }
    s
}

/// Replaces every match of `re` in `s` by what `with` makes of it,
/// copying only when something matched.
fn replace(s: &mut String, re: &Regex, with: impl FnMut(&Captures) -> String) {
    if let std::borrow::Cow::Owned(new) = re.replace_all(s, with) {
        *s = new;
    }
}

/// Whether `text` holds any word that [`is_secret_name`] or
/// [`is_secret_header`] could need (a cheap, exact prefilter: every secret
/// name contains one of these).
fn may_name_a_secret(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)pass|pw|secret|token|auth|key|cred|sig|bearer|cookie")
            .expect("valid pattern")
    })
    .is_match(text)
}

/// Family 3 inside one argument: `Name: [scheme] value`, repeated over
/// the rest of the text. The scheme (`Bearer`) stays; the credential (one
/// word, or a whole cookie list) goes.
fn redact_headers(text: &str) -> String {
    let re = &patterns().header;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = re.captures(rest) {
        let (Some(name), Some(sep), Some(value)) = (c.get(2), c.get(3), c.get(4)) else {
            break;
        };
        let v = value.as_str();
        if !is_secret_header(name.as_str()) || v.trim().is_empty() {
            // Not a secret: keep the name; its value may hold another header.
            out.push_str(&rest[..sep.end()]);
            rest = &rest[sep.end()..];
            continue;
        }
        out.push_str(&rest[..value.start()]);
        let is_cookie = ["cookie", "set-cookie"]
            .iter()
            .any(|n| name.as_str().eq_ignore_ascii_case(n));
        if is_cookie {
            out.push_str(MASK);
            rest = &rest[value.end()..];
            continue;
        }
        let first_end = v.find(char::is_whitespace).unwrap_or(v.len());
        let after = &v[first_end..];
        let cred_start = if is_auth_scheme(&v[..first_end]) && !after.trim().is_empty() {
            first_end + (after.len() - after.trim_start().len())
        } else {
            0
        };
        let cred_len = v[cred_start..]
            .find(char::is_whitespace)
            .unwrap_or(v.len() - cred_start);
        out.push_str(&v[..cred_start]);
        out.push_str(MASK);
        rest = &rest[value.start() + cred_start + cred_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Splits a test line into arguments at spaces; `~` stands for a space
    /// inside one argument (`-H Authorization:~Bearer~S`).
    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(|a| a.replace('~', " ")).collect()
    }

    fn r(line: &str) -> String {
        redact_cmdline(&argv(line))
    }

    /// One shape per family member; `{S}` is where the secret goes.
    const SECRET_SHAPES: &[&str] = &[
        // family 1: secret-named options, joined or next
        "app --password={S} -v",
        "app --password {S} -v",
        "app --db-password {S}",
        "app --passphrase={S}",
        "app --auth {S}",
        "app --access-token {S}",
        "app --api-key={S}",
        "app --private-key {S}",
        "app --secret_key={S}",
        "app --client-secret {S}",
        "app --token:{S}",
        "app --credentials {S}",
        "app --auth-token={S}",
        "keytool -storepass {S} -keystore ks.jks",
        "redis-server --requirepass {S}",
        "app --user=bob --pass {S}",
        "curl --oauth2-bearer {S} http://x",
        "app --secret {S}",
        "app --db-pwd={S}",
        "app --key {S}",
        "app --basic-auth bob:{S}",
        "app --masterauth {S}",
        "app --apikey {S}",
        "app --password='{S}'",
        "java -Djavax.net.ssl.keyStorePassword={S} -jar a.jar",
        "java -Dspring.datasource.password={S} -jar a.jar",
        "app --dbPassword {S}",
        "openssl pkcs12 -passin pass:{S} -in a.p12",
        // family 2: tool-specific short flags
        "mysql -uroot -p{S} db",
        "/usr/bin/mysqldump -p{S} --all-databases",
        "redis-cli -h 127.0.0.1 -a {S} ping",
        "sshpass -p {S} ssh -p 22 host",
        "sshpass -p{S} ssh host",
        "curl -u bob:{S} http://x",
        "curl -ubob:{S} http://x",
        "curl --user=bob:{S} http://x",
        "curl -u {S}: https://api.github.com",
        "mongo -u admin -p {S}",
        "sqlcmd -S host -U sa -P {S}",
        "docker login -u bob -p {S} registry.example",
        "smbclient //h/share -U bob%{S}",
        "openssl enc -aes256 -k {S}",
        "http -a bob:{S} example.org",
        "sudo mysql -p{S}",
        // family 3: header values
        "curl -H Authorization:~Bearer~{S} http://x",
        "curl -H X-Api-Key:~{S} http://x",
        "curl -H Authorization:Basic~{S} http://x",
        "curl -H Cookie:~theme=dark;~session={S} http://x",
        "curl -H Authorization: Bearer {S} http://x",
        "curl -H X-Auth-Token:{S} http://x",
        "wget --header=Private-Token:~{S} http://x",
        // family 4: userinfo in URLs and DSNs
        "git clone https://{S}@github.com/x/y",
        "app postgres://u:{S}@db:5432/x",
        "redis-cli -u redis://:{S}@127.0.0.1:6379",
        "app --dsn user:{S}@tcp(127.0.0.1:3306)/db",
        "app mongodb+srv://admin:{S}@cluster0.example.net/db",
        "app amqp://guest:{S}@rabbit:5672/",
        // family 5: secret-named assignments and quoted pairs
        "env PGPASSWORD={S} psql -h db",
        "app AWS_SECRET_ACCESS_KEY={S}",
        "docker run -e GITHUB_TOKEN={S} img",
        "app http://h/?a=1&access_token={S}&b=2",
        "mount -o username=bob,password={S} //h/s /mnt",
        "app jdbc:mysql://h/db?user=a&password={S}",
        "app -e MYSQL_PWD={S}",
        "app --config {\"password\":\"{S}\"}",
        "app --config {\"user\":\"a\",~\"api_key\":~\"{S}\"}",
        "app {'token':~'{S}'}",
        "app host=db~user=a~password={S}~dbname=x",
        // nested command lines
        "sh -c mysql~-p{S}~-e~'select~1'",
        "sh -c redis-cli~-a~{S}~ping",
        "bash -c curl~-H~'Authorization:~Bearer~{S}'~http://x",
        "sh -c app~--password~{S}",
        "sh -c 'app~--token={S}'",
    ];

    /// Shapes whose `{S}` part is an ordinary value and must stay.
    const ORDINARY_SHAPES: &[&str] = &[
        "postgres -D /var/lib/pg -p {S}",
        "ssh -p {S} host",
        "psql -h db -p {S} -U bob db",
        "redis-server --port {S}",
        "redis-cli -p {S} ping",
        "app --port {S} --keep-alive",
        "app --keep-alive {S}",
        "app --monkey {S}",
        "app --keyboard={S}",
        "app --no-auth {S}",
        "app --password-file {S}",
        "app --token-file={S}",
        "app --max-tokens {S}",
        "app --tokenizer {S}",
        "app --passes {S}",
        "app --bypass {S}",
        "app KEYBOARD={S} HOME=/root",
        "app http://example.com:8080/{S}",
        "mysql -p {S}",
        "app --key-type {S}",
        "app --auth-method {S}",
        "app --secret-name {S}",
        "ffmpeg -i a.mp4 -pass {S} out.mp4",
        "docker run -p {S}:80 redis",
        "ssh -o StrictHostKeyChecking={S} host",
        "curl -u {S} http://x",
        "app -Djavax.net.ssl.keyStore={S}",
        "app SSH_AUTH_SOCK={S}",
        "git clone git@github.com:org/{S}.git",
        "python3 -m http.server {S}",
        "app Host:~{S}",
        "app --user {S}",
    ];

    fn insert(shape: &str, value: &str) -> Vec<String> {
        argv(shape)
            .into_iter()
            .map(|a| a.replace("{S}", value))
            .collect()
    }

    #[test]
    fn every_secret_shape_is_masked() {
        for shape in SECRET_SHAPES {
            let secret = "Zq7sEcReTvalue9";
            let out = redact_cmdline(&insert(shape, secret));
            assert!(!out.contains(secret), "{shape} → {out}");
            assert!(out.contains(MASK), "{shape} → {out}");
        }
    }

    #[test]
    fn every_ordinary_shape_stays() {
        for shape in ORDINARY_SHAPES {
            let value = "v4lue8080";
            let args = insert(shape, value);
            assert_eq!(redact_cmdline(&args), args.join(" "), "{shape}");
        }
    }

    #[test]
    fn secrets_are_hidden() {
        assert_eq!(r("app --password=hunter2 -v"), "app --password=*** -v");
        assert_eq!(r("app --password hunter2 -v"), "app --password *** -v");
        assert_eq!(r("mysql -uroot -phunter2 db"), "mysql -uroot -p*** db");
        assert_eq!(
            r("curl https://bob:hunter2@example.com/x"),
            "curl https://bob:***@example.com/x"
        );
        assert_eq!(
            r("svc token=abc123 secret=s3 key=k1"),
            "svc token=*** secret=*** key=***"
        );
        assert_eq!(
            r("svc --api-key=zzz --db_password=p"),
            "svc --api-key=*** --db_password=***"
        );
        assert_eq!(
            r("x http://h/?a=1&access_token=t0k&b=2"),
            "x http://h/?a=1&access_token=***&b=2"
        );
        assert_eq!(r("sort --key=2"), "sort --key=***");
    }

    #[test]
    fn readable_parts_stay_around_a_mask() {
        assert_eq!(
            r("curl -H Authorization:~Bearer~tok123 http://x"),
            "curl -H Authorization: Bearer *** http://x"
        );
        assert_eq!(r("curl -u bob:pw http://x"), "curl -u bob:*** http://x");
        assert_eq!(r("curl -u tok: http://x"), "curl -u ***: http://x");
        assert_eq!(
            r("git clone https://tok@github.com/x"),
            "git clone https://***@github.com/x"
        );
        assert_eq!(
            r("app root:pw@tcp(127.0.0.1:3306)/db"),
            "app root:***@tcp(127.0.0.1:3306)/db"
        );
        assert_eq!(
            r("app {\"user\":\"a\",\"password\":\"pw\"}"),
            "app {\"user\":\"a\",\"password\":\"***\"}"
        );
        assert_eq!(r("smbclient //h/s -U bob%pw"), "smbclient //h/s -U bob%***");
        assert_eq!(
            r("sh -c mysql~-ppw~-e~'select~1'"),
            "sh -c mysql -p*** -e 'select 1'"
        );
        assert_eq!(
            r("sh -c 'app~--token=pw'~&&~ls"),
            "sh -c 'app --token=***' && ls"
        );
        assert_eq!(r("redis:7@sha256:abc"), "redis:7@sha256:abc");
    }

    #[test]
    fn booleans_followed_by_options_hide_nothing() {
        assert_eq!(
            r("mongod --auth --port 27017"),
            "mongod --auth --port 27017"
        );
        assert_eq!(r("app --no-auth --port 80"), "app --no-auth --port 80");
        assert_eq!(r("app --password"), "app --password");
        assert_eq!(r("app --password="), "app --password=");
    }

    #[test]
    fn names_split_into_word_parts() {
        assert_eq!(word_parts("keyStorePassword"), ["key", "store", "password"]);
        assert_eq!(word_parts("XApiKey"), ["x", "api", "key"]);
        assert_eq!(
            word_parts("AWS_SECRET_ACCESS_KEY"),
            ["aws", "secret", "access", "key"]
        );
        assert!(is_secret_name("--db-password"));
        assert!(is_secret_name("-Djavax.net.ssl.trustStorePassword"));
        assert!(is_secret_name("X-Api-Key"));
        assert!(is_secret_name("requirepass"));
        assert!(!is_secret_name("--keyboard"));
        assert!(!is_secret_name("--monkey"));
        assert!(!is_secret_name("--keep-alive"));
        assert!(!is_secret_name("--no-auth"));
        assert!(!is_secret_name("--password-file"));
        assert!(!is_secret_name("StrictHostKeyChecking"));
    }

    #[test]
    fn snapshot_redaction_keeps_argument_count() {
        let mut snap = Snapshot::default();
        snap.processes.push(crate::snapshot::Process {
            pid: 1,
            name: "app".into(),
            cmdline: argv("app --password pw -v"),
            ..Default::default()
        });
        redact_snapshot(&mut snap);
        assert_eq!(snap.processes[0].cmdline, argv("app --password *** -v"));
    }

    /// Secrets as people pick them: letters and digits, or with
    /// punctuation that URLs and shells leave alone.
    fn secret() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9]{8,24}",
            "[A-Za-z0-9][A-Za-z0-9!#%^*+~._-]{7,23}",
        ]
        .prop_map(|s| format!("Zq{s}"))
    }

    proptest! {
        #[test]
        fn a_secret_in_any_shape_never_survives(
            shape in 0..SECRET_SHAPES.len(),
            s in secret(),
        ) {
            let out = redact_cmdline(&insert(SECRET_SHAPES[shape], &s));
            prop_assert!(!out.contains(&s), "{} → {}", SECRET_SHAPES[shape], out);
        }

        #[test]
        fn secrets_in_one_long_command_line_never_survive(
            picks in proptest::collection::vec((0..SECRET_SHAPES.len(), secret()), 1..6),
        ) {
            // Several shapes after each other in one process's arguments
            // (each shape's program name included, as after `&&`).
            let mut args = Vec::new();
            for (shape, s) in &picks {
                args.extend(insert(SECRET_SHAPES[*shape], s));
            }
            let out = redact_cmdline(&args);
            for (_, s) in &picks {
                prop_assert!(!out.contains(s.as_str()), "{:?} → {}", args, out);
            }
        }

        #[test]
        fn ordinary_values_stay(
            shape in 0..ORDINARY_SHAPES.len(),
            v in "[a-z0-9]{1,12}",
        ) {
            let args = insert(ORDINARY_SHAPES[shape], &v);
            prop_assert_eq!(redact_cmdline(&args), args.join(" "));
        }
    }
}
