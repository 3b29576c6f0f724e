//! `avbatch manifest DIR`: a manifest of the videos under a folder, for drop folders and nightly
//! jobs.

use std::process::ExitCode;

use anyhow::Context;

use super::Exit;
use crate::cli::ManifestArgs;
use crate::output::{say, say_error};

/// Runs `avbatch manifest`.
pub fn run(args: &ManifestArgs) -> anyhow::Result<ExitCode> {
    use avbatch_core::manifest::scan::{scan, write_manifest, ScanOptions};
    let options = ScanOptions {
        globs: args.glob.clone(),
        title_from: args.title_from,
        follow_links: args.follow_links,
    };
    let manifest_dir = args.output.as_ref().map(|o| {
        o.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."))
    });
    let found = match scan(&args.dir, manifest_dir, &options) {
        Ok(f) => f,
        Err(e) => {
            say_error(&e.to_string(), None);
            return Ok(Exit::Invalid.into());
        }
    };
    match &args.output {
        Some(path) => {
            // Written whole then renamed, so a run reading it never sees half a manifest.
            let tmp = path.with_extension("tmp-manifest");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            write_manifest(std::io::BufWriter::new(file), &found)
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            say(&format!(
                "{} video(s) under `{}` written to `{}`",
                found.len(),
                args.dir.display(),
                path.display()
            ));
        }
        None => write_manifest(std::io::stdout().lock(), &found).context("writing the manifest")?,
    }
    Ok(ExitCode::SUCCESS)
}
