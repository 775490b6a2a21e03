//! Next-step commands printed to the operator ("undo with: ...", "run `sitesnap gc`"), complete
//! so that they run as pasted: with `--repo` whenever the repository was not the default one
//! (given by `--repo` or `$SITESNAP_REPO`), as an absolute path, quoted for the shell.

use std::path::Path;

/// Builds and completes printed `sitesnap ...` commands.
#[derive(Debug, Clone)]
pub struct Hinter {
    /// `sitesnap`, or `sitesnap --repo <dir>`.
    prefix: String,
    /// Every command name, to recognise `sitesnap <command>` inside a library message.
    commands: Vec<String>,
}

/// Quotes one word for a POSIX shell, when it needs quoting.
pub fn shell_quote(s: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b);
    if !s.is_empty() && s.bytes().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Hinter {
    /// Hints for a repository at `repo` (`None`: the default one, named by no option).
    pub fn new(repo: Option<&Path>, commands: Vec<String>) -> Hinter {
        let prefix = match repo {
            Some(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                format!("sitesnap --repo {}", shell_quote(&abs.to_string_lossy()))
            }
            None => "sitesnap".to_string(),
        };
        Hinter { prefix, commands }
    }

    /// The complete command line for `rest` (`"restore 1a2b3c4d --yes"`).
    pub fn cmd(&self, rest: &str) -> String {
        format!("{} {rest}", self.prefix)
    }

    /// `text` with every `sitesnap <command>` in it completed with the repository option.
    pub fn complete(&self, text: &str) -> String {
        if self.prefix == "sitesnap" {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 32);
        let mut rest = text;
        while let Some(i) = rest.find("sitesnap ") {
            let after = &rest[i + "sitesnap ".len()..];
            let word: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            out.push_str(&rest[..i]);
            if self.commands.contains(&word) {
                out.push_str(&self.prefix);
                out.push(' ');
            } else {
                out.push_str("sitesnap ");
            }
            rest = after;
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h() -> Hinter {
        let cmds = ["restore", "gc", "repair"].map(String::from).to_vec();
        Hinter::new(Some(Path::new("/srv/my repo")), cmds)
    }

    #[test]
    fn completes_commands_only() {
        let t = h().complete(
            "run `sitesnap gc`; another sitesnap process; undo with: sitesnap restore ab",
        );
        assert_eq!(
            t,
            "run `sitesnap --repo '/srv/my repo' gc`; another sitesnap process; undo with: sitesnap --repo '/srv/my repo' restore ab"
        );
    }

    #[test]
    fn default_repository_needs_no_option() {
        let d = Hinter::new(None, vec!["gc".into()]);
        assert_eq!(d.complete("run `sitesnap gc`"), "run `sitesnap gc`");
        assert_eq!(d.cmd("gc"), "sitesnap gc");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
