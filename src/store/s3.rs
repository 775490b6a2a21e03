//! [`S3Backend`]: repository objects in an S3-compatible bucket (AWS S3, Garage, MinIO, ...)
//! through the `object_store` crate, which does the request signing, timeouts and retries with
//! backoff. Keys mirror the local `data/` layout under an optional prefix: a pack is
//! `<prefix>/<xx>/<name>`, a manifest `<prefix>/snapshots/<xx>/<id>`, and so on. A private
//! current-thread tokio runtime drives the requests, so callers stay synchronous; several
//! threads may call at once (each waits on its own request). A PUT is atomic: an object is
//! either complete under its name or absent, so an upload killed half-way leaves nothing.
//! Errors are one line naming the bucket and what failed; credentials never appear in them nor
//! in `Debug`.

use super::backend::{Backend, Incomplete, ObjectInfo, ObjectKind, ObjectName, Upload};
use crate::error::{Error, Result};
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as KeyPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Objects larger than this go up as a multipart upload, in parts of this size.
pub const MULTIPART_PART: usize = 32 << 20;

/// Where the bucket is and who we are to it.
#[derive(Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; empty: the bucket's root).
    pub prefix: String,
    /// The endpoint URL (`http://127.0.0.1:3900`); `None`: AWS for `region`.
    pub endpoint: Option<String>,
    /// The region name (`garage` for Garage).
    pub region: String,
    /// Access key id.
    pub key_id: String,
    /// Secret access key.
    pub secret: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Config({})", self.label())
    }
}

impl S3Config {
    /// `s3://bucket/prefix` (how messages name the remote).
    pub fn label(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Objects in an S3 bucket.
pub struct S3Backend {
    inner: Arc<Inner>,
}

struct Inner {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
    prefix: String,
    label: String,
    endpoint: String,
    bucket: String,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Backend({})", self.inner.label)
    }
}

impl S3Backend {
    /// A backend over the bucket `cfg` names. No request is made yet.
    pub fn new(cfg: &S3Config) -> Result<S3Backend> {
        let label = cfg.label();
        let endpoint = cfg.endpoint.clone().unwrap_or_else(|| "AWS".into());
        let bad = |e: &dyn std::fmt::Display| Error::Remote(format!("{label}: {e}"));
        // HTTPS endpoints use rustls with ring (the build carries no other crypto provider);
        // installing it twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(300));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 4,
            retry_timeout: Duration::from_secs(60),
        };
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.key_id)
            .with_secret_access_key(&cfg.secret)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(true)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        let store = b.build().map_err(|e| bad(&first_line(&e.to_string())))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(&e))?;
        Ok(S3Backend {
            inner: Arc::new(Inner {
                store,
                rt,
                prefix: cfg.prefix.trim_matches('/').to_string(),
                label,
                endpoint,
                bucket: cfg.bucket.clone(),
            }),
        })
    }
}

impl Inner {
    /// The key of an object.
    fn key(&self, name: &ObjectName) -> KeyPath {
        let xx = &name.name[..2];
        let rel = match name.kind.folder() {
            None => format!("{xx}/{}", name.name),
            Some(f) => format!("{f}/{xx}/{}", name.name),
        };
        self.with_prefix(&rel)
    }

