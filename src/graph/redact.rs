//! Hides secrets that people put on command lines (`--password=…`,
//! `-pSECRET` for mysql-like tools, `token=`/`secret=`/`key=` values,
//! `user:pass@` in URLs) before a command line leaves the process.

use regex::Regex;
use std::sync::OnceLock;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Names of options whose value is a secret.
const SECRET_WORDS: &str = r"pass|passwd|password|pwd|secret|token|api[-_]?key|apikey|access[-_]?key|private[-_]?key|key|auth|credentials?";

fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let build = |re: &str| Regex::new(re).expect("redaction patterns are valid");
        vec![
            // scheme://user:pass@host
            (build(r"(?i)([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+@"), "${1}***@"),
            // --password=x, token=x, db.secret_key: x, ?api_key=x&...
            (
                build(&format!(
                    r"(?i)((?:^|[\s?&;,\-])(?:[a-z0-9_.\-]*[_.\-])?(?:{SECRET_WORDS})\s*[=:]\s*)[^\s&;,]+"
                )),
                "${1}***",
            ),
        ]
    })
}

/// Redacts one command line given as its arguments, joined by spaces.
pub fn redact_cmdline(args: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut hide_next = false;
    let mysql_like = args
        .first()
        .map(|a| {
            let base = a
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or(a)
                .to_ascii_lowercase();
            ["mysql", "mariadb", "mysqldump", "mysqladmin"]
                .iter()
                .any(|t| base.starts_with(t))
        })
        .unwrap_or(false);
    for arg in args {
        if hide_next {
            out.push(MASK.to_string());
            hide_next = false;
            continue;
        }
        let lower = arg.to_ascii_lowercase();
        // `--password secret` / `--token secret`: the value is the next argument.
        if let Some(name) = lower.strip_prefix("--").or_else(|| lower.strip_prefix('-')) {
            if !name.contains('=') && is_secret_option(name) {
                out.push(arg.clone());
                hide_next = true;
                continue;
            }
        }
        // mysql -pSECRET
        if mysql_like && arg.len() > 2 && arg.starts_with("-p") && !arg.starts_with("--") {
            out.push(format!("-p{MASK}"));
            continue;
        }
        out.push(redact_text(arg));
    }
    out.join(" ")
}

fn is_secret_option(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "token",
        "secret",
        "api-key",
        "apikey",
        "api_key",
        "access-key",
        "secret-key",
        "private-key",
        "auth-token",
        "client-secret",
    ];
    NAMES.contains(&name)
}

/// Redacts secrets inside free text (one argument, or a joined line).
pub fn redact_text(text: &str) -> String {
    let mut s = text.to_string();
    for (re, with) in patterns() {
        if re.is_match(&s) {
            s = re.replace_all(&s, *with).into_owned();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(line: &str) -> String {
        redact_cmdline(&line.split(' ').map(String::from).collect::<Vec<_>>())
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
    }

    #[test]
    fn ordinary_arguments_stay() {
        assert_eq!(
            r("postgres -D /var/lib/pg -p 5432"),
            "postgres -D /var/lib/pg -p 5432"
        );
        assert_eq!(r("ssh -p 22 host"), "ssh -p 22 host");
        assert_eq!(
            r("python3 -m http.server 8000"),
            "python3 -m http.server 8000"
        );
        assert_eq!(r("sort --key=2"), "sort --key=***");
    }
}
