use super::*;

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

/// The help text of `--flag` of `command`.
#[cfg(feature = "serve")]
fn help_of(command: &str, flag: &str) -> String {
    let cli = Cli::command();
    let sub = cli.find_subcommand(command).unwrap_or_else(|| panic!("no `{command}`"));
    let arg = sub
        .get_arguments()
        .find(|a| a.get_long() == Some(flag))
        .unwrap_or_else(|| panic!("no `{command} --{flag}`"));
    arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default()
}

// Every command's flags: `serve` and `bench` are in the default build only.
#[cfg(feature = "serve")]
#[test]
fn every_bounded_flag_states_its_range_in_help() {
    use crate::bounds::*;
    use avbatch_serve::flags::{QUOTA_COUNT, QUOTA_WINDOW, STORM, TOKEN_TTL};
    let whole = |r: &std::ops::RangeInclusive<usize>| format!("from {} to {}", r.start(), r.end());
    let sizes = |r: &std::ops::RangeInclusive<u64>| {
        format!("from {} to {}", show_size(*r.start()), show_size(*r.end()))
    };
    let times = |r: &std::ops::RangeInclusive<Duration>| {
        format!("from {} to {}", show_duration(*r.start()), show_duration(*r.end()))
    };
    let quota = format!(
        "from {} to {} requests in a window {}",
        QUOTA_COUNT.start(),
        QUOTA_COUNT.end(),
        times(&QUOTA_WINDOW)
    );
    let storm = format!(
        "at least {}, EVERY at most {}",
        show_duration(*STORM.start()),
        show_duration(*STORM.end())
    );
    let cases = [
        ("upload", "concurrency", whole(&CONCURRENCY)),
        ("upload", "rate", format!("from {} to {}", RATE.start(), RATE.end())),
        ("upload", "bandwidth", sizes(&BANDWIDTH)),
        ("upload", "chunk-size", sizes(&CHUNK_SIZE)),
        ("upload", "retries", format!("from {} to {}", RETRIES.start(), RETRIES.end())),
        ("upload", "timeout", times(&TIMEOUT)),
        ("upload", "notify-timeout", times(&NOTIFY_TIMEOUT)),
        ("upload", "max-duration", times(&MAX_DURATION)),
        ("clean", "older-than", times(&OLDER_THAN)),
        ("clean", "retries", format!("from {} to {}", RETRIES.start(), RETRIES.end())),
        ("clean", "timeout", times(&TIMEOUT)),
        ("serve", "token-ttl", times(&TOKEN_TTL)),
        ("serve", "rate-limit", quota),
        ("serve", "latency", times(&LATENCY)),
        ("serve", "bandwidth", sizes(&avbatch_serve::flags::BANDWIDTH)),
        ("serve", "max-connections", whole(&avbatch_serve::flags::CONNECTIONS)),
        ("serve", "encoding-time", times(&avbatch_serve::flags::ENCODING_TIME)),
        ("serve", "source-timeout", times(&avbatch_serve::flags::SOURCE_TIMEOUT)),
        ("serve", "storm", storm),
        ("serve", "seed", "any 64-bit number".to_owned()),
        ("serve", "fail-rate", "from 0 to 1".to_owned()),
        ("serve", "reset-rate", "from 0 to 1".to_owned()),
        ("serve", "lose-rate", "from 0 to 1".to_owned()),
        ("bench", "files", whole(&BENCH_FILES)),
        ("bench", "size", sizes(&BENCH_SIZE)),
        ("bench", "max-size", sizes(&BENCH_SIZE)),
        ("bench", "concurrency", whole(&CONCURRENCY)),
        ("bench", "chunk-size", sizes(&CHUNK_SIZE)),
        ("bench", "latency", times(&LATENCY)),
        ("bench", "bandwidth", sizes(&BANDWIDTH)),
        ("bench", "seed", "any 64-bit number".to_owned()),
    ];
    for (command, flag, range) in cases {
        let help = help_of(command, flag);
        assert!(
            help.to_lowercase().contains(&range.to_lowercase()),
            "`{command} --{flag}` help does not say `{range}`: {help}"
        );
    }
}

#[cfg(feature = "serve")]
#[test]
fn secrets_on_the_command_line_are_noted_and_others_not() {
    let warnings =
        |argv: &[&str]| secret_warnings(&Cli::command().try_get_matches_from(argv).unwrap());
    let upload = warnings(&["avbatch", "upload", "m.csv", "--upload-token", "to-secret"]);
    assert_eq!(upload.len(), 1);
    assert!(
        upload[0].contains("AVBATCH_UPLOAD_TOKEN") && !upload[0].contains("to-secret"),
        "{upload:?}"
    );
    let serve = warnings(&["avbatch", "serve", "--api-key", "k-secret"]);
    assert!(serve[0].contains("--api-key-file") && !serve[0].contains("k-secret"), "{serve:?}");
    assert!(warnings(&["avbatch", "upload", "m.csv", "--upload-token-file", "t"]).is_empty());
    let notify = warnings(&["avbatch", "upload", "m.csv", "--notify", "https://h/T0/hook-secret"]);
    assert_eq!(notify.len(), 1);
    assert!(
        notify[0].contains("--notify-file") && !notify[0].contains("hook-secret"),
        "{notify:?}"
    );
    assert!(warnings(&["avbatch", "upload", "m.csv", "--notify-file", "f"]).is_empty());
    assert!(warnings(&["avbatch", "serve", "--api-key-file", "k"]).is_empty());
}
