//! The S3 server of the remote tests: a Garage node started by `.ci/garage.sh` (from `.ci/run`,
//! or by hand: `eval "$(.ci/garage.sh start)"`), whose endpoint, bucket and key the tests read
//! from the environment it exports. Without it the S3 tests are skipped with a message, except
//! under `CI=true`, where a missing Garage fails them.

use super::db::ci;

/// The test bucket and key.
#[derive(Clone)]
pub struct S3Env {
    pub endpoint: String,
    /// `AWS_REGION` (`.ci/garage.sh` exports `garage`), default `garage`.
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

impl S3Env {
    /// A remote URL in the test bucket under a prefix of its own (tests share the bucket).
    pub fn url(&self, tag: &str) -> String {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        format!("s3://{}/{tag}-{}", self.bucket, hex::encode(b))
    }

    /// `remote add NAME URL` arguments for this server: endpoint and region.
    pub fn add_args<'a>(&'a self, name: &'a str, url: &'a str) -> Vec<&'a str> {
        vec![
            "remote",
            "add",
            name,
            url,
            "--endpoint",
            &self.endpoint,
            "--region",
            &self.region,
        ]
    }

    /// A client of the bucket and prefix of `url` (made by [`S3Env::url`]), to look at what
    /// the server holds.
    #[cfg(feature = "s3")]
    pub fn server(&self, url: &str) -> sitesnap::store::S3Backend {
        let (bucket, prefix) = url["s3://".len()..].split_once('/').unwrap();
        let cfg = sitesnap::store::S3Config {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint.clone()),
            region: self.region.clone(),
            key_id: self.key_id.clone(),
            secret: self.secret.clone(),
        };
        sitesnap::store::S3Backend::new(&cfg).unwrap()
    }

    /// The credentials as environment variables for a run.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
        ]
    }
}

/// The Garage the environment names, or None (skipped, with a message) when there is none and
/// CI is not true. A build without the `s3` feature has no S3 client: its S3 tests are
/// skipped, under CI too (CI builds the default features).
pub fn garage() -> Option<S3Env> {
    if cfg!(not(feature = "s3")) {
        eprintln!("SKIPPED: built without the s3 feature");
        return None;
    }
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        get("S3_ENDPOINT"),
        get("S3_BUCKET"),
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(key_id), Some(secret)) => Some(S3Env {
            endpoint,
            region: get("AWS_REGION").unwrap_or_else(|| "garage".into()),
            bucket,
            key_id,
            secret,
        }),
        _ => {
            let msg = "no S3 server: S3_ENDPOINT, S3_BUCKET, AWS_ACCESS_KEY_ID and \
                       AWS_SECRET_ACCESS_KEY are not set (run `eval \"$(.ci/garage.sh start)\"`)";
            if ci() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED (CI is not true): {msg}");
            None
        }
    }
}
