//! The embedded api.video behind `--env local`: `avbatch-serve` started in-process on
//! 127.0.0.1, when this build has the `serve` feature (on by default). Without it, `--env local`
//! is refused up front, naming the feature.

use std::path::Path;

use super::Stop;
use avbatch_api::secret::ApiKey;

/// A local api.video, serving until dropped.
#[cfg(feature = "serve")]
pub struct Local(avbatch_serve::Server);

/// A build without the `serve` feature has no local api.video: no value of this type exists.
#[cfg(not(feature = "serve"))]
pub enum Local {}

impl Local {
    /// Starts the server on `dir` (created if missing) at a free port of 127.0.0.1.
    #[cfg(feature = "serve")]
    pub async fn start(dir: &Path) -> Result<Local, Stop> {
        use anyhow::Context;
        let config = avbatch_serve::ServerConfig::new(dir);
        let server =
            avbatch_serve::Server::start(config, "127.0.0.1:0".parse().expect("an address"))
                .await
                .context("cannot start the local server")?;
        Ok(Local(server))
    }

    /// Refuses: this build has no local api.video.
    #[cfg(not(feature = "serve"))]
    pub async fn start(_dir: &Path) -> Result<Local, Stop> {
        Err(Stop::invalid("this avbatch was built without the `serve` feature: no --env local")
            .hint("build with the default features (`cargo install --path .`), or give --base-url"))
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        #[cfg(feature = "serve")]
        return self.0.url();
        #[cfg(not(feature = "serve"))]
        match *self {}
    }

    /// The API key it made for itself when its folder had none.
    pub fn generated_key(&self) -> Option<&ApiKey> {
        #[cfg(feature = "serve")]
        return self.0.generated_key();
        #[cfg(not(feature = "serve"))]
        match *self {}
    }
}

#[cfg(all(test, not(feature = "serve")))]
mod tests {
    #[tokio::test]
    async fn without_serve_env_local_is_refused_naming_the_feature() {
        let dir = tempfile::tempdir().unwrap();
        let stop = super::Local::start(dir.path()).await.err().expect("no server here");
        assert!(stop.to_string().contains("`serve` feature"), "{stop}");
    }
}
