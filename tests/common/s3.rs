//! A real S3 server for tests: moto's server (PyPI `moto[s3]`), on 127.0.0.1 at a port it picks,
//! killed on drop. Its Python virtual environment is made once per target directory, under
//! `target/test-venvs/moto`, the path `.ci/run` makes it at before the tests run.
//!
//! Tests give the code under test [`Moto::env`]: keys are always set, so object_store never
//! asks the instance-metadata address (169.254.169.254) for credentials.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::ObjectStoreExt;

/// What `.ci/run` installs too; keep the two in step.
pub const MOTO_PACKAGES: &[&str] = &["moto[s3]==5.2.5", "flask", "flask-cors"];
/// The keys every test uses against a moto that does not check credentials.
pub const KEY_ID: &str = "test";
pub const SECRET: &str = "test";
/// Written last into the virtual environment: without it, the environment is unfinished.
const COMPLETE: &str = ".complete";

/// `target/test-venvs/moto`, the environment moto runs from, made if missing. Test binaries run
/// at once: a lock file lets one make it while the others wait.
pub fn venv() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`, whatever CARGO_TARGET_DIR says.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent");
    let root = target.join("test-venvs");
    let venv = root.join("moto");
    if venv.join(COMPLETE).exists() {
        return venv;
    }
    std::fs::create_dir_all(&root).expect("create target/test-venvs");
    let lock = std::fs::File::create(root.join("moto.lock")).expect("create the venv lock");
    lock.lock().expect("take the venv lock");
    if !venv.join(COMPLETE).exists() {
        // A run killed half way leaves an unfinished environment: start again.
        let _ = std::fs::remove_dir_all(&venv);
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {} failed", venv.display());
        let installed = Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(MOTO_PACKAGES)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "pip install {MOTO_PACKAGES:?} into {} failed (is PyPI reachable?)",
            venv.display()
        );
        std::fs::write(venv.join(COMPLETE), "").expect("mark the venv complete");
    }
    venv
}

/// A running moto server; killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    http: reqwest::Client,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto on 127.0.0.1 and waits until it accepts connections (at most 30 s).
pub fn start() -> Moto {
    let venv = venv();
    let mut child = Command::new(venv.join("bin/python"))
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start moto's server");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (port_tx, port_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Werkzeug names the port it bound; then it logs every request here: keep draining, or
        // a full pipe would stall the server.
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let (Some(tx), Ok(port)) = (port_tx.take(), digits.parse::<u16>()) {
                    let _ = tx.send(port);
                }
            }
        }
    });
    let port = match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            panic!("moto's server did not say which port it took within 30 s");
        }
    };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "moto does not answer on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Moto { child, endpoint: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() }
}

impl Moto {
    /// The environment the code under test reads, with the keys moto takes by default.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with(KEY_ID, SECRET)
    }

    /// The environment with these keys.
    pub fn env_with(&self, key_id: &str, secret: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> String {
        let resp = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{what}: {status} {body}");
        body
    }

    /// `PUT /bucket`. Unsigned: moto checks no credentials until [`Moto::check_credentials`].
    pub async fn create_bucket(&self, bucket: &str) {
        let url = format!("{}/{bucket}", self.endpoint);
        self.send(self.http.put(url), &format!("create bucket {bucket}")).await;
    }

    /// A client for `bucket` with the default keys. moto refuses unsigned writes over an
    /// object that exists, so objects are written signed; object_store signs.
    fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .build()
            .expect("an S3 client for moto")
    }

    /// Writes `bytes` at `bucket/key`; returns the object's ETag as S3 sends it (quoted).
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> String {
        let put = self.bucket(bucket).put(&Path::from(key), bytes.into()).await;
        let put = put.unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"));
        put.e_tag.expect("S3 gives an ETag")
    }

    /// Deletes `bucket/key`.
    pub async fn delete(&self, bucket: &str, key: &str) {
        let deleted = self.bucket(bucket).delete(&Path::from(key)).await;
        deleted.unwrap_or_else(|e| panic!("delete {bucket}/{key}: {e}"));
    }

    /// One IAM call. moto's single server tells services apart by the credential scope of the
    /// `Authorization` header, which it does not verify before [`Moto::check_credentials`].
    async fn iam(&self, form: &[(&str, &str)]) -> String {
        let auth = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/iam/aws4_request, \
                    SignedHeaders=host, Signature=0";
        let mut form = form.to_vec();
        form.push(("Version", "2010-05-08"));
        let request = self.http.post(&self.endpoint).header("Authorization", auth).form(&form);
        self.send(request, &format!("IAM {}", form[0].1)).await
    }

    /// From now on moto checks every request's signature: makes an IAM user allowed everything
    /// and returns its key id and secret. Make buckets and objects first (the harness's own
    /// calls are unsigned).
    pub async fn check_credentials(&self) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", "avbatch")]).await;
        let policy = r#"{"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "avbatch"),
            ("PolicyName", "all"),
            ("PolicyDocument", policy),
        ])
        .await;
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", "avbatch")]).await;
        let field = |name: &str| {
            let open = format!("<{name}>");
            let start =
                key.find(&open).unwrap_or_else(|| panic!("no {name} in {key}")) + open.len();
            let end = start + key[start..].find('<').expect("a closing tag");
            key[start..end].to_owned()
        };
        let pair = (field("AccessKeyId"), field("SecretAccessKey"));
        // Checks start after `0` more unchecked requests.
        let reset = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("Content-Type", "text/plain")
            .body("0");
        self.send(reset, "moto-api/reset-auth").await;
        pair
    }
}
