//! PostgreSQL through its own tools: `pg_dump` to dump, `psql` to query and load. Connection
//! details go to the child in libpq's environment variables (`PGHOST`, `PGPORT`, `PGUSER`,
//! `PGDATABASE`) and the password in `PGPASSWORD`, set on that child only: argv holds flags
//! alone. This module never writes a password anywhere else.
//!
//! Dump format: plain SQL (`pg_dump --format=plain`), not the custom format. Plain text is what
//! the content-defined chunker deduplicates well (the custom format compresses table data by
//! default, which changes every byte after a changed row); it streams both ways (`pg_dump` to
//! stdout, `psql` from stdin) where the custom format written to a pipe loses the seekable table
//! of contents that makes `pg_restore` selective or parallel anyway; and `psql
//! --single-transaction -v ON_ERROR_STOP=1` loads it atomically: the drop of the old objects
//! and the load commit together or not at all.

use super::ServerUrl;
use std::fmt::Write as _;
use std::process::Command;

pub(crate) const DUMP_TOOLS: &[&str] = &["pg_dump"];
pub(crate) const CLIENTS: &[&str] = &["psql"];
/// pg_dump's closing comment.
const TRAILER: &str = "-- PostgreSQL database dump complete";

pub(crate) fn trailer() -> &'static str {
    TRAILER
}

/// pg_dump's arguments: plain SQL to stdout, the database from `PGDATABASE`, no owners and
/// no privileges (the load makes the restoring role own everything, and a dump must not need
/// roles the target server may not have), and a bound on the wait for each table's lock.
/// Tables matching `structure` are dumped without their rows (`--exclude-table-data`, which
/// takes the same `*` patterns), in the same consistent snapshot as the rest.
pub(crate) fn dump_args(
    lock_wait: std::time::Duration,
    structure: &super::StructureTables,
) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--format=plain".into(),
        "--no-password".into(),
        "--no-owner".into(),
        "--no-privileges".into(),
        format!("--lock-wait-timeout={}", lock_wait.as_millis().max(1)),
    ];
    v.extend(
        structure
            .patterns()
            .iter()
            .map(|p| format!("--exclude-table-data={p}")),
    );
    v
}

/// A command for `tool` connected to `database` of `s`, through the child's environment only.
pub(crate) fn command(tool: &std::path::Path, s: &ServerUrl, database: &str) -> Command {
    let mut c = Command::new(tool);
    // Anything inherited that could redirect the connection is cleared.
    for v in [
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGHOSTADDR",
        "PGPASSWORD",
        "PGOPTIONS",
    ] {
        c.env_remove(v);
    }
    let host = match &s.socket {
        Some(dir) => dir.to_string_lossy().into_owned(),
        None => s.tool_host().to_string(),
    };
    c.env("PGHOST", host);
    match s.port {
        Some(p) => c.env("PGPORT", p.to_string()),
        None => c.env_remove("PGPORT"),
    };
    if !s.user.is_empty() {
        c.env("PGUSER", &s.user);
    }
    c.env("PGDATABASE", database);
    if let Some(p) = &s.password {
        c.env("PGPASSWORD", p);
    }
    c.env("PGCONNECT_TIMEOUT", "10");
    c.env("PGOPTIONS", "-c client_min_messages=warning");
    c.env("PGAPPNAME", "sitesnap");
    c
}

