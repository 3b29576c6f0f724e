//! AWS credentials found the way the AWS CLI and SDKs find them, where object_store does not
//! look itself: a profile in the shared `credentials` and `config` files, and the CLI's names for
//! the instance-metadata settings. object_store reads the rest of the chain from `AWS_*`: keys, a
//! web identity token, a container's credentials, and last the instance metadata service.
//!
//! The order is the CLI's: keys in the environment; the profile (`AWS_PROFILE`, else `default`);
//! a web identity token; a container's credentials; the instance metadata service. What a
//! profile asks for that avbatch does not do (run a `credential_process`, sign in with SSO,
//! assume a role) is an error saying how to hand it the keys instead, never a silent fallback
//! to other credentials.

use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};
use object_store::aws::AmazonS3ConfigKey as Key;

use super::keys::Source;

/// What [`settings`] adds to object_store's own reading of `AWS_*`.
#[derive(Debug)]
pub(super) struct Settings {
    /// Settings for the builder, applied after the environment's.
    pub config: Vec<(Key, String)>,
    /// Where the keys come from, for messages: what to check when they are refused.
    pub source: Source,
    /// When temporary keys stop working, when that is known: `AWS_CREDENTIAL_EXPIRATION`, as
    /// the AWS CLI's `configure export-credentials` and the tools that hand out session keys
    /// set it beside `AWS_SESSION_TOKEN`. A URL they sign works no longer.
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
}

/// `env`'s AWS settings completed the way the AWS CLI completes them. `env` holds `HOME` and
/// the `AWS_*` variables; the profile's files are read here.
pub(super) fn settings(env: &[(String, String)]) -> Result<Settings, String> {
    let env = Env(env);
    let mut config = Vec::new();

    // The instance metadata service, under the CLI's names; object_store's own still win.
    if let (Some(endpoint), None) =
        (env.var("AWS_EC2_METADATA_SERVICE_ENDPOINT"), env.var("AWS_METADATA_ENDPOINT"))
    {
        config.push((Key::MetadataEndpoint, endpoint.trim_end_matches('/').to_owned()));
    }
    let profile = Profile::read(&env)?;
    profile.settings(&env, &mut config);
    if env.var("AWS_ACCESS_KEY_ID").is_some() || env.var("AWS_SECRET_ACCESS_KEY").is_some() {
        let expires = env
            .var("AWS_SESSION_TOKEN")
            .and(env.var("AWS_CREDENTIAL_EXPIRATION"))
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        return Ok(Settings { config, source: Source::Environment, expires });
    }
    if let Some(source) = profile.keys(&env, &mut config)? {
        return Ok(Settings { config, source, expires: None });
    }
    let var = |name| env.var(name).is_some();
    let source = if var("AWS_WEB_IDENTITY_TOKEN_FILE") && var("AWS_ROLE_ARN") {
        Source::WebIdentity
    } else if var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        Source::Container
    } else if env.yes("AWS_EC2_METADATA_DISABLED") {
        return Err(format!(
            "no AWS keys: none in the environment (`AWS_ACCESS_KEY_ID`, \
             `AWS_SECRET_ACCESS_KEY`), none in profile `{}` ({}), and the instance \
             metadata service is turned off (`AWS_EC2_METADATA_DISABLED`)",
            profile.name,
            shown(profile.credentials_file.as_deref())
        ));
    } else {
        Source::InstanceMetadata { profile: profile.name }
    };
    Ok(Settings { config, source, expires: None })
}

/// The `HOME` and `AWS_*` variables; an empty one counts as unset.
struct Env<'a>(&'a [(String, String)]);

