//! Output helpers: short ids, sizes, local times, JSON, snapshot tables, and the one-line
//! error text. Only the CLI prints.

use crate::catalog::{SiteRecord, SnapshotRecord};
use crate::retention::Policy;
use anyhow::Result;
use serde::Serialize;

/// The first 8 characters of an id, as shown in tables and messages.
pub use crate::catalog::short_id as short;

/// A size in B, KiB, MiB, GiB or TiB (one decimal above bytes).
pub fn fmt_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// A time in the local zone, `YYYY-mm-dd HH:MM:SS`.
pub fn local_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Prints `v` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A snapshot as JSON: its record plus `short_id` and `time_local`.
pub fn snapshot_json(s: &SnapshotRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("snapshot serializes");
    v["short_id"] = serde_json::json!(short(&s.id));
    v["time_local"] = serde_json::json!(
        s.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string()
    );
    v
}

/// The site's database URL without its password (`-` without a database).
pub fn redacted_db(s: &SiteRecord) -> String {
    match s.database() {
        Ok(Some(d)) => d.redacted(),
        Ok(None) => "-".into(),
        Err(_) => "(invalid URL)".into(),
    }
}

/// A site as JSON (database URL redacted, policy parsed).
pub fn site_json(s: &SiteRecord) -> serde_json::Value {
    serde_json::json!({
        "uri": s.uri,
        "platform": s.platform,
        "site_dir": s.site_dir,
        "db": s.db_url.as_ref().map(|_| redacted_db(s)),
        "bindings": s.bindings,
        "extra_paths": s.extra_paths,
        "structure_tables": s.structure_tables.clone().unwrap_or_default().patterns().to_vec(),
        "structure_tables_default": s.structure_tables.is_none(),
        "policy": s.policy.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()),
    })
}

/// The site's stored retention policy in words.
pub fn policy_text(s: &SiteRecord) -> String {
    match s.policy.as_deref().map(Policy::from_json) {
        None => "none stored (prune without flags leaves this site alone)".into(),
        Some(Ok(p)) => p.to_string(),
        Some(Err(e)) => e.to_string(),
    }
}

/// Prints the snapshot table of `list`: times in the local zone with its UTC offset.
pub fn print_snapshot_table(snaps: &[SnapshotRecord]) {
    println!(
        "{:<8}  {:<25}  {:<24}  {:<20}  {:<11}  {:>7}  {:>10}  {:>10}  LABEL",
        "ID", "TIME", "SITE", "PLATFORM", "KIND", "FILES", "SIZE", "ADDED"
    );
    for s in snaps {
        println!(
            "{:<8}  {:<25}  {:<24}  {:<20}  {:<11}  {:>7}  {:>10}  {:>10}  {}{}",
            short(&s.id),
            local_time_zone(&s.time),
            s.site,
            platform_short(&s.platform_path, 20),
            s.kind,
            s.files,
            fmt_bytes(s.bytes),
            fmt_bytes(s.bytes_added),
            if s.pinned { "[pinned] " } else { "" },
            s.label.as_deref().unwrap_or("")
        );
    }
}

/// A time in the local zone with its offset, `YYYY-mm-dd HH:MM:SS +hhmm`.
pub fn local_time_zone(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S %z")
        .to_string()
}

/// A platform for a table column: its folder name (Aegir keeps platforms side by side, named
/// by their code and version), cut to `width` characters with `~` at the end when longer.
pub fn platform_short(path: &std::path::Path, width: usize) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned());
    let name = crate::fsutil::shown_text(&name);
    if name.chars().count() <= width {
        return name;
    }
    let mut cut: String = name.chars().take(width - 1).collect();
    cut.push('~');
    cut
}

fn absent(missing: bool) -> &'static str {
    if missing { " (absent)" } else { "" }
}

/// Prints one snapshot, field by field (`show`).
pub fn print_snapshot(s: &SnapshotRecord) {
    println!("snapshot:   {}", s.id);
    println!("site:       {}", s.site);
    println!(
        "time:       {} ({} UTC)",
        s.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S %z"),
        s.time.format("%Y-%m-%d %H:%M:%S")
    );
    let pinned = if s.pinned { " (pinned)" } else { "" };
    println!("kind:       {}{pinned}", s.kind);
    if let Some(l) = &s.label {
        println!("label:      {l}");
    }
    let platform = absent(s.platform_tree.is_none());
    println!(
        "platform:   {}{platform}",
        crate::fsutil::shown(&s.platform_path)
    );
    println!(
        "site dir:   {}{}",
        s.site_dir,
        absent(s.site_tree.is_none())
    );
    println!(
        "database:   {}",
        crate::fsutil::shown_text(s.db_url.as_deref().unwrap_or("-"))
    );
    println!("files:      {}", s.files);
    println!("size:       {}", fmt_bytes(s.bytes));
    println!("read:       {}", fmt_bytes(s.bytes_read + s.db_bytes));
    println!("added:      {}", fmt_bytes(s.bytes_added));
    println!("duration:   {:.2}s", s.duration_ms as f64 / 1000.0);
    if let Some(n) = &s.note {
        println!("note:       {}", crate::fsutil::shown_text(n));
    }
}

/// The error and its causes on one line, each cause once (an I/O error's message already
/// ends with its source, which the chain would repeat).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if out.ends_with(&c) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&c);
    }
    // One line: a newline joins, any other control character (an escape sequence from a
    // path or a server's message) is shown escaped.
    crate::fsutil::shown_text(&out.replace('\n', " "))
}
