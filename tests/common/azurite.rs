//! A real Azure Blob Storage server for tests: Azurite, Microsoft's own emulator (npm
//! `azurite`), on 127.0.0.1 at a port it picks, its telemetry off, killed on drop. It is
//! installed once per target directory, under `target/test-node/azurite`, the path `.ci/run`
//! installs it at before the tests run.
//!
//! Azurite needs Node.js, which a machine with only the Rust toolchain and Python lacks: there
//! [`start`] prints `SKIPPED` and gives `None`, unless `AVBATCH_REQUIRE_AZURITE=1` (as `.ci/run`
//! sets), under which a missing Node.js fails the test instead.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Sha256;

/// What `.ci/run` installs too; keep the two in step.
pub const PACKAGE: &str = "azurite@3.35.0";
/// The emulator's account and its published key (Azurite's documentation; no secret).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Written last into the install folder: without it, the install is unfinished.
const COMPLETE: &str = ".complete";

/// `target/test-node/azurite`, made if missing; `None` when npm is not on this machine and the
/// tests may skip. Tests run at once: a lock file lets one install while the others wait.
fn install() -> Option<PathBuf> {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent");
    let root = target.join("test-node");
    let dir = root.join("azurite");
    if dir.join(COMPLETE).exists() {
        return Some(dir);
    }
    let npm = Command::new("npm").arg("--version").stdout(Stdio::null()).status();
    if !npm.is_ok_and(|s| s.success()) {
        let required = std::env::var("AVBATCH_REQUIRE_AZURITE").is_ok_and(|v| v == "1");
        assert!(!required, "AVBATCH_REQUIRE_AZURITE=1 but there is no npm to install Azurite");
        eprintln!("SKIPPED: Azurite needs Node.js and npm, which this machine lacks");
        return None;
    }
    std::fs::create_dir_all(&root).expect("create target/test-node");
    let lock = std::fs::File::create(root.join("azurite.lock")).expect("create the install lock");
    lock.lock().expect("take the install lock");
    if !dir.join(COMPLETE).exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the install folder");
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .arg(PACKAGE)
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "npm install {PACKAGE} into {} failed (is the npm registry reachable?)",
            dir.display()
        );
        std::fs::write(dir.join(COMPLETE), "").expect("mark the install complete");
    }
    Some(dir)
}

/// A running Azurite blob service; killed on drop.
pub struct Azurite {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _data: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Azurite's blob service on 127.0.0.1, or `None` when the test may skip (see the
/// module's documentation).
pub fn start() -> Option<Azurite> {
    let dir = install()?;
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(dir.join("node_modules/.bin/azurite-blob"))
        .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--disableTelemetry"])
        .args(["--skipApiVersionCheck", "--silent", "--location"])
        .arg(data.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start azurite-blob");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (url_tx, url_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // It names the port it bound; keep draining after, or a full pipe would stall it.
        let mut url_tx = Some(url_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("listens on http://127.0.0.1:") {
                let url = line[at + "listens on ".len()..].trim().to_owned();
                if let Some(tx) = url_tx.take() {
                    let _ = tx.send(url);
                }
            }
        }
    });
    let Ok(url) = url_rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = child.kill();
        panic!("Azurite did not say where it listens within 60 s");
    };
    Some(Azurite { child, url, _data: data })
}

impl Azurite {
    /// The environment the code under test reads: object_store's emulator settings.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_with(ACCOUNT_KEY)
    }

    /// The same with another account key (a wrong one is refused).
    pub fn env_with(&self, key: &str) -> Vec<(String, String)> {
        [
            ("AZURE_STORAGE_USE_EMULATOR", "true"),
            ("AZURITE_BLOB_STORAGE_URL", self.url.as_str()),
            ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT),
            ("AZURE_STORAGE_ACCOUNT_KEY", key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// `PUT /ACCOUNT/NAME?restype=container`, signed with the account's shared key by hand:
    /// object_store makes no containers.
    pub async fn create_container(&self, name: &str) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        // VERB and eleven empty standard headers, then the x-ms- headers and the resource.
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
             /{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(ACCOUNT_KEY).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let resp = reqwest::Client::new()
            .put(format!("{}/{ACCOUNT}/{name}?restype=container", self.url))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Content-Length", "0")
            .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"))
            .send()
            .await
            .expect("create a container");
        let status = resp.status();
        assert!(
            status.is_success(),
            "create container {name}: {status} {}",
            resp.text().await.unwrap()
        );
    }

    /// The container's store, as the tests' own client.
    fn store(&self, container: &str) -> impl ObjectStore {
        MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_access_key(ACCOUNT_KEY)
            .with_endpoint(format!("{}/{ACCOUNT}", self.url))
            .with_allow_http(true)
            .with_container_name(container)
            .build()
            .expect("an Azure store for Azurite")
    }

    /// Writes `bytes` as blob `name` of `container`.
    pub async fn put(&self, container: &str, name: &str, bytes: Vec<u8>) {
        self.store(container).put(&Path::from(name), bytes.into()).await.expect("put a blob");
    }

    /// Deletes blob `name` of `container`.
    pub async fn delete(&self, container: &str, name: &str) {
        self.store(container).delete(&Path::from(name)).await.expect("delete a blob");
    }
}
