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

/// What [`settings`] adds to object_store's own reading of `AWS_*`.
#[derive(Debug)]
pub(super) struct Settings {
    /// Settings for the builder, applied after the environment's.
    pub config: Vec<(Key, String)>,
    /// Where the keys come from, for messages: what to check when they are refused.
    pub source: Source,
}

/// Where an S3 store's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile's keys: its name and the file they are in.
    Profile { name: String, file: PathBuf },
    /// A web identity token exchanged for a role's keys (Kubernetes service accounts).
    WebIdentity,
    /// A container's credentials endpoint (ECS tasks, EKS pod identity).
    Container,
    /// The instance metadata service, asked because nothing else gave keys.
    InstanceMetadata { profile: String },
}

impl Source {
    /// What to check when the store refuses these keys.
    pub fn denied_hint(&self) -> String {
        match self {
            Source::Environment => "check the keys in `AWS_ACCESS_KEY_ID` and \
                                    `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN` for \
                                    temporary keys), and `AWS_REGION`"
                .into(),
            Source::Profile { name, file } => format!(
                "check the keys of profile `{name}` in {} (`AWS_PROFILE` picks another)",
                file.display()
            ),
            Source::WebIdentity => {
                "check the role in `AWS_ROLE_ARN`: its keys came from the web identity token".into()
            }
            Source::Container => {
                "check the task's or pod's role: its keys came from the container's credentials"
                    .into()
            }
            Source::InstanceMetadata { profile } => format!(
                "check this machine's role: with no keys in the environment (`AWS_ACCESS_KEY_ID`, \
                 `AWS_SECRET_ACCESS_KEY`) nor in profile `{profile}`, they came from the \
                 instance metadata service"
            ),
        }
    }

    /// Said after an error in getting keys, which only the last sources can have.
    pub fn fetch_hint(&self) -> Option<String> {
        match self {
            Source::InstanceMetadata { profile } => Some(format!(
                "no AWS keys in the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) \
                 nor in profile `{profile}` (~/.aws/credentials, `AWS_PROFILE`), and the \
                 instance metadata service gave none"
            )),
            Source::WebIdentity => Some("the web identity token gave no keys".into()),
            Source::Container => Some("the container's credentials gave no keys".into()),
            Source::Environment | Source::Profile { .. } => None,
        }
    }
}

