//! Monitoring pings, the Healthchecks way (as borgmatic does): a run `POST`s to `<url>/start`
//! when it begins, to `<url>` when it succeeds and to `<url>/fail` when it fails, the failure's
//! reason in the body. A ping that fails is a warning: it never fails a backup.

use crate::http;
use std::time::Duration;

/// How long one ping may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Which point of a run a ping marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Start,
    Success,
    Fail,
}

/// The URL a signal goes to: `<url>/start`, `<url>`, `<url>/fail`.
pub fn url_for(base: &str, s: Signal) -> String {
    let b = base.trim_end_matches('/');
    match s {
        Signal::Start => format!("{b}/start"),
        Signal::Success => b.to_string(),
        Signal::Fail => format!("{b}/fail"),
    }
}

/// The URL without its path and query, for messages (a Healthchecks URL's path is its key).
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("")),
        Err(_) => "(not a URL)".into(),
    }
}

/// Sends one ping; returns a warning line if it did not get a 2xx answer.
pub fn send(base: &str, s: Signal, body: &str) -> Option<String> {
    let url = url_for(base, s);
    match http::post(&url, body, TIMEOUT) {
        Ok(code) if (200..300).contains(&code) => None,
        Ok(code) => Some(format!("ping to {} answered HTTP {code}", shown(&url))),
        Err(e) => Some(format!("ping to {} failed: {e}", shown(&url))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthchecks_urls() {
        let b = "https://hc-ping.com/0b5e0c1c-secret/";
        assert_eq!(
            url_for(b, Signal::Start),
            "https://hc-ping.com/0b5e0c1c-secret/start"
        );
        assert_eq!(
            url_for(b, Signal::Success),
            "https://hc-ping.com/0b5e0c1c-secret"
        );
        assert_eq!(
            url_for(b, Signal::Fail),
            "https://hc-ping.com/0b5e0c1c-secret/fail"
        );
        assert!(!shown(b).contains("secret"));
    }
}
