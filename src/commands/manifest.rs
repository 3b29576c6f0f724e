//! `avbatch manifest DIR`: a manifest of the videos under a folder, for drop folders and nightly
//! jobs.

use anyhow::Context;

use super::{Exit, Outcome, Stop};
use crate::cli::ManifestArgs;
use crate::output::{say, say_warning};

/// Runs `avbatch manifest`.
pub fn run(args: &ManifestArgs) -> Outcome {
    use avbatch_core::manifest::scan::{escaped, scan, write_manifest, ScanOptions};
    let options = ScanOptions {
        globs: args.glob.clone(),
        title_from: args.title_from,
        follow_links: args.follow_links,
        id_prefix: args.id_prefix.clone().unwrap_or_default(),
    };
    let manifest_dir = args.output.as_ref().map(|o| {
        o.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."))
    });
    let scan = scan(&args.dir, manifest_dir, &options).map_err(|e| Stop::invalid(e.to_string()))?;
    let found = scan.found;
    // A manifest is UTF-8: such a file would be written with U+FFFD, and no run could find it.
    for path in &scan.skipped {
        say_warning(&format!(
            "skipped `{}`: its name is not UTF-8, which a manifest cannot hold; rename it",
            escaped(path)
        ));
    }
    let skipped = match scan.skipped.len() {
        0 => String::new(),
        n => format!(", {n} file(s) skipped"),
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
                "{} video(s) under `{}` written to `{}`{skipped}",
                found.len(),
                args.dir.display(),
                path.display()
            ));
        }
        None => {
            write_manifest(std::io::stdout().lock(), &found).context("writing the manifest")?;
            if !skipped.is_empty() {
                say_warning(&format!("{} video(s) written{skipped}", found.len()));
            }
        }
    }
    Ok(Exit::Done)
}