impl Env<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn yes(&self, name: &str) -> bool {
        self.var(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The profile the CLI would use (`AWS_PROFILE`, `AWS_DEFAULT_PROFILE`, else `default`), as its
/// shared `credentials` and `config` files give it.
struct Profile {
    name: String,
    credentials_file: Option<PathBuf>,
    config_file: Option<PathBuf>,
    credentials: Option<Ini>,
    configured: Option<Ini>,
}

impl Profile {
    /// Reads the profile's files. A profile named but in neither file is an error.
    fn read(env: &Env) -> Result<Profile, String> {
        let explicit = env.var("AWS_PROFILE").or_else(|| env.var("AWS_DEFAULT_PROFILE"));
        let name = explicit.unwrap_or("default").to_owned();
        let home = env.var("HOME").map(Path::new);
        let file = |var_name: &str, leaf: &str| {
            env.var(var_name).map(PathBuf::from).or_else(|| home.map(|h| h.join(".aws").join(leaf)))
        };
        let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        let config_file = file("AWS_CONFIG_FILE", "config");
        let credentials = read(credentials_file.as_deref())?;
        let configured = read(config_file.as_deref())?;
        let profile = Profile { name, credentials_file, config_file, credentials, configured };
        if explicit.is_some() && profile.in_credentials().is_none() && profile.in_config().is_none()
        {
            return Err(format!(
                "`AWS_PROFILE` names the profile `{}`, which is in neither {} nor {}",
                profile.name,
                shown(profile.credentials_file.as_deref()),
                shown(profile.config_file.as_deref())
            ));
        }
        Ok(profile)
    }

    fn in_credentials(&self) -> Option<&ini::Properties> {
        self.credentials.as_ref().and_then(|ini| ini.section(Some(self.name.as_str())))
    }

    fn in_config(&self) -> Option<&ini::Properties> {
        let name = self.name.as_str();
        let section = if name == "default" { "default".into() } else { format!("profile {name}") };
        self.configured.as_ref().and_then(|ini| {
            ini.section(Some(section.as_str())).or_else(|| {
                (name == "default").then(|| ini.section(Some("profile default"))).flatten()
            })
        })
    }

    /// A setting of the profile: the credentials file's wins over the config file's, as in the
    /// CLI.
    fn get(&self, key: &str) -> Option<&str> {
        self.in_credentials()
            .and_then(|s| s.get(key))
            .or_else(|| self.in_config().and_then(|s| s.get(key)))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The file a setting of the profile comes from.
    fn from(&self, key: &str) -> PathBuf {
        if self.in_credentials().and_then(|s| s.get(key)).is_some() {
            self.credentials_file.clone().unwrap_or_default()
        } else {
            self.config_file.clone().unwrap_or_default()
        }
    }

    /// The profile's region, endpoint and IMDSv1 fallback, where the environment sets none.
    fn settings(&self, env: &Env, config: &mut Vec<(Key, String)>) {
        if env.var("AWS_REGION").is_none() && env.var("AWS_DEFAULT_REGION").is_none() {
            if let Some(region) = self.get("region") {
                config.push((Key::Region, region.to_owned()));
            }
        }
        let endpoint_set = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"]
            .iter()
            .any(|v| env.var(v).is_some());
        if !endpoint_set && !env.yes("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
            if let Some(endpoint) = self.get("endpoint_url") {
                config.push((Key::Endpoint, endpoint.to_owned()));
            }
        }
        // The CLI falls back to IMDSv1 when the token call is refused, unless told not to.
        if env.var("AWS_IMDSV1_FALLBACK").is_none() {
            let v1_off = env.yes("AWS_EC2_METADATA_V1_DISABLED")
                || self
                    .get("ec2_metadata_v1_disabled")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            config.push((Key::ImdsV1Fallback, (!v1_off).to_string()));
        }
    }

    /// The keys the profile holds, or the web identity it names; `None` when it has neither.
    /// A way of getting keys that avbatch does not take is an error saying what to do.
    fn keys(&self, env: &Env, config: &mut Vec<(Key, String)>) -> Result<Option<Source>, String> {
        let name = &self.name;
        match (self.get("aws_access_key_id"), self.get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => {
                config.push((Key::AccessKeyId, id.to_owned()));
                config.push((Key::SecretAccessKey, secret.to_owned()));
                if let Some(token) = self.get("aws_session_token") {
                    config.push((Key::Token, token.to_owned()));
                }
                let file = self.from("aws_access_key_id");
                return Ok(Some(Source::Profile { name: name.clone(), file }));
            }
            (Some(_), None) | (None, Some(_)) => {
                let key = match self.get("aws_access_key_id") {
                    Some(_) => "aws_access_key_id",
                    None => "aws_secret_access_key",
                };
                return Err(format!(
                    "profile `{name}` in {} has one of `aws_access_key_id` and \
                     `aws_secret_access_key` without the other",
                    self.from(key).display()
                ));
            }
            (None, None) => {}
        }
        if let (Some(role), Some(token)) =
            (self.get("role_arn"), self.get("web_identity_token_file"))
        {
            if env.var("AWS_WEB_IDENTITY_TOKEN_FILE").is_none() {
                config.push((Key::RoleArn, role.to_owned()));
                config.push((Key::WebIdentityTokenFile, token.to_owned()));
                if let Some(session) = self.get("role_session_name") {
                    config.push((Key::RoleSessionName, session.to_owned()));
                }
                return Ok(Some(Source::WebIdentity));
            }
        }
        let unsupported = if self.get("credential_process").is_some() {
            Some("running its `credential_process`")
        } else if self.get("sso_session").is_some() || self.get("sso_start_url").is_some() {
            Some("signing in with AWS SSO (IAM Identity Center)")
        } else if self.get("role_arn").is_some() {
            Some("assuming the role in its `role_arn`")
        } else {
            None
        };
        match unsupported {
            Some(how) => Err(format!(
                "profile `{name}` in {} gets its keys by {how}, which avbatch does not do: hand \
                 avbatch the keys it gives, for instance with `eval \"$(aws configure \
                 export-credentials --profile {name} --format env)\"`",
                shown(self.config_file.as_deref()),
            )),
            None => Ok(None),
        }
    }
}

/// A shared file, or `None` when there is none. A file that is there but cannot be read or
/// parsed is an error: the keys the user meant may be in it.
fn read(path: Option<&Path>) -> Result<Option<Ini>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    // Secrets may hold `\` or quotes, taken as written; indented lines continue a setting
    // (the config file's per-service blocks).
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        ..ParseOption::default()
    };
    Ini::load_from_str_opt(&text, options).map(Some).map_err(|e| {
        format!("{} is not a valid AWS settings file: {} (line {})", path.display(), e.msg, e.line)
    })
}

/// Whether `config` (the builder's settings, in order: a later one wins) names an endpoint, an
/// S3-compatible store's; one over plain http is refused unless `AWS_ALLOW_HTTP` allows it
/// ([`refuse_plain_http`]).
pub(super) fn endpoint(config: &[(Key, String)]) -> Result<bool, String> {
    let (mut endpoint, mut allow_http) = (None, false);
    for (key, value) in config {
        match key {
            Key::Endpoint | Key::S3Endpoint => endpoint = Some(value.as_str()),
            Key::Client(object_store::ClientConfigKey::AllowHttp) => allow_http = truthy(value),
            _ => {}
        }
    }
    match endpoint {
        Some(endpoint) => refuse_plain_http(endpoint, allow_http).map(|()| true),
        None => Ok(false),
    }
}

/// Refuses an S3 endpoint over plain http (a local or test server: MinIO, moto) unless
/// `AWS_ALLOW_HTTP` (`allow_http`) says it may be: object_store refuses it then, with
/// "builder error: URL scheme is not allowed", which names neither the endpoint nor the fix.
fn refuse_plain_http(endpoint: &str, allow_http: bool) -> Result<(), String> {
    let plain = endpoint.trim().get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"));
    if !plain || allow_http {
        return Ok(());
    }
    // Its host and port only: an endpoint may carry a user and password.
    let shown = match reqwest::Url::parse(endpoint.trim()) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("http://{}{port}", url.host_str().unwrap_or_default())
        }
        Err(_) => "http://…".to_owned(),
    };
    Err(format!(
        "the S3 endpoint `{shown}` is plain http, which is refused unless AWS_ALLOW_HTTP=true is \
         set: set it for a local or test S3 server (MinIO, moto, …), or give an https endpoint"
    ))
}

