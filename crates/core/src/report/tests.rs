use super::writer::JsonOut;
use super::*;

fn row(line: u64, status: RowStatus) -> ReportRow {
    ReportRow {
        id: Some(format!("id-{line}")),
        line,
        path: format!("v{line}.mp4"),
        video_id: Some(format!("vi{line}")),
        status,
        bytes: 10,
        sent: 10,
        parts: 1,
        seconds: 0.5,
        mb_per_s: 0.0,
        error: (status == RowStatus::Failed).then(|| "boom \"quoted\"\nand a newline".into()),
        note: None,
        title: format!("Video {line}"),
        key: format!("{line:032x}"),
        size: 10,
        mtime: Some("2026-11-30T00:29:00.000Z".into()),
        started_at: Some("2026-11-30T00:30:00.000Z".into()),
        ended_at: Some("2026-11-30T00:30:01.000Z".into()),
        destination: Some("http://127.0.0.1:1".into()),
        run_id: Some("2026-11-30T00:29:59.000Z".into()),
        fingerprint: None,
        assets: line.is_multiple_of(2).then(|| "thumbnail captions.en".into()),
        encoding: line.is_multiple_of(3).then(|| "playable".into()),
        encoding_seconds: line.is_multiple_of(3).then_some(1.5),
        action: Some("create".into()),
        updated: line.is_multiple_of(4).then(|| "title tags".into()),
        transfer: Some("file".into()),
        done_at: Some("2026-11-30T00:30:10.000Z".into()),
        done_by: line.is_multiple_of(2).then(|| "2026-11-29T23:00:00.000Z".into()),
    }
}

#[derive(Serialize)]
struct Whole<'a> {
    summary: &'a Summary,
    rows: &'a [ReportRow],
}

#[test]
fn the_json_report_written_row_by_row_is_the_whole_document_pretty_printed() {
    let summary = Summary { rows: 3, uploaded: 2, shard: Some("1/4".into()), ..Summary::default() };
    for rows in [
        vec![],
        vec![row(2, RowStatus::Uploaded)],
        vec![row(2, RowStatus::Uploaded), row(5, RowStatus::Failed), row(9, RowStatus::Pending)],
    ] {
        let mut json = JsonOut::start(Vec::new(), &summary).unwrap();
        for r in &rows {
            json.row(r).unwrap();
        }
        let streamed = String::from_utf8(json.end().unwrap()).unwrap();
        let whole =
            serde_json::to_string_pretty(&Whole { summary: &summary, rows: &rows }).unwrap() + "\n";
        assert_eq!(streamed, whole);
    }
}

#[test]
fn results_arriving_out_of_order_come_back_by_row_and_rows_without_one_are_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mut results = Results::new();
    // Spilled runs too: more results than are held in memory, finishing out of order.
    let n = RESULTS_IN_MEMORY * 2 + 7;
    for i in (0..n).rev().filter(|i| i % 3 != 0) {
        let mut r = RowResult::new(i, RowStatus::Uploaded);
        r.sent = 1;
        results.add(r).unwrap();
    }
    let summary = results.summary(n);
    assert_eq!(
        (summary.rows, summary.uploaded, summary.pending, summary.bytes),
        (n, n - n.div_ceil(3), n.div_ceil(3), (n - n.div_ceil(3)) as u64)
    );
    let rows = (0..n).map(|i| {
        let mut row = Row::new(i as u64 + 2);
        row.path_text = format!("v{i}.mp4");
        Ok(row)
    });
    let path = dir.path().join("r.csv");
    let (written, _) =
        write_run(&path, &summary, rows, results, Some("not started: stopped"), &mut ());
    written.unwrap();
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), n);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r[1], (i + 2).to_string());
        let (status, error) =
            if i % 3 == 0 { ("pending", "not started: stopped") } else { ("uploaded", "") };
        assert_eq!((&r[4], &r[10]), (status, error), "row {i}");
    }
}