    fn with_prefix(&self, rel: &str) -> KeyPath {
        if self.prefix.is_empty() {
            KeyPath::from(rel)
        } else {
            KeyPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// One line for a failed request about `what`.
    fn err(&self, what: &str, e: object_store::Error) -> Error {
        let full = full_text(&e);
        let no_bucket = format!("bucket '{}' does not exist", self.bucket);
        let denied = format!(
            "access denied (check the credentials and their rights on bucket '{}')",
            self.bucket
        );
        let cause = match &e {
            _ if full.contains("NoSuchBucket") => no_bucket,
            object_store::Error::NotFound { .. } => "not found (is the bucket there?)".to_string(),
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => denied,
            _ if [
                "403 Forbidden",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "AccessDenied",
            ]
            .iter()
            .any(|m| full.contains(m)) =>
            {
                denied
            }
            _ if full.contains("404 Not Found") => no_bucket,
            other => deepest_cause(other),
        };
        Error::Remote(format!(
            "{} at {}: {what}: {cause}",
            self.label, self.endpoint
        ))
    }

    fn put(&self, key: &KeyPath, data: Vec<u8>) -> std::result::Result<(), object_store::Error> {
        self.rt.block_on(async {
            if data.len() <= MULTIPART_PART {
                self.store.put(key, PutPayload::from(data)).await?;
                return Ok(());
            }
            let up = self.store.put_multipart(key).await?;
            let mut w = WriteMultipart::new_with_chunk_size(up, MULTIPART_PART);
            for part in data.chunks(MULTIPART_PART) {
                if let Err(e) = w.wait_for_capacity(4).await {
                    w.abort().await.ok();
                    return Err(e);
                }
                w.write(part);
            }
            w.finish().await.map(|_| ())
        })
    }
}

/// An error and all its causes, as one text (to recognise S3 error codes in response bodies).
fn full_text(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push('\n');
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The innermost cause of an error, first line only (a transport error's "Connection refused").
fn deepest_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    first_line(&cur.to_string())
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 200 {
        l.chars().take(200).collect::<String>() + "..."
    } else {
        l.to_string()
    }
}

/// The object a key names, if it is one of `kind` (`rel` is the key without the prefix).
fn parse_key(kind: ObjectKind, rel: &str) -> Option<ObjectName> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (xx, name) = match (kind.folder(), parts.as_slice()) {
        (None, [xx, name]) => (*xx, *name),
        (Some(f), [folder, xx, name]) if *folder == f => (*xx, *name),
        _ => return None,
    };
    (kind.is_name(name) && name.starts_with(xx) && xx.len() == 2)
        .then(|| ObjectName::new(kind, name))
}

impl Backend for S3Backend {
    fn list(&self, kind: ObjectKind) -> Result<Vec<ObjectInfo>> {
        let i = &self.inner;
        let prefix = match kind.folder() {
            None if i.prefix.is_empty() => None,
            None => Some(KeyPath::from(i.prefix.as_str())),
            Some(f) => Some(i.with_prefix(f)),
        };
        let metas: Vec<object_store::ObjectMeta> =
            i.rt.block_on(i.store.list(prefix.as_ref()).try_collect())
                .map_err(|e| i.err(&format!("list {}s", kind.label()), e))?;
        let strip = if i.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", i.prefix)
        };
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.to_string();
                let rel = key.strip_prefix(&strip)?;
                parse_key(kind, rel).map(|name| ObjectInfo { name, size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        Ok(out)
    }

    fn size(&self, name: &ObjectName) -> Result<Option<u64>> {
        let i = &self.inner;
        match i.rt.block_on(i.store.head(&i.key(name))) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(i.err(&format!("look up {name}"), e)),
        }
    }

    fn modified(&self, name: &ObjectName) -> Result<Option<std::time::SystemTime>> {
        let i = &self.inner;
        match i.rt.block_on(i.store.head(&i.key(name))) {
            Ok(m) => Ok(Some(m.last_modified.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(i.err(&format!("look up {name}"), e)),
        }
    }

    fn read_range(&self, name: &ObjectName, offset: u64, len: usize) -> Result<Vec<u8>> {
        let i = &self.inner;
        let range = offset..offset + len as u64;
        let b =
            i.rt.block_on(i.store.get_range(&i.key(name), range))
                .map_err(|e| i.err(&format!("read {name}"), e))?;
        if b.len() != len {
            return Err(Error::Corrupt(format!(
                "{}: {name} is shorter than expected",
                i.label
            )));
        }
        Ok(b.to_vec())
    }

    fn read(&self, name: &ObjectName) -> Result<Vec<u8>> {
        let i = &self.inner;
        let b =
            i.rt.block_on(async { i.store.get(&i.key(name)).await?.bytes().await })
                .map_err(|e| i.err(&format!("read {name}"), e))?;
        Ok(b.to_vec())
    }

    fn create(&self, kind: ObjectKind) -> Result<Box<dyn Upload>> {
        Ok(Box::new(S3Upload {
            inner: self.inner.clone(),
            kind,
            buf: Vec::new(),
        }))
    }

    fn remove(&self, name: &ObjectName) -> Result<bool> {
        let i = &self.inner;
        let key = i.key(name);
        if self.size(name)?.is_none() {
            return Ok(false);
        }
        i.rt.block_on(i.store.delete(&key))
            .map_err(|e| i.err(&format!("remove {name}"), e))?;
        Ok(true)
    }

    /// `object_store` does not list unfinished multipart uploads; a failed multipart upload
    /// is aborted when it fails, and a bucket lifecycle rule removes what a kill leaves.
    fn incomplete(&self) -> Result<Vec<Incomplete>> {
        Ok(Vec::new())
    }

    fn remove_incomplete(&self, _id: &str) -> Result<bool> {
        Ok(false)
    }
}

/// An object being written to the bucket: buffered, sent whole (one PUT, or a multipart
/// upload when large) at commit.
struct S3Upload {
    inner: Arc<Inner>,
    kind: ObjectKind,
    buf: Vec<u8>,
}

impl Write for S3Upload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Upload for S3Upload {
    fn flush_all(&mut self) -> Result<()> {
        Ok(())
    }

    fn commit(self: Box<Self>, name: &ObjectName) -> Result<()> {
        debug_assert_eq!(self.kind, name.kind);
        let i = &self.inner;
        i.put(&i.key(name), self.buf)
            .map_err(|e| i.err(&format!("upload {name}"), e))
    }

    fn discard(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_to_their_objects() {
        let pack = "ab".to_string() + &"0".repeat(62);
        assert_eq!(
            parse_key(ObjectKind::Pack, &format!("ab/{pack}")),
            Some(ObjectName::pack(&pack))
        );
        assert_eq!(parse_key(ObjectKind::Pack, &format!("cd/{pack}")), None);
        assert_eq!(
            parse_key(ObjectKind::Pack, &format!("blobs/ab/{pack}")),
            None
        );
        assert_eq!(
            parse_key(ObjectKind::BlobList, &format!("blobs/ab/{pack}")),
            Some(ObjectName::new(ObjectKind::BlobList, &pack))
        );
        let id = "ab12".to_string() + &"3".repeat(12);
        assert_eq!(
            parse_key(ObjectKind::Snapshot, &format!("snapshots/ab/{id}")),
            Some(ObjectName::new(ObjectKind::Snapshot, &id))
        );
        assert_eq!(
            parse_key(ObjectKind::Pin, &format!("snapshots/ab/{id}")),
            None
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let cfg = S3Config {
            bucket: "b".into(),
            prefix: "p".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            region: "garage".into(),
            key_id: "GKKEYID".into(),
            secret: "SECRETSECRET".into(),
        };
        let b = S3Backend::new(&cfg).unwrap();
        let d = format!("{cfg:?} {b:?}");
        assert!(!d.contains("SECRETSECRET") && !d.contains("GKKEYID"), "{d}");
        assert!(d.contains("s3://b/p"), "{d}");
    }
}
