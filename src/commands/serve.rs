//! `avbatch serve`: the local api.video, started from its flags.

use anyhow::Context;

use std::net::SocketAddr;

use super::{Exit, Outcome};
use crate::cli::ServeArgs;
use crate::config::{read_secret_file, ConfigError};
use crate::output::say_warning;
use avbatch_api::secret::ApiKey;
use avbatch_serve::{Server, ServerConfig};

/// Runs `avbatch serve` until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> Outcome {
    let config = server_config(&args)?;
    if let Some(warning) = exposed(args.addr) {
        say_warning(&warning);
    }
    let server = Server::start(config, args.addr).await.context("cannot start the server")?;
    println!("listening on {}", server.url());
    println!("data folder: {}", args.server.data_dir.display());
    if let Some(key) = server.generated_key() {
        // The server's own key, made for the person who started it: showing it is the point.
        println!(
            "api key: {} (generated; set AVBATCH_SERVE_API_KEYS or pass --api-key-file to choose \
             one)",
            key.expose()
        );
    }
    super::shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    let served = server.served().to_string();
    server.shutdown().await.context("the server stopped with an error")?;
    // Last on stdout, for benchmarks that compare the requests each uploader needs.
    println!("served {served}");
    Ok(Exit::Done)
}

/// What listening on `addr` exposes, when other machines can reach it (not a loopback
/// address): the double is for tests, without TLS, and whoever reaches it with its key reads
/// and writes its videos.
fn exposed(addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    if ip.is_loopback() {
        return None;
    }
    let reach = match ip.is_unspecified() {
        true => "every network interface of this machine",
        false => "a network interface of this machine",
    };
    Some(format!(
        "listening on `{addr}`, {reach}: other machines can reach this local api.video, a test \
         server without TLS, and whoever has its key reads and writes its videos; pass --addr \
         127.0.0.1:PORT to keep it to this machine"
    ))
}

/// The server configuration `serve`'s flags describe; reads --api-key-file.
pub fn server_config(args: &ServeArgs) -> Result<ServerConfig, ConfigError> {
    // Checked here rather than by clap, whose message would name --api-key even when the
    // keys came from the environment.
    let api_keys = match (&args.api_key_file, args.api_keys.iter().all(|k| k.trim().is_empty())) {
        (Some(_), false) => {
            return Err(ConfigError {
                message: "the API keys are given twice: by --api-key (or AVBATCH_SERVE_API_KEYS) \
                          and by --api-key-file"
                    .into(),
                hint: Some("keep one of them".into()),
            })
        }
        (Some(path), true) => read_secret_file(path, "API key")?
            .lines()
            .map(ApiKey::new)
            .filter(|k| !k.is_empty())
            .collect(),
        (None, _) => args.api_keys.iter().map(ApiKey::new).filter(|k| !k.is_empty()).collect(),
    };
    Ok(ServerConfig { api_keys, ..args.server.clone() })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use avbatch_serve::{ConnectionConfig, FaultConfig};

    #[test]
    fn only_an_address_other_machines_reach_is_said() {
        for quiet in ["127.0.0.1:8080", "[::1]:0", "127.0.0.2:0"] {
            assert_eq!(exposed(quiet.parse().unwrap()), None, "{quiet}");
        }
        let all = exposed("0.0.0.0:8080".parse().unwrap()).unwrap();
        assert!(all.contains("`0.0.0.0:8080`, every network interface"), "{all}");
        assert!(exposed("[::]:0".parse().unwrap()).is_some());
        assert!(exposed("192.168.1.5:0".parse().unwrap()).unwrap().contains("a network interface"));
    }

    #[test]
    fn keys_given_twice_are_refused() {
        let twice =
            Cli::try_parse_from(["avbatch", "serve", "--api-key", "k", "--api-key-file", "f"])
                .unwrap();
        let Command::Serve(args) = twice.command else { panic!("parsed a serve") };
        assert!(server_config(&args)
            .unwrap_err()
            .message
            .starts_with("the API keys are given twice"));
    }

    #[test]
    fn serve_flags_build_a_config() {
        let cli = Cli::try_parse_from([
            "avbatch",
            "serve",
            "--api-key",
            "k",
            "--rate-limit",
            "uploads=5/1s",
            "--bandwidth",
            "2MiB",
            "--fail-rate",
            "0.1",
            "--storm",
            "10s:1s",
            "--latency",
            "20ms",
            "--encoding-fail-rate",
            "0.2",
            "--source-timeout",
            "3s",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("parsed a serve") };
        let cfg = server_config(&args).unwrap();
        assert_eq!(cfg.api_keys, vec![ApiKey::new("k")]);
        assert_eq!(cfg.faults.bandwidth, Some(2 * 1024 * 1024));
        assert_eq!(cfg.faults.latency, Duration::from_millis(20));
        assert_eq!(cfg.rate_limits.uploads.unwrap().limit, 5);
        // Flags of the same field name in different groups stay apart.
        assert_eq!((cfg.faults.fail_rate, cfg.faults.encoding.fail_rate), (0.1, 0.2));
        assert_eq!(cfg.faults.source_pull.timeout, Duration::from_secs(3));
        assert!(Cli::try_parse_from(["avbatch", "serve", "--fail-rate", "2"]).is_err());
    }

    #[test]
    fn serve_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["avbatch", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("parsed a serve") };
        let cfg = server_config(&args).unwrap();
        assert_eq!(cfg.connections, ConnectionConfig::default());
        // Every setting: what the flags default to is what the library defaults to.
        assert_eq!(cfg.faults, FaultConfig::default());
        let library = ServerConfig::new("avbatch-data");
        assert_eq!((cfg.token_ttl, cfg.rate_limits), (library.token_ttl, library.rate_limits));
        assert_eq!(cfg.data_dir, library.data_dir);
        let cli = Cli::try_parse_from([
            "avbatch",
            "serve",
            "--metadata-match",
            "contains",
            "--unfinished-ttl",
            "2s",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("parsed a serve") };
        assert_eq!(
            server_config(&args).unwrap().faults.metadata_match,
            avbatch_serve::MetadataMatch::Contains
        );
        assert_eq!(server_config(&args).unwrap().faults.unfinished_ttl, Duration::from_secs(2));
        assert!(Cli::try_parse_from(["avbatch", "serve", "--metadata-match", "fuzzy"]).is_err());
    }

    #[test]
    fn source_flags_are_bounded() {
        let parse =
            |extra: &[&str]| Cli::try_parse_from(["avbatch", "serve"].iter().chain(extra).copied());
        let Command::Serve(args) =
            parse(&["--source-max-bytes", "1MiB", "--source-timeout", "2s"]).unwrap().command
        else {
            panic!("parsed a serve")
        };
        let pull = server_config(&args).unwrap().faults.source_pull;
        assert_eq!((pull.max_bytes, pull.timeout), (1024 * 1024, Duration::from_secs(2)));
        for bad in [
            ["--source-max-bytes", "0"],
            ["--source-max-bytes", "2TiB"],
            ["--source-timeout", "0s"],
            ["--source-timeout", "2days"],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}