/// psql arguments for scripts: no psqlrc, quiet, unaligned tuples only, stop at the first error.
pub(crate) fn psql_args() -> Vec<String> {
    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Whether the role can create in `public`, the first object in the database it could not
/// drop (schema or relation in a non-system schema, owned by a role it is not a member of),
/// and whether it is a superuser, `|`-separated.
pub(crate) const PRIVILEGES: &str = r"SELECT has_schema_privilege('public', 'CREATE'),
  coalesce((SELECT format('%s %I.%I', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'relation' END,
      n.nspname, c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
      AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f') AND NOT pg_has_role(c.relowner, 'USAGE')
    ORDER BY 1 LIMIT 1),
   (SELECT format('schema %I', n.nspname) FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
      AND n.nspname NOT LIKE 'pg\_%' AND NOT pg_has_role(n.nspowner, 'USAGE')
    ORDER BY 1 LIMIT 1), ''),
  (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)";

/// `1` when the role may create databases.
pub(crate) const MAY_CREATE_DB: &str = "SELECT (rolcreatedb OR rolsuper)::int \
     FROM pg_catalog.pg_roles WHERE rolname = current_user";

/// A string literal (standard_conforming_strings is on in every supported server).
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted identifier.
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Queries that each yield DROP statements, run in this order. Every statement is computed
/// before any of them runs (names of objects a previous CASCADE removed are still text, and
/// `IF EXISTS` skips them).
const DROPS: &[&str] = &[
    // Every schema but the system ones and public, with everything in it.
    r"SELECT format('DROP SCHEMA IF EXISTS %I CASCADE', n.nspname) FROM pg_catalog.pg_namespace n
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
        AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'",
    // Extensions (the dump creates those it needs again).
    r"SELECT format('DROP EXTENSION IF EXISTS %I CASCADE', e.extname) FROM pg_catalog.pg_extension e
      WHERE e.extname <> 'plpgsql'",
    // Views, tables, sequences of public (indexes, triggers, constraints go with them).
    r"SELECT format('DROP %s IF EXISTS public.%I CASCADE',
        CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
          WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname)
      FROM pg_catalog.pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm', 'r', 'p', 'f', 'S')
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = c.oid AND d.deptype = 'e')",
    // Functions, procedures, aggregates of public.
    r"SELECT format('DROP ROUTINE IF EXISTS public.%I(%s) CASCADE', p.proname,
        pg_catalog.pg_get_function_identity_arguments(p.oid))
      FROM pg_catalog.pg_proc p
      WHERE p.pronamespace = 'public'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass
                        AND d.objid = p.oid AND d.deptype = 'e')",
    // Composite, enum, range types and domains of public.
    r"SELECT format('DROP %s IF EXISTS public.%I CASCADE',
        CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.typname)
      FROM pg_catalog.pg_type t
      WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r', 'm')
        AND (t.typtype <> 'c'
             OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_type'::regclass
                        AND d.objid = t.oid AND d.deptype = 'e')",
];

/// The SQL that drops everything in the database a plain dump recreates: every schema other
/// than the system ones and `public` (with all they hold), every extension but plpgsql, and
/// every view, table, sequence, routine, type and domain in `public` (triggers, indexes and
/// constraints go with their tables). `public` itself stays, with its owner and privileges, as
/// pg_dump expects. Objects belonging to an extension are left to the extension's drop.
pub(crate) fn drop_script() -> String {
    let mut s = String::from("DO $sitesnap$\nDECLARE\n  st text;\n  todo text[];\nBEGIN\n");
    for q in DROPS {
        let _ = write!(
            s,
            "  todo := coalesce(ARRAY({q}), '{{}}');\n  FOREACH st IN ARRAY todo LOOP\n    EXECUTE st;\n  END LOOP;\n"
        );
    }
    s.push_str("END\n$sitesnap$;\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn password_only_in_the_child_environment() {
        let s = ServerUrl {
            user: "site".into(),
            password: Some("s3cr:t@x".into()),
            host: "127.0.0.1".into(),
            port: Some(5432),
            socket: None,
            name: "db".into(),
        };
        let mut c = command(&PathBuf::from("/usr/bin/pg_dump"), &s, "db");
        c.args(dump_args(
            std::time::Duration::from_secs(5),
            &crate::db::StructureTables::default(),
        ));
        assert!(c.get_args().all(|a| !a.to_string_lossy().contains("s3cr")));
        let envs: Vec<_> = c.get_envs().collect();
        assert!(
            envs.iter()
                .any(|(k, v)| *k == "PGPASSWORD" && v.map(|v| v == "s3cr:t@x").unwrap_or(false))
        );
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
