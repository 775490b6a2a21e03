//! Remote definitions (`<repo>/remotes.json`, mode 0600) and S3 credentials. A definition
//! holds the URL, endpoint, region and the path of a credentials file, never a credential.

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The region used when none is given (Garage's default).
pub const DEFAULT_REGION: &str = "garage";

/// One remote as `remote add` recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteDef {
    /// Its name.
    pub name: String,
    /// `s3://BUCKET[/PREFIX]` or `file:///path`.
    pub url: String,
    /// The S3 endpoint URL (`None`: AWS).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The S3 region.
    pub region: String,
    /// A credentials file (0600) to read the S3 keys from instead of the environment.
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
}

/// What a remote URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteUrl {
    /// A bucket and a key prefix (no leading or trailing `/`, may be empty).
    S3 { bucket: String, prefix: String },
    /// A folder (a NAS mount).
    File(PathBuf),
}

impl RemoteDef {
    /// The URL, parsed.
    pub fn parsed(&self) -> Result<RemoteUrl> {
        parse_url(&self.url)
    }
}

/// Parses `s3://BUCKET[/PREFIX]` or `file:///absolute/path`.
pub fn parse_url(url: &str) -> Result<RemoteUrl> {
    let bad = |why: &str| Error::Invalid(format!("remote URL '{url}': {why}"));
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(ok) {
            return Err(bad("the bucket name must be 3-63 of a-z, 0-9, '-', '.'"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".")
            || prefix.contains("//")
            || prefix.chars().any(|c| c.is_control())
        {
            return Err(bad("the prefix must be plain path segments"));
        }
        return Ok(RemoteUrl::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        let p = Path::new(path);
        if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(bad("give an absolute path, file:///mnt/nas/sitesnap"));
        }
        return Ok(RemoteUrl::File(p.to_path_buf()));
    }
    Err(bad("expected s3://BUCKET[/PREFIX] or file:///path"))
}

/// The remotes file of the repository at `root`.
fn file(root: &Path) -> PathBuf {
    root.join("remotes.json")
}

/// Every remote of the repository at `root` (none if it has no remotes file).
pub fn load(root: &Path) -> Result<Vec<RemoteDef>> {
    let f = file(root);
    if !f.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read(&f).at(&f)?;
    serde_json::from_slice(&text).map_err(|e| Error::Corrupt(format!("{}: {e}", f.display())))
}

fn save(root: &Path, defs: &[RemoteDef]) -> Result<()> {
    let text = serde_json::to_vec_pretty(defs).expect("remotes serialize");
    fsutil::write_atomic(&file(root), &text, 0o600)
}

/// The remote called `name`.
pub fn find(root: &Path, name: &str) -> Result<RemoteDef> {
    load(root)?
        .into_iter()
        .find(|d| d.name == name)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no remote named '{name}' in {} (see `sitesnap remote list`)",
                root.display()
            ))
        })
}

/// Adds a remote to the repository at `root` (the folder is created, 0700, if missing, so that
/// a fresh machine can name a remote before `pull`). Everything is checked before writing.
pub fn add(root: &Path, def: RemoteDef) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if def.name.is_empty() || def.name.len() > 64 || !def.name.chars().all(ok) {
        return Err(Error::Invalid(format!(
            "remote name '{}': use 1-64 of A-Z, a-z, 0-9, '-', '_', '.'",
            def.name
        )));
    }
    let url = parse_url(&def.url)?;
    if let (RemoteUrl::File(_), Some(_)) = (&url, &def.endpoint) {
        return Err(Error::Invalid(format!(
            "remote '{}': --endpoint is for s3:// remotes",
            def.name
        )));
    }
    if let Some(e) = &def.endpoint {
        let u =
            url::Url::parse(e).map_err(|_| Error::Invalid(format!("endpoint '{e}': not a URL")))?;
        if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() {
            return Err(Error::Invalid(format!(
                "endpoint '{e}': give http(s)://host[:port] without credentials"
            )));
        }
    }
    if let Some(f) = &def.credentials_file {
        read_credentials_file(f)?;
    }
    let mut defs = load(root)?;
    if defs.iter().any(|d| d.name == def.name) {
        return Err(Error::Invalid(format!(
            "a remote named '{}' already exists",
            def.name
        )));
    }
    if !root.is_dir() {
        fsutil::create_private_dir(root)?;
    }
    defs.push(def);
    save(root, &defs)
}

/// Removes remote `name` (its objects are left where they are).
pub fn remove(root: &Path, name: &str) -> Result<RemoteDef> {
    let def = find(root, name)?;
    let defs: Vec<RemoteDef> = load(root)?.into_iter().filter(|d| d.name != name).collect();
    save(root, &defs)?;
    Ok(def)
}

/// An S3 access key. `Debug` shows neither part.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id.
    pub key_id: String,
    /// Secret access key.
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(***)")
    }
}

impl Credentials {
    /// The credentials of `def`: its credentials file, else the environment.
    pub fn load(def: &RemoteDef) -> Result<Credentials> {
        if let Some(f) = &def.credentials_file {
            return read_credentials_file(f);
        }
        let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
        if id.is_empty() || secret.is_empty() {
            return Err(Error::Invalid(format!(
                "no credentials for remote '{}': set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY or give the remote a --credentials-file",
                def.name
            )));
        }
        Ok(Credentials { key_id: id, secret })
    }
}

/// Reads a credentials file: lines `aws_access_key_id = ...` and `aws_secret_access_key = ...`
/// (the AWS CLI's format; `KEY=value` and upper case are accepted, `[section]` lines and `#`
/// comments are skipped). The file must not be readable by group or others.
pub fn read_credentials_file(f: &Path) -> Result<Credentials> {
    let md = std::fs::metadata(f).at(f)?;
    if md.permissions().mode() & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "credentials file {} is readable by others (mode {:o}); run `chmod 600 {}`",
            f.display(),
            md.permissions().mode() & 0o777,
            f.display()
        )));
    }
    let text = std::fs::read_to_string(f).at(f)?;
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(key_id), Some(secret)) if !key_id.is_empty() && !secret.is_empty() => {
            Ok(Credentials { key_id, secret })
        }
        _ => Err(Error::Invalid(format!(
            "credentials file {}: needs aws_access_key_id and aws_secret_access_key lines",
            f.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            parse_url("s3://my-bucket/servers/web1/").unwrap(),
            RemoteUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "servers/web1".into()
            }
        );
        assert_eq!(
            parse_url("s3://my-bucket").unwrap(),
            RemoteUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse_url("file:///mnt/nas").unwrap(),
            RemoteUrl::File("/mnt/nas".into())
        );
        for bad in [
            "s3://B",
            "s3://ab",
            "s3://bk/../x",
            "file://rel",
            "http://x",
            "ftp://a",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_file_is_read_and_guarded() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("creds");
        std::fs::write(
            &f,
            "[default]\n# c\naws_access_key_id = GKID\nAWS_SECRET_ACCESS_KEY=\"s3cr3t\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_credentials_file(&f).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && !e.contains("s3cr3t"),
            "{e}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = read_credentials_file(&f).unwrap();
        assert_eq!((c.key_id.as_str(), c.secret.as_str()), ("GKID", "s3cr3t"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
