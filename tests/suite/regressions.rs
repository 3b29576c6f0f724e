//! The register of past bugs: each bug that shipped, what a user saw, the commit that fixed it,
//! and the test that fails if it comes back. The tests stay with the behaviour they prove
//! (`exactly_once`, `manifest_checks`, …), where a reader of that behaviour finds them; this
//! module keeps the history in one place, and its test keeps the register true: a test renamed
//! or removed without the register fails here.

use std::path::{Path, PathBuf};

/// `(file, test, fixed in, what a user saw)`. Files are relative to the repository.
const REGISTER: &[(&str, &str, &str, &str)] = &[
    (
        "tests/suite/resume.rs",
        "a_part_a_dead_run_left_in_flight_is_not_sent_twice",
        "15ff820",
        "after kill -9 the dead run's part landed late and the re-run failed on range-overlap",
    ),
    (
        "tests/suite/exactly_once.rs",
        "gateway_errors_after_a_create_took_effect_leave_one_video_per_row",
        "582cf54",
        "a create answered 502/504 after it took effect was sent again: 60 videos for 40 rows",
    ),
    (
        "tests/suite/exactly_once.rs",
        "three_runs_at_once_leave_one_video_per_row",
        "582cf54",
        "runs at once without a shared journal made 62 videos for 40 rows",
    ),
    (
        "tests/suite/exactly_once.rs",
        "a_loose_metadata_filter_never_adopts_another_rows_video",
        "582cf54",
        "a substring metadata filter adopted another row's video",
    ),
    (
        "tests/suite/exactly_once.rs",
        "a_lost_answer_to_a_token_upload_never_makes_a_second_video",
        "582cf54",
        "with an upload token a lost answer made 2 to 8 videos a row",
    ),
    (
        "tests/suite/upload_cli.rs",
        "delegated_upload_with_an_upload_token",
        "582cf54",
        "a token-only run dropped every manifest field: public=false videos went up public",
    ),
    (
        "tests/suite/exactly_once.rs",
        "rows_already_on_the_server_are_skipped_and_send_nothing",
        "582cf54",
        "rows already complete were reported uploaded at 50 737 MB/s",
    ),
    (
        "tests/suite/exactly_once.rs",
        "another_chunk_size_skips_complete_videos_and_continues_partial_ones",
        "582cf54",
        "a re-run with another --chunk-size failed complete videos",
    ),
    (
        "tests/suite/exactly_once.rs",
        "a_slow_uplink_that_moves_is_never_cut",
        "582cf54",
        "below about 32 Mbit/s every part timed out ten times and the row failed",
    ),
    (
        "tests/suite/exactly_once.rs",
        "after_a_stop_a_failing_part_is_not_tried_again",
        "582cf54",
        "a stop on a 48 KiB/s link took over 8 minutes of retries",
    ),
    (
        "tests/suite/exactly_once.rs",
        "no_part_is_refused_for_a_token_that_expired_under_it",
        "582cf54",
        "an access token expired under a long part, which was refused or sent again",
    ),
    (
        "tests/suite/exactly_once.rs",
        "an_unfinished_video_near_its_deletion_is_replaced",
        "582cf54",
        "an unfinished video api.video deletes after 7 days was resumed",
    ),
    (
        "tests/suite/exactly_once.rs",
        "a_ten_mib_id_is_a_key_like_any_other",
        "582cf54",
        "a 10 MB id made an unbuildable URL, tried 11 times over 65 s",
    ),
    (
        "tests/suite/exactly_once.rs",
        "the_default_part_leaves_room_under_200_mib",
        "582cf54",
        "the default 200 MiB part left no room for the multipart envelope",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "an_unclosed_quote_is_refused_with_its_line_and_column",
        "8ae299e",
        "a stray quote swallowed the rest of the manifest into a description, exit 0",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "two_rows_without_an_id_may_not_share_a_path",
        "fc96453",
        "two id-less rows with one path shared a video; the second row's fields were lost",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "fifos_and_devices_are_refused_without_hanging",
        "3ab1ff8",
        "a FIFO in the manifest hung every run, --dry-run included",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "a_file_over_the_documented_30_gib_is_refused_before_any_video_is_made",
        "8989a40",
        "a 53 GB file passed the check, made an empty video, then failed",
    ),
    (
        "tests/suite/flags.rs",
        "absurd_flag_values_are_usage_errors_that_say_the_range",
        "8c8bad1",
        "--rate 1e300 and huge --concurrency panicked (exit 101); --timeout 0s hung",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "a_10_mib_path_or_id_is_cut_in_messages",
        "834b7bd",
        "a 10 MiB path or id was echoed whole to stderr",
    ),
    (
        "tests/suite/resume.rs",
        "without_an_id_column_a_changed_file_still_needs_force",
        "8fb7710",
        "an id-less row whose file changed was silently uploaded as a new video",
    ),
    (
        "tests/suite/resume.rs",
        "two_runs_on_one_journal_and_a_changed_file",
        "76a6858",
        "--force left the old video beside the new one",
    ),
    (
        "tests/suite/touched.rs",
        "a_touched_file_is_skipped_not_failed",
        "76a6858",
        "a file only touched failed the nightly job every night",
    ),
    (
        "tests/suite/faults.rs",
        "answers_slower_than_the_timeout_fail_clearly_and_a_longer_timeout_succeeds",
        "1d3b8ee",
        "a run whose authentication failed wrote no report",
    ),
    (
        "tests/suite/endings.rs",
        "an_unforeseen_error_is_exit_2_said_as_a_json_log_line_when_logs_are_json",
        "0f02afe",
        "under --log-format json an unexpected error came out as plain-text lines",
    ),
    (
        "tests/suite/status_and_trial_runs.rs",
        "status_waits_out_a_run_that_holds_a_rollback_journal_for_seconds",
        "925eb55",
        "avbatch status failed with `database is locked` on a journal on FUSE under load",
    ),
    (
        "tests/suite/clean.rs",
        "ctrl_c_before_anything_is_deleted_says_so_as_a_plain_line_and_exits_130",
        "925eb55",
        "Ctrl-C during clean said `error: stopped; nothing was deleted`",
    ),
    (
        "tests/suite/sources.rs",
        "without_keys_the_metadata_service_is_asked_once_not_once_a_row",
        "9b8aa61",
        "with no cloud keys the instance metadata service was asked 159 times for 40 rows",
    ),
    (
        "tests/suite/sources.rs",
        "a_metadata_service_that_never_answers_is_given_up_on_in_seconds",
        "3e0fd93",
        "a metadata service that never answers held a run about 20 minutes",
    ),
    (
        "tests/suite/sources.rs",
        "azure_blobs_are_pulled_and_relayed_byte_for_byte",
        "61cd4d5",
        "an az:// blob whose name needs percent-encoding could not be pulled (403)",
    ),
    (
        "tests/suite/sources.rs",
        "a_pull_row_found_half_relayed_is_counted_in_the_progress_total",
        "57b44f9",
        "the progress said 11.00 of 15.00 MiB: the total lost a half-relayed row's bytes",
    ),
    (
        "crates/core/src/remote/mod.rs",
        "file_names_are_decoded_and_never_hold_the_query",
        "5bbebfd",
        "a URL row without a title took part of its presigned signature as title",
    ),
    (
        "tests/suite/status_and_trial_runs.rs",
        "a_trial_run_uploads_the_first_rows_and_status_counts_the_rest",
        "9ca7f49",
        "status said 100 % with half the bytes not started",
    ),
    (
        "tests/suite/terminal.rs",
        "a_resumed_run_says_what_it_resumes_and_measures_only_its_own_work",
        "c6ca082",
        "a resumed run counted bytes the server held as sent: 7.16 GiB/s, ETA 0s",
    ),
    (
        "tests/suite/terminal.rs",
        "failures_are_told_by_manifest_line_as_they_happen",
        "c6ca082",
        "live failures said `row 7` while the summary said `line 8`",
    ),
    (
        "tests/suite/terminal.rs",
        "an_api_that_cannot_be_reached_is_said_from_the_first_retry_and_exits_4",
        "c6ca082",
        "with no network: 60 to 90 s of silence, then exit 1 with every row pending",
    ),
    (
        "tests/suite/terminal.rs",
        "ctrl_c_stays_on_screen_with_what_the_run_waits_for",
        "c6ca082",
        "the `stopping…` line was drawn over by the progress bars",
    ),
    (
        "tests/server_connections.rs",
        "a_request_is_answered_promptly_while_20000_idle_sockets_are_open",
        "062bee4",
        "1 100 idle sockets under `ulimit -n 1024` stopped avbatch serve answering",
    ),
    (
        "tests/suite/server_multipart_bounds.rs",
        "ten_field_bombs_at_once_keep_the_server_small",
        "f06d1b1",
        "ten text-field bombs at once took avbatch serve to 1 835 MiB",
    ),
    (
        "tests/suite/server_multipart_bounds.rs",
        "part_headers_that_never_end_are_refused_and_keep_the_server_small",
        "dcfc7ad",
        "ten 200 MiB part headers took avbatch serve to 1 346 MiB",
    ),
    (
        "crates/core/src/limit/mod.rs",
        "a_server_that_answers_without_limits_is_not_probed_again",
        "e2c7f7a",
        "without rate-limit headers the start-of-run probe held 3 of 4 lanes 500 ms",
    ),
    (
        "tests/suite/status_and_trial_runs.rs",
        "status_of_a_manifest_with_url_rows_counts_them",
        "issue #25",
        "avbatch status MANIFEST panicked (exit 101) for any manifest with URL or bucket rows",
    ),
    (
        "tests/suite/own_keys.rs",
        "a_manifest_that_sets_avbatch_s_own_keys_is_refused_by_line_and_column",
        "issue #25",
        "a metadata cell `avbatch_key=imported` merged 10 rows into one video, all `uploaded`",
    ),
    (
        "tests/suite/own_keys.rs",
        "a_video_carrying_an_imported_key_beside_avbatch_s_is_found_by_avbatch_s",
        "issue #25",
        "a video carrying an imported avbatch_key before avbatch's was not found: a second made",
    ),
    (
        "tests/suite/pulls.rs",
        "a_pull_api_video_cannot_fetch_fails_and_each_next_run_replaces_its_video",
        "issue #24",
        "a URL api.video could not fetch was reported uploaded, and every later run `already done`",
    ),
    (
        "tests/suite/pulls.rs",
        "a_replacement_whose_new_source_fails_leaves_the_old_video_in_place",
        "issue #24",
        "an upsert of a URL row deleted the old video before the new one held its source",
    ),
    (
        "tests/suite/pulls.rs",
        "a_pulled_rows_assets_follow_its_source",
        "issue #24",
        "a pulled row's thumbnail and captions were sent while the source was still ingesting",
    ),
    (
        "tests/suite/actions.rs",
        "an_upsert_beside_a_delete_row_replaces_a_rewritten_file",
        "f6756d4",
        "beside a `delete` row, an upsert of a rewritten file was `skipped`: the old bytes kept",
    ),
    (
        "tests/suite/sources.rs",
        "a_key_with_dot_segments_is_never_read_as_another_object",
        "issue #25",
        "`s3://media/dots/../o1.mp4` silently relayed `s3://media/o1.mp4`, another object",
    ),
    (
        "tests/suite/nightly.rs",
        "a_file_name_that_is_not_utf8_is_skipped_with_a_warning",
        "issue #25",
        "a drop-folder name not UTF-8 was written as U+FFFD: `upload` refused the manifest nightly",
    ),
    (
        "tests/suite/report_record.rs",
        "report_cells_a_spreadsheet_would_run_are_neutralised_and_read_back_exactly",
        "issue #25",
        "report and `check` CSV cells such as a title `=1+1` ran as formulas in a spreadsheet",
    ),
    (
        "tests/suite/secrets.rs",
        "a_journal_keeps_no_url_credentials_and_is_its_owners_alone",
        "issue #25",
        "journals kept a URL row's `user:pass@` and `?token=`, mode 0644 (0666 with umask 0)",
    ),
    (
        "tests/suite/secrets.rs",
        "the_doubles_data_folder_is_its_owners_alone",
        "issue #25",
        "avbatch serve's data folder was 0755 and its upload and refresh token files 0644",
    ),
    (
        "tests/suite/notify_window.rs",
        "notify_takes_its_url_from_the_environment_or_a_file",
        "issue #25",
        "a webhook's secret URL could only be given on the command line, visible in `ps`",
    ),
    (
        "tests/suite/exactly_once.rs",
        "three_runs_at_once_behind_gateway_errors_leave_one_video_per_row",
        "6114f87",
        "3 runs at once behind gateway errors left 31-38 videos for 30 rows: lost creates kept",
    ),
    (
        "tests/suite/exactly_once.rs",
        "a_killed_replacement_is_finished_by_a_run_without_its_journal",
        "884ae66",
        "a --force replacement killed half-way kept the old video when finished without journal",
    ),
    (
        "tests/suite/network_journal.rs",
        "a_journal_that_cannot_be_written_starts_no_more_videos",
        "f286b3a",
        "a journal on a full disk: every later row still made an empty video, then failed",
    ),
    (
        "tests/suite/nightly.rs",
        "two_folders_giving_one_id_clash_instead_of_sharing_a_video",
        "f286b3a",
        "two folders' intro.mp4 shared one video: the second reported done, the first's bytes",
    ),
    (
        "tests/suite/upload_encoding.rs",
        "a_failed_encoding_is_said_and_force_uploads_the_file_again",
        "fea2b29",
        "a video whose encoding failed was `skipped` by the next run, and --force did nothing",
    ),
    (
        "tests/suite/check.rs",
        "check_sees_tracks_deleted_by_hand",
        "2fdf098",
        "captions and chapters deleted by hand left `check` saying in step",
    ),
    (
        "tests/suite/serve_exposure.rs",
        "a_private_videos_media_needs_the_token_a_get_of_it_gives",
        "issue #25",
        "avbatch serve served `public=false` videos at plain asset URLs to anyone, without a token",
    ),
    (
        "tests/suite/serve_exposure.rs",
        "serve_on_an_address_other_machines_reach_says_so",
        "issue #25",
        "`avbatch serve --addr 0.0.0.0` started without a word, reachable from other machines",
    ),
    (
        "tests/suite/sources.rs",
        "an_s3_endpoint_over_http_without_allow_http_says_to_set_it",
        "issue #25",
        "an http:// S3 endpoint failed with `builder error: URL scheme is not allowed`, no hint",
    ),
    (
        "tests/suite/manifest_checks.rs",
        "a_70_000_character_url_is_a_problem_of_its_line_and_column",
        "issue #25",
        "a 70 000-character URL in `path` panicked the check (`InvalidUri(TooLong)`), no line",
    ),
    (
        "tests/suite/asset_checks.rs",
        "captions_of_26_mb_are_checked_in_bounded_memory_and_found_broken_deep_inside",
        "issue #25",
        "a dry run of 64 rows with two 26 MB caption files each peaked at 2.3 GB RSS",
    ),
    (
        "tests/suite/racing_creates.rs",
        "a_run_gives_its_video_up_for_one_made_first_though_its_own_pull_landed_first",
        "issue #25",
        "3 runs at once over URL rows: 1 trial in 5 left 28 or 31 videos for 30 rows",
    ),
    (
        "tests/suite/asset_checks.rs",
        "captions_of_26_mb_are_checked_in_bounded_memory_and_found_broken_deep_inside",
        "issue #25",
        "uploading 64 rows of two 13 MB caption tracks peaked at 400 MB of RSS",
    ),
    (
        "tests/suite/racing_creates.rs",
        "a_create_a_gateway_gave_up_on_that_lands_late_is_deleted",
        "issue #25",
        "a create answered 504 that took effect after the run's lookup stayed as a second video",
    ),
    (
        "tests/suite/assets_the_video_lacks.rs",
        "tracks_deleted_by_hand_are_sent_again_without_the_journal_and_nothing_else",
        "45d4c9a",
        "`upload --no-journal` never restored tracks deleted by hand: the marker listed them",
    ),
    (
        "tests/suite/assets_the_video_lacks.rs",
        "a_fresh_journal_sends_no_asset_the_videos_already_hold",
        "45d4c9a",
        "a run with a fresh journal sent all 6 assets again to videos already holding them",
    ),
    (
        "tests/suite/check.rs",
        "a_manifest_sharing_the_account_names_the_other_and_sees_only_its_own_extras",
        "fc20304",
        "`check` of one of two manifests sharing an account listed all the other's videos as extra",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "a_resumed_row_is_planned_for_the_bytes_it_has_left",
        "7e9d676",
        "the dry run counted whole files for resumed rows: 964 MiB planned, 764 sent",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "a_failed_encoding_is_planned_as_the_failure_and_force_as_the_upload",
        "7e9d676",
        "the dry run said `retry` for a failed encoding where the run sent nothing and failed",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "captions_added_or_changed_since_are_planned_and_sent",
        "7e9d676",
        "the dry run said `skip` for a done row whose captions the run then sent",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "an_update_row_s_new_caption_is_planned_and_sent",
        "afac5c5",
        "the dry run said `skip` for an `update` row whose new caption the run then sent",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "fields_the_journal_records_as_set_are_skipped_by_plan_and_run_alike",
        "7e9d676",
        "the dry run said `update (title,tags)` for a row the run skipped",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "a_delete_row_plans_the_videos_the_run_deletes_and_then_skips",
        "7e9d676",
        "a delete row planned two videos (one under 0.1's raw key); the run deleted one",
    ),
    (
        "tests/suite/plan_agrees.rs",
        "a_delete_row_keyed_by_its_touched_file_deletes_the_video_it_was_uploaded_as",
        "7e9d676",
        "a delete row keyed by its touched file found nothing: its video stayed",
    ),
    (
        "tests/suite/pulls.rs",
        "a_pull_whose_create_answer_was_lost_is_reported_as_this_runs_pull",
        "6741bb6",
        "a pulled row whose create's answer was lost was reported skipped by relay",
    ),
    (
        "tests/suite/actions.rs",
        "a_row_that_only_sent_assets_to_its_complete_video_is_reported_updated",
        "1e0c31a",
        "an `update` or in-step `upsert` row that only re-sent a caption was reported uploaded",
    ),
    (
        "tests/suite/report_record.rs",
        "the_latest_report_carries_what_earlier_runs_did_of_each_row",
        "8c9b610",
        "the latest report listed rows done before as skipped, assets and transfer blank",
    ),
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `file` defines a function `name`.
fn defines(file: &Path, name: &str) -> bool {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.contains(&format!("fn {name}("))
}

#[test]
fn every_past_bug_in_the_register_names_a_test_that_exists() {
    let mut missing = Vec::new();
    for (file, test, fixed_in, saw) in REGISTER {
        assert!(!fixed_in.is_empty() && !saw.is_empty(), "{test}: say the fix and the bug");
        if !defines(&repository().join(file), test) {
            missing.push(format!("{file}: fn {test}"));
        }
    }
    assert!(missing.is_empty(), "the register names tests that do not exist: {missing:#?}");
}
