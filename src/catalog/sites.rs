//! Sites: registering, updating, finding and removing them, and their retention policy.

use super::{Catalog, time_str};
use crate::crypto::Binding;
use crate::db::StructureTables;
use crate::error::{Error, Result};
use rusqlite::{OptionalExtension, params};
use std::path::{Path, PathBuf};

/// A site as registered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteRecord {
    /// The site's URI (its name).
    pub uri: String,
    /// The platform it runs on.
    pub platform: PathBuf,
    /// Its directory, relative to the platform.
    pub site_dir: String,
    /// Its database URL (never serialized: it may hold a password).
    #[serde(skip)]
    pub db_url: Option<String>,
    /// Binding files (vhost, cron, ...) outside the platform.
    pub bindings: Vec<PathBuf>,
    /// Its retention policy (JSON).
    pub policy: Option<String>,
    /// Paths that belong to the site alone outside its site folder (a private files folder, a
    /// config sync folder), relative to the platform.
    pub extra_paths: Vec<String>,
    /// Tables dumped without their rows; `None`: the default list.
    pub structure_tables: Option<StructureTables>,
}

/// The catalogue's text for a structure table list (NULL: the default).
fn structure_text(t: &Option<StructureTables>) -> Option<String> {
    t.as_ref().map(StructureTables::to_list)
}

/// The prefix of a sealed database URL in the catalogue (then hex of the sealed bytes).
const SEALED_PREFIX: &str = "sealed:";

impl Catalog {
    /// The database URL as stored in the catalogue: sealed (bound to the site's URI) in an
    /// encrypted repository.
    fn store_url(&self, uri: &str, url: Option<&str>) -> Result<Option<String>> {
        match (&self.sealing, url) {
            (Some(k), Some(u)) => {
                let sealed = k.seal(Binding::CatalogSecret("sites.db_url", uri), u.as_bytes())?;
                Ok(Some(format!("{SEALED_PREFIX}{}", hex::encode(sealed))))
            }
            (_, u) => Ok(u.map(str::to_string)),
        }
    }

    /// Opens a sealed database URL of a site row.
    fn open_url(&self, mut s: SiteRecord) -> Result<SiteRecord> {
        let Some(hexed) = s
            .db_url
            .as_deref()
            .and_then(|u| u.strip_prefix(SEALED_PREFIX))
        else {
            return Ok(s);
        };
        let what = format!("the database URL of site '{}'", s.uri);
        let k = self.sealing.as_ref().ok_or_else(|| {
            Error::Invalid(format!(
                "{what} is sealed, and the repository is not unlocked"
            ))
        })?;
        let sealed = hex::decode(hexed).map_err(|_| Error::Corrupt(format!("{what}: bad hex")))?;
        let plain = k.open(
            Binding::CatalogSecret("sites.db_url", &s.uri),
            &sealed,
            &what,
        )?;
        s.db_url = Some(
            String::from_utf8(plain).map_err(|_| Error::Corrupt(format!("{what}: not UTF-8")))?,
        );
        Ok(s)
    }

