//! The few HTTP requests sitesnap makes, through `ureq` (HTTP and HTTPS, rustls with the
//! Mozilla roots): `rehearse`'s check of a clone's URL with the clone's `Host`, and monitoring
//! pings.
//! Redirects are not followed (a 3xx is an answer) and every request has a time limit.

use std::time::Duration;

/// How long one request may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(30);

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// GETs `url` (with `host` as its `Host` header when given) and returns the HTTP status, or
/// one line saying why there was none.
pub fn status(url: &str, host: Option<&str>, timeout: Duration) -> Result<u16, String> {
    let mut req = agent(timeout).get(url);
    if let Some(h) = host {
        req = req.header("Host", h);
    }
    req.call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// POSTs `body` (plain text) to `url`; returns the HTTP status, or one line saying why there
/// was none.
pub fn post(url: &str, body: &str, timeout: Duration) -> Result<u16, String> {
    agent(timeout)
        .post(url)
        .header("Content-Type", "text/plain; charset=utf-8")
        .send(body)
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}