/// A setting's yes, as object_store reads one: `true`, `1`, `on`, `yes` or `y`, any case.
fn truthy(value: &str) -> bool {
    ["1", "true", "on", "yes", "y"].iter().any(|yes| value.trim().eq_ignore_ascii_case(yes))
}

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(|| "~/.aws (no `HOME`)".into(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_over_plain_http_needs_allow_http() {
        let refused = refuse_plain_http("http://u:pw@127.0.0.1:9000", false).unwrap_err();
        assert!(refused.contains("`http://127.0.0.1:9000`"), "{refused}");
        assert!(refused.contains("AWS_ALLOW_HTTP=true") && !refused.contains("pw"), "{refused}");
        assert!(refuse_plain_http("HTTP://minio:9000", true).is_ok());
        assert!(refuse_plain_http("https://minio:9000", false).is_ok());
        assert!(truthy("TRUE") && truthy("1") && !truthy("false") && !truthy(""));
        let at = |allow: &str| {
            let mut config = vec![(Key::Endpoint, "http://127.0.0.1:9000".to_owned())];
            config.push((Key::Client(object_store::ClientConfigKey::AllowHttp), allow.into()));
            endpoint(&config)
        };
        assert_eq!((at("true"), at("0").is_err()), (Ok(true), true));
        assert_eq!(endpoint(&[]), Ok(false));
    }

    fn files(credentials: &str, config: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
        std::fs::write(home.path().join(".aws/config"), config).unwrap();
        home
    }

    fn env(home: &Path, vars: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = vec![("HOME".to_owned(), home.display().to_string())];
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn value(s: &Settings, key: Key) -> Option<&str> {
        s.config.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    const CREDENTIALS: &str = "[default]\naws_access_key_id = AKIDDEFAULT\n\
        aws_secret_access_key = s3cr3t/+=\n\n# a comment\n[work]\n\
        aws_access_key_id=AKIDWORK\naws_secret_access_key=w0rk\naws_session_token = tok\n";
    const CONFIG: &str = "[default]\nregion = eu-west-3\n\n[profile work]\nregion = us-west-2\n\
        s3 =\n  max_concurrent_requests = 20\nendpoint_url = http://127.0.0.1:9000\n\n\
        [profile sso]\nsso_session = corp\nregion = eu-west-1\n\n[profile proc]\n\
        credential_process = /usr/bin/get-keys\n\n[profile web]\n\
        role_arn = arn:aws:iam::1:role/r\nweb_identity_token_file = /var/run/token\n\n\
        [profile empty]\nregion = ap-south-1\n";

    #[test]
    fn the_default_profile_gives_keys_and_region() {
        let home = files(CREDENTIALS, CONFIG);
        let s = settings(&env(home.path(), &[])).unwrap();
        assert_eq!(value(&s, Key::AccessKeyId), Some("AKIDDEFAULT"));
        assert_eq!(value(&s, Key::SecretAccessKey), Some("s3cr3t/+="));
        assert_eq!(value(&s, Key::Token), None);
        assert_eq!(value(&s, Key::Region), Some("eu-west-3"));
        assert_eq!(value(&s, Key::ImdsV1Fallback), Some("true"));
        let file = home.path().join(".aws/credentials");
        assert_eq!(s.source, Source::Profile { name: "default".into(), file });
    }

    #[test]
    fn aws_profile_picks_another_with_its_token_region_and_endpoint() {
        let home = files(CREDENTIALS, CONFIG);
        let s = settings(&env(home.path(), &[("AWS_PROFILE", "work")])).unwrap();
        assert_eq!(value(&s, Key::AccessKeyId), Some("AKIDWORK"));
        assert_eq!(value(&s, Key::Token), Some("tok"));
        assert_eq!(value(&s, Key::Region), Some("us-west-2"));
        assert_eq!(value(&s, Key::Endpoint), Some("http://127.0.0.1:9000"));
        // The environment's region and endpoint win over the profile's.
        let vars = [
            ("AWS_PROFILE", "work"),
            ("AWS_REGION", "ca-central-1"),
            ("AWS_ENDPOINT_URL", "http://e"),
        ];
        let s = settings(&env(home.path(), &vars)).unwrap();
        assert_eq!(value(&s, Key::Region), None);
        assert_eq!(value(&s, Key::Endpoint), None);
    }

    #[test]
    fn keys_in_the_environment_win_over_any_profile() {
        let home = files(CREDENTIALS, CONFIG);
        let s = settings(&env(home.path(), &[("AWS_ACCESS_KEY_ID", "AKIDENV")])).unwrap();
        assert_eq!(value(&s, Key::AccessKeyId), None, "object_store reads the environment's");
        assert_eq!(s.source, Source::Environment);
    }

    #[test]
    fn profiles_avbatch_cannot_use_are_refused_with_what_to_do() {
        let home = files(CREDENTIALS, CONFIG);
        for (profile, how) in [
            ("sso", "signing in with AWS SSO"),
            ("proc", "`credential_process`"),
            ("nowhere", "which is in neither"),
        ] {
            let err = settings(&env(home.path(), &[("AWS_PROFILE", profile)])).unwrap_err();
            assert!(err.contains(how), "{profile}: {err}");
            if profile != "nowhere" {
                assert!(err.contains("export-credentials --profile"), "{err}");
            }
        }
        let half = files("[default]\naws_access_key_id = A\n", "");
        let err = settings(&env(half.path(), &[])).unwrap_err();
        assert!(err.contains("without the other"), "{err}");
        let broken = files("[default\naws_access_key_id = A\n", "");
        let err = settings(&env(broken.path(), &[])).unwrap_err();
        assert!(err.contains("is not a valid AWS settings file: "), "{err}");
        assert!(err.contains("]"), "says what it expected: {err}");
    }

    #[test]
    fn without_keys_the_chain_goes_on_to_web_identity_and_instance_metadata() {
        let home = files(CREDENTIALS, CONFIG);
        let s = settings(&env(home.path(), &[("AWS_PROFILE", "web")])).unwrap();
        assert_eq!(s.source, Source::WebIdentity);
        assert_eq!(value(&s, Key::WebIdentityTokenFile), Some("/var/run/token"));

        let s = settings(&env(home.path(), &[("AWS_PROFILE", "empty")])).unwrap();
        assert_eq!(s.source, Source::InstanceMetadata { profile: "empty".into() });
        assert_eq!(value(&s, Key::Region), Some("ap-south-1"));

        let none = tempfile::tempdir().unwrap();
        let vars = [
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/"),
            ("AWS_EC2_METADATA_V1_DISABLED", "true"),
        ];
        let s = settings(&env(none.path(), &vars)).unwrap();
        assert_eq!(s.source, Source::InstanceMetadata { profile: "default".into() });
        assert_eq!(value(&s, Key::MetadataEndpoint), Some("http://127.0.0.1:1"));
        assert_eq!(value(&s, Key::ImdsV1Fallback), Some("false"));

        let err =
            settings(&env(none.path(), &[("AWS_EC2_METADATA_DISABLED", "true")])).unwrap_err();
        assert!(err.contains("no AWS keys"), "{err}");
    }
}
