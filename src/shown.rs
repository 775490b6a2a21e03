//! Text for display: paths and strings with control characters escaped, so a name cannot
//! fake a line of output or send an escape sequence to the terminal. Used by error messages
//! (`error.rs`) and every listing; it depends on nothing else in the crate.

use std::path::Path;

/// A path for display: control characters (a newline that could fake a line of output, an
/// escape sequence) shown escaped as `\n`, `\t`, `\xNN`; everything else as `display()`.
pub fn shown(path: &Path) -> String {
    shown_text(&path.display().to_string())
}

/// Text for display with control characters escaped (see [`shown`]).
pub fn shown_text(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
