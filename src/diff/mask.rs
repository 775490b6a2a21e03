//! Masking of secrets in text shown by `diff --content`: database passwords in URLs,
//! `'password' => '...'` in settings.php and drush aliases, and Aegir's `db_passwd` in nginx
//! (`fastcgi_param db_passwd ...;`) and Apache (`SetEnv db_passwd ...`) vhosts.

use regex::Regex;
use std::sync::LazyLock;

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// (pattern, replacement): the part before the secret is kept as `pre`.
static RULES: LazyLock<Vec<(Regex, String)>> = LazyLock::new(|| {
    [
        // scheme://user:password@host
        (
            r#"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'"]*:)[^@\s'"]+@"#,
            format!("${{pre}}{MASK}@"),
        ),
        // 'password' => '...' (and "pass", "passwd", "db_passwd"; either quote)
        (
            r#"(?i)(?P<pre>['"](?:password|pass|passwd|db_passwd)['"]\s*=>\s*)(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"#,
            format!("${{pre}}'{MASK}'"),
        ),
        // fastcgi_param db_passwd ...;
        (
            r"(?i)(?P<pre>fastcgi_param\s+db_passwd\s+)[^;\n]*",
            MASK.to_string(),
        ),
        // SetEnv db_passwd ...
        (
            r"(?i)(?P<pre>SetEnv\s+db_passwd\s+)[^\n]*",
            MASK.to_string(),
        ),
    ]
    .into_iter()
    .map(|(re, rep)| {
        let rep = if rep == MASK {
            format!("${{pre}}{MASK}")
        } else {
            rep
        };
        (Regex::new(re).expect("valid mask pattern"), rep)
    })
    .collect()
});

/// `text` with every secret replaced by [`MASK`].
pub fn mask(text: &str) -> String {
    let mut out = text.to_string();
    for (re, rep) in RULES.iter() {
        out = re.replace_all(&out, rep.as_str()).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_each_kind_of_secret() {
        let t = "url = mysql://u:p%40ss@db:3306/x\n\
                 'password' => 'hunter2',\n\
                 \"pass\" => \"x\\\"y\",\n\
                 fastcgi_param db_passwd 'p w';\n\
                 SetEnv db_passwd secret\n\
                 'username' => 'keepme',\n";
        let m = mask(t);
        for secret in ["p%40ss", "hunter2", "x\\\"y", "'p w'", "secret"] {
            assert!(!m.contains(secret), "{secret} left in:\n{m}");
        }
        assert!(m.contains("mysql://u:***@db:3306/x"), "{m}");
        assert!(m.contains("'password' => '***'"), "{m}");
        assert!(m.contains("fastcgi_param db_passwd ***;"), "{m}");
        assert!(m.contains("SetEnv db_passwd ***"), "{m}");
        assert!(m.contains("'username' => 'keepme'"), "{m}");
    }
}
