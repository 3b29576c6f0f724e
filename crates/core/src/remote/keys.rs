//! Where an S3 store's keys came from, for messages: what to check when they are refused, and
//! what was looked for when none were found.

use std::path::PathBuf;

/// Where an S3 store's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
// Made only by an S3 store (the cargo feature `s3`).
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
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