/// `env`'s AWS settings completed the way the AWS CLI completes them. `env` holds `HOME` and
/// the `AWS_*` variables; the profile's files are read here.
pub(super) fn settings(env: &[(String, String)]) -> Result<Settings, String> {
    let var = |name: &str| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    };
    let yes = |name: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut config = Vec::new();

    // The instance metadata service, under the CLI's names; object_store's own still win.
    if let (Some(endpoint), None) =
        (var("AWS_EC2_METADATA_SERVICE_ENDPOINT"), var("AWS_METADATA_ENDPOINT"))
    {
        config.push((Key::MetadataEndpoint, endpoint.trim_end_matches('/').to_owned()));
    }

    let explicit = var("AWS_PROFILE").or_else(|| var("AWS_DEFAULT_PROFILE"));
    let name = explicit.unwrap_or("default");
    let home = var("HOME").map(Path::new);
    let file = |var_name: &str, leaf: &str| {
        var(var_name).map(PathBuf::from).or_else(|| home.map(|h| h.join(".aws").join(leaf)))
    };
    let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = file("AWS_CONFIG_FILE", "config");
    let credentials = read(credentials_file.as_deref())?;
    let configured = read(config_file.as_deref())?;
    let in_credentials = credentials.as_ref().and_then(|ini| ini.section(Some(name)));
    let config_section =
        if name == "default" { "default".into() } else { format!("profile {name}") };
    let in_config = configured.as_ref().and_then(|ini| {
        ini.section(Some(config_section.as_str()))
            .or_else(|| (name == "default").then(|| ini.section(Some("profile default"))).flatten())
    });
    if explicit.is_some() && in_credentials.is_none() && in_config.is_none() {
        return Err(format!(
            "`AWS_PROFILE` names the profile `{name}`, which is in neither {} nor {}",
            shown(credentials_file.as_deref()),
            shown(config_file.as_deref())
        ));
    }
    // A key in the credentials file wins over the same key in the config file, as in the CLI.
    let get = |key: &str| {
        in_credentials
            .and_then(|s| s.get(key))
            .or_else(|| in_config.and_then(|s| s.get(key)))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let from = |key: &str| {
        if in_credentials.and_then(|s| s.get(key)).is_some() {
            credentials_file.clone().unwrap_or_default()
        } else {
            config_file.clone().unwrap_or_default()
        }
    };

    if var("AWS_REGION").is_none() && var("AWS_DEFAULT_REGION").is_none() {
        if let Some(region) = get("region") {
            config.push((Key::Region, region.to_owned()));
        }
    }
    let endpoint_set = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| var(v).is_some());
    if !endpoint_set && !yes("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
        if let Some(endpoint) = get("endpoint_url") {
            config.push((Key::Endpoint, endpoint.to_owned()));
        }
    }
    // The CLI falls back to IMDSv1 when the token call is refused, unless told not to.
    if var("AWS_IMDSV1_FALLBACK").is_none() {
        let v1_off = yes("AWS_EC2_METADATA_V1_DISABLED")
            || get("ec2_metadata_v1_disabled").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        config.push((Key::ImdsV1Fallback, (!v1_off).to_string()));
    }

    if var("AWS_ACCESS_KEY_ID").is_some() || var("AWS_SECRET_ACCESS_KEY").is_some() {
        return Ok(Settings { config, source: Source::Environment });
    }
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => {
            config.push((Key::AccessKeyId, id.to_owned()));
            config.push((Key::SecretAccessKey, secret.to_owned()));
            if let Some(token) = get("aws_session_token") {
                config.push((Key::Token, token.to_owned()));
            }
            let file = from("aws_access_key_id");
            return Ok(Settings { config, source: Source::Profile { name: name.into(), file } });
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!(
                "profile `{name}` in {} has one of `aws_access_key_id` and \
                 `aws_secret_access_key` without the other",
                from(if get("aws_access_key_id").is_some() {
                    "aws_access_key_id"
                } else {
                    "aws_secret_access_key"
                })
                .display()
            ))
        }
        (None, None) => {}
    }
    if let (Some(role), Some(token)) = (get("role_arn"), get("web_identity_token_file")) {
        if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_none() {
            config.push((Key::RoleArn, role.to_owned()));
            config.push((Key::WebIdentityTokenFile, token.to_owned()));
            if let Some(session) = get("role_session_name") {
                config.push((Key::RoleSessionName, session.to_owned()));
            }
            return Ok(Settings { config, source: Source::WebIdentity });
        }
    }
    let unsupported = if get("credential_process").is_some() {
        Some("running its `credential_process`")
    } else if get("sso_session").is_some() || get("sso_start_url").is_some() {
        Some("signing in with AWS SSO (IAM Identity Center)")
    } else if get("role_arn").is_some() {
        Some("assuming the role in its `role_arn`")
    } else {
        None
    };
    if let Some(how) = unsupported {
        return Err(format!(
            "profile `{name}` in {} gets its keys by {how}, which avbatch does not do: hand \
             avbatch the keys it gives, for instance with `eval \"$(aws configure \
             export-credentials --profile {name} --format env)\"`",
            shown(config_file.as_deref()),
        ));
    }
    let source = if var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && var("AWS_ROLE_ARN").is_some() {
        Source::WebIdentity
    } else if var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        Source::Container
    } else if yes("AWS_EC2_METADATA_DISABLED") {
        return Err(format!(
            "no AWS keys: none in the environment (`AWS_ACCESS_KEY_ID`, \
             `AWS_SECRET_ACCESS_KEY`), none in profile `{name}` ({}), and the instance \
             metadata service is turned off (`AWS_EC2_METADATA_DISABLED`)",
            shown(credentials_file.as_deref())
        ));
    } else {
        Source::InstanceMetadata { profile: name.into() }
    };
    Ok(Settings { config, source })
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

fn shown(path: Option<&Path>) -> String {
    path.map_or_else(|| "~/.aws (no `HOME`)".into(), |p| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