    /// Registers a new site (an error if the URI is taken).
    pub fn add_site(&self, s: &SiteRecord) -> Result<()> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO sites (uri, platform, site_dir, db_url, bindings, policy, created,
                extra_paths, structure_tables)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                s.uri,
                s.platform.to_string_lossy(),
                s.site_dir,
                self.store_url(&s.uri, s.db_url.as_deref())?,
                serde_json::to_string(&s.bindings).expect("paths serialize"),
                s.policy,
                time_str(&crate::fsutil::now()),
                serde_json::to_string(&s.extra_paths).expect("paths serialize"),
                structure_text(&s.structure_tables),
            ],
        )?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "site '{}' is already registered",
                s.uri
            )));
        }
        Ok(())
    }

    /// Updates a registered site.
    pub fn update_site(&self, s: &SiteRecord) -> Result<()> {
        self.conn.execute(
            "UPDATE sites SET platform = ?2, site_dir = ?3, db_url = ?4, bindings = ?5, policy = ?6,
                extra_paths = ?7, structure_tables = ?8
             WHERE uri = ?1",
            params![
                s.uri,
                s.platform.to_string_lossy(),
                s.site_dir,
                self.store_url(&s.uri, s.db_url.as_deref())?,
                serde_json::to_string(&s.bindings).expect("paths serialize"),
                s.policy,
                serde_json::to_string(&s.extra_paths).expect("paths serialize"),
                structure_text(&s.structure_tables),
            ],
        )?;
        Ok(())
    }

    fn site_from_row(r: &rusqlite::Row) -> rusqlite::Result<SiteRecord> {
        let bindings: String = r.get(4)?;
        Ok(SiteRecord {
            uri: r.get(0)?,
            platform: PathBuf::from(r.get::<_, String>(1)?),
            site_dir: r.get(2)?,
            db_url: r.get(3)?,
            bindings: serde_json::from_str(&bindings).unwrap_or_default(),
            policy: r.get(5)?,
            extra_paths: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
            // A stored list is validated when set; one that no longer parses dumps everything.
            structure_tables: r
                .get::<_, Option<String>>(7)?
                .map(|t| StructureTables::parse(&t).unwrap_or_else(|_| StructureTables::none())),
        })
    }

    /// A site by URI, if registered.
    pub fn find_site(&self, uri: &str) -> Result<Option<SiteRecord>> {
        self.conn
            .query_row(
                "SELECT uri, platform, site_dir, db_url, bindings, policy, extra_paths, structure_tables FROM sites WHERE uri = ?1",
                [uri],
                Self::site_from_row,
            )
            .optional()?
            .map(|s| self.open_url(s))
            .transpose()
    }

    /// A site by URI (an error if unknown).
    pub fn site(&self, uri: &str) -> Result<SiteRecord> {
        self.find_site(uri)?
            .ok_or_else(|| Error::UnknownSite(uri.to_string()))
    }

    /// Every site, by URI.
    pub fn sites(&self) -> Result<Vec<SiteRecord>> {
        let mut st = self.conn.prepare(
            "SELECT uri, platform, site_dir, db_url, bindings, policy, extra_paths, structure_tables FROM sites ORDER BY uri",
        )?;
        let rows: Vec<SiteRecord> = st
            .query_map([], Self::site_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(|s| self.open_url(s)).collect()
    }

    /// Removes a site; with `forget_snapshots` its snapshots go too (their data stays until gc).
    pub fn remove_site(&self, uri: &str, forget_snapshots: bool) -> Result<()> {
        self.site(uri)?;
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM snapshots WHERE site = ?1",
            [uri],
            |r| r.get(0),
        )?;
        if n > 0 && !forget_snapshots {
            return Err(Error::Refused(format!(
                "site '{uri}' has {n} snapshot(s); add --forget-snapshots to remove it with them"
            )));
        }
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM snapshots WHERE site = ?1", [uri])?;
        tx.execute("DELETE FROM sites WHERE uri = ?1", [uri])?;
        tx.commit()?;
        Ok(())
    }

    /// Stores (or clears) a site's retention policy (JSON).
    pub fn set_policy(&self, uri: &str, policy: Option<&str>) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE sites SET policy = ?2 WHERE uri = ?1",
            params![uri, policy],
        )?;
        if n == 0 {
            return Err(Error::UnknownSite(uri.to_string()));
        }
        Ok(())
    }

    /// The web root stored for a platform (relative to it; `""` is the platform root).
    pub fn platform_web_root(&self, platform: &Path) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT web_root FROM platforms WHERE path = ?1",
                [platform.to_string_lossy()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores a platform's web root (relative to it; `""` is the platform root).
    pub fn set_platform_web_root(&self, platform: &Path, web_root: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO platforms (path, web_root) VALUES (?1, ?2)
             ON CONFLICT(path) DO UPDATE SET web_root = excluded.web_root",
            params![platform.to_string_lossy(), web_root],
        )?;
        Ok(())
    }
}
