use super::*;

use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/texttrack").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The error `text` (a file's contents) gets as a track of `kind`.
fn error(text: &str, kind: Kind) -> ParseError {
    match load(text.as_bytes(), kind) {
        Ok(track) => panic!("{text:?} loaded: {track:?}"),
        Err(e) => e,
    }
}

/// `(line, column)` of the error `text` gets as captions, and its message.
fn at(text: &str) -> (u64, u64, String) {
    let e = error(text, Kind::Captions);
    (e.line, e.column, e.message)
}

fn captions(text: &str) -> Track {
    load(text.as_bytes(), Kind::Captions).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn texttrack_webvtt_fixture_is_sent_byte_for_byte() {
    let bytes = fixture("full.vtt");
    assert!(bytes.starts_with(BOM.as_bytes()) && bytes.windows(2).any(|w| w == b"\r\n"));
    let track = load(&bytes, Kind::Captions).unwrap();
    assert_eq!(track, Track { format: Format::WebVtt, vtt: bytes, cues: 4 });
}

#[test]
fn texttrack_english_samples_load() {
    let track = load(&fixture("sample.en.vtt"), Kind::Captions).unwrap();
    assert_eq!((track.format, track.cues), (Format::WebVtt, 4));
    let chapters = load(&fixture("chapters.en.vtt"), Kind::Chapters).unwrap();
    assert_eq!((chapters.format, chapters.cues), (Format::WebVtt, 3));
}

#[test]
fn texttrack_srt_fixtures_convert_to_the_expected_webvtt_byte_for_byte() {
    for (srt, expected, cues) in
        [("rich.srt", "rich.expected.vtt", 5), ("sample.fr.srt", "sample.fr.expected.vtt", 4)]
    {
        let track = load(&fixture(srt), Kind::Captions).unwrap();
        assert_eq!(track.format, Format::Srt, "{srt}");
        assert_eq!(track.cues, cues, "{srt}");
        let expected = fixture(expected);
        assert_eq!(
            String::from_utf8_lossy(&track.vtt),
            String::from_utf8_lossy(&expected),
            "{srt}"
        );
        assert_eq!(track.vtt, expected, "{srt}");
        // What is sent is itself a good WebVTT track, sent as it is.
        let again = load(&track.vtt, Kind::Captions).unwrap();
        assert_eq!(again, Track { format: Format::WebVtt, vtt: track.vtt.clone(), cues });
    }
}

#[test]
fn texttrack_every_srt_fixture_converts_to_webvtt_that_loads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/texttrack");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "srt") {
            let track = load(&std::fs::read(&path).unwrap(), Kind::Captions).unwrap();
            let again = load(&track.vtt, Kind::Captions)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!((again.format, again.cues), (Format::WebVtt, track.cues));
            seen += 1;
        }
    }
    assert!(seen >= 2, "{seen} SRT fixtures");
}

/// Each bad fixture: the kind it is loaded as, and the line, column and start of the message
/// it fails with.
const BAD: &[(&str, Kind, u64, u64, &str)] = &[
    ("reversed.vtt", Kind::Captions, 6, 1, "cue starts at 00:00:05.000, before the previous"),
    ("end_before_start.vtt", Kind::Captions, 6, 18, "end 00:00:01.000 is not after start"),
    ("timestamp_digits.vtt", Kind::Captions, 3, 27, "expected exactly 3 digits of millis"),
    ("minutes_60.srt", Kind::Captions, 6, 4, "minutes out of range: `60` (00 to 59)"),
    ("missing_arrow.vtt", Kind::Captions, 4, 14, "expected `-->` between the cue's start"),
    ("unknown_setting.vtt", Kind::Captions, 3, 43, "unknown cue setting `colour`"),
    ("not_utf8.srt", Kind::Captions, 3, 2, "the file is not UTF-8 (byte 0xE9 at offset 35)"),
    ("empty.vtt", Kind::Captions, 1, 1, "the file is empty (no cues)"),
    ("no_cues.vtt", Kind::Captions, 3, 1, "no cues"),
    ("arrow_in_text.srt", Kind::Captions, 5, 14, "`-->` in a cue's text"),
    ("chapters_empty_title.vtt", Kind::Chapters, 6, 1, "chapter has no title"),
    ("chapters_overlap.vtt", Kind::Chapters, 6, 1, "chapter starts at 00:00:03.000, before"),
];

#[test]
fn texttrack_bad_fixtures_fail_at_the_failing_token() {
    for (name, kind, line, column, message) in BAD {
        let e = load(&fixture(&format!("bad/{name}")), *kind).unwrap_err();
        assert_eq!((e.line, e.column), (*line, *column), "{name}: {e}");
        assert!(e.message.starts_with(message), "{name}: {e}");
    }
}

#[test]
fn texttrack_chapters_problems_are_fine_in_captions() {
    for name in ["chapters_empty_title.vtt", "chapters_overlap.vtt"] {
        let track = load(&fixture(&format!("bad/{name}")), Kind::Captions).unwrap();
        assert_eq!(track.format, Format::WebVtt);
    }
}

#[test]
fn texttrack_error_messages_name_the_line_and_show_it() {
    let e = load(&fixture("bad/reversed.vtt"), Kind::Captions).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 6, column 1: cue starts at 00:00:05.000, before the previous cue's 00:00:07.000 \
         (cues must be in order): `00:00:05.000 --> 00:00:06.000`"
    );
    let e = load(&fixture("bad/not_utf8.srt"), Kind::Captions).unwrap_err();
    assert_eq!(e.text, "D\u{fffd}j\u{fffd} vu, en Latin-1.");
    let e = load(&fixture("bad/end_before_start.vtt"), Kind::Captions).unwrap_err();
    assert_eq!(e.message, "end 00:00:01.000 is not after start 00:00:02.000");
    let long = format!("WEBVTT\n\n00:01.000 --> 00:02.000 {}", "x".repeat(300));
    let e = error(&long, Kind::Captions);
    assert_eq!(e.text.chars().count(), MAX_TEXT_CHARS + 1);
    assert!(e.text.ends_with('…'));
}

#[test]
fn texttrack_signature() {
    assert_eq!(captions("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n").cues, 1);
    assert_eq!(captions("WEBVTT\tx\n\n00:01.000 --> 00:02.000\nHi").cues, 1);
    assert_eq!(captions("\u{feff}WEBVTT\r\r00:01.000 --> 00:02.000\rHi\r").cues, 1);
    let (line, column, message) = at("WEBVTTX\n\n00:01.000 --> 00:02.000\nHi\n");
    assert_eq!((line, column), (1, 7));
    assert!(message.starts_with("missing the `WEBVTT` signature on the first line"), "{message}");
    let (line, column, message) = at("Hello\n\n00:01.000 --> 00:02.000\nHi\n");
    assert_eq!((line, column), (1, 1));
    assert!(message.starts_with("missing the `WEBVTT` signature on the first line"), "{message}");
    // The BOM is not counted in columns.
    assert_eq!(at("\u{feff}webvtt\n").1, 1);
    assert_eq!(at("\n\n \n").0, 1);
}

#[test]
fn texttrack_line_endings_count_lines_alike() {
    for ending in ["\n", "\r\n", "\r"] {
        let text = ["WEBVTT", "", "00:01.000 --> 00:02.000", "a", "", "00:00.500 --> 00:03.000"]
            .join(ending);
        assert_eq!(at(&text).0, 6, "{ending:?}");
    }
}

#[test]
fn texttrack_webvtt_timestamps() {
    let cue = |timing: &str| format!("WEBVTT\n\n{timing}\nHi\n");
    for good in [
        "00:01.000 --> 00:02.000",
        "01:00.000 --> 59:59.999",
        "00:00:01.000 --> 100:00:00.000",
        "00:00.000-->00:01.000",
        "  00:00.000 \t-->\t00:01.000  ",
    ] {
        assert_eq!(captions(&cue(good)).cues, 1, "{good}");
    }
    let bad = [
        ("0:00:01.000 --> 00:00:02.000", 1, "hours need at least 2 digits"),
        ("00:1.000 --> 00:02.000", 4, "seconds need exactly 2 digits"),
        ("60:00.000 --> 61:00.000", 1, "minutes out of range: `60`"),
        ("00:00:60.000 --> 00:01:00.000", 7, "seconds out of range: `60`"),
        ("00:00:01,000 --> 00:00:02.000", 9, "expected `.` and 3 digits"),
        ("00:00:01.0000 --> 00:00:02.000", 10, "expected exactly 3 digits of milliseconds"),
        ("00:00:00:01.000 --> 00:00:02.000", 9, "too many `:`"),
        ("01.000 --> 00:02.000", 3, "expected `:` in the timestamp"),
        ("00:01.000 -> 00:02.000", 11, "expected `-->` between"),
        ("00:01.000 --> ", 15, "expected a timestamp"),
        ("00:01.000 --> 00:01.000", 15, "end 00:00:01.000 is not after start 00:00:01.000"),
        ("00:01.000 --> 00:02.000align:start", 24, "expected a space between"),
    ];
    for (timing, column, message) in bad {
        let (line, col, got) = at(&cue(timing));
        assert_eq!((line, col), (3, column), "{timing}: {got}");
        assert!(got.starts_with(message), "{timing}: {got}");
    }
}

#[test]
fn texttrack_webvtt_cue_settings() {
    let cue = |settings: &str| format!("WEBVTT\n\n00:01.000 --> 00:02.000 {settings}\nHi\n");
    for good in [
        "vertical:rl",
        "vertical:lr line:0 position:10% size:50.5% align:left region:top",
        "line:-3,end position:100%,line-left align:end",
        "line:42.5%,center position:0%,line-right align:right",
        "line:1  \t align:center",
    ] {
        assert_eq!(captions(&cue(good)).cues, 1, "{good}");
    }
    let bad = [
        ("colour:red", 25, "unknown cue setting `colour`"),
        ("align:middle", 31, "bad value `middle` for cue setting `align`"),
        ("vertical:up", 34, "bad value `up`"),
        ("size:101%", 30, "bad value `101%`"),
        ("size:50", 30, "bad value `50`"),
        ("position:50%,top", 34, "bad value `50%,top`"),
        ("line:1.5", 30, "bad value `1.5`"),
        ("region:", 32, "bad value ``"),
        ("align", 25, "expected a cue setting `name:value`"),
        ("align:start align:end", 37, "cue setting `align` given twice"),
    ];
    for (settings, column, message) in bad {
        let (line, col, got) = at(&cue(settings));
        assert_eq!((line, col), (3, column), "{settings}: {got}");
        assert!(got.starts_with(message), "{settings}: {got}");
    }
}

#[test]
fn texttrack_webvtt_blocks() {
    let ok = "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:0\n\nREGION\nid:top width:40%\n\n\
              STYLE\n::cue { color: red }\n\nNOTE a\nnote\n\nid with spaces\n00:01.000 --> \
              00:02.000\n\n\n00:02.000 --> 00:03.000\nOne\n  \nthree lines\n\nNOTE after\n";
    assert_eq!(captions(ok).cues, 2);
    // Equal starts are in order.
    assert_eq!(
        captions("WEBVTT\n\n00:01.000 --> 00:03.000\na\n\n00:01.000 --> 00:02.000\nb").cues,
        2
    );
    let bad = [
        ("WEBVTT\n00:01.000 --> 00:02.000\nHi\n", 2, 11, "a cue right under the `WEBVTT`"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n00:02.000 --> 00:03.000\n", 5, 11, "`-->` in a"),
        ("WEBVTT\n\nNOTE\nid\n00:01.000 --> 00:02.000\n", 5, 11, "`-->` in a NOTE block"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n\nSTYLE\n::cue {}\n", 6, 1, "a STYLE block after"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n\nREGION\nid:x\n", 6, 1, "a REGION block after"),
        ("WEBVTT\n\nHello there\n", 3, 1, "expected a cue (an optional identifier"),
        ("WEBVTT\n\nid\n00:01.000 00:02.000\n", 4, 11, "expected `-->`"),
        ("WEBVTT\n\n00:01.000\nHi\n", 3, 10, "expected `-->`"),
        ("WEBVTT\n\nNOTE nothing\n", 3, 1, "no cues"),
        ("WEBVTT\n", 1, 1, "no cues"),
    ];
    for (text, line, column, message) in bad {
        let (l, c, got) = at(text);
        assert_eq!((l, c), (line, column), "{text:?}: {got}");
        assert!(got.starts_with(message), "{text:?}: {got}");
    }
}

#[test]
fn texttrack_chapters() {
    let good = "WEBVTT\n\n00:00.000 --> 00:01.000\nOne\n\n00:01.000 --> 00:02.000\nTwo\n";
    assert_eq!(load(good.as_bytes(), Kind::Chapters).unwrap().cues, 2);
    let untitled = "WEBVTT\n\n00:00.000 --> 00:01.000\nOne\n\nc2\n00:01.000 --> 00:02.000\n \n";
    let e = error(untitled, Kind::Chapters);
    assert_eq!((e.line, e.column), (7, 1), "{e}");
    let srt = "1\n00:00:00,000 --> 00:00:02,000\nOne\n\n2\n00:00:01,000 --> 00:00:03,000\nTwo\n";
    let e = error(srt, Kind::Chapters);
    assert_eq!((e.line, e.column), (6, 1), "{e}");
    assert_eq!(
        e.message,
        "chapter starts at 00:00:01.000, before the previous chapter ends at 00:00:02.000 \
         (chapters must not overlap)"
    );
    // A title that is only an override tag is no title.
    let srt = "1\n00:00:00,000 --> 00:00:02,000\n{\\an8}\n";
    assert_eq!(error(srt, Kind::Chapters).line, 2);
    assert_eq!(captions(srt).vtt, b"WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.000\n\n");
}

#[test]
fn texttrack_srt_reading() {
    // Blank lines before the first cue and between cues, spaces on them, `.` for `,`,
    // coordinates, a cue without text, a number that skips.
    let srt = "\n\n1\n0:00:01.000 --> 0:00:02,000  X1:-5 Y2:10 \nHi\n\n\n \n3\n\
               00:00:02,500 --> 00:00:03,000\n";
    let track = captions(srt);
    assert_eq!(track.format, Format::Srt);
    assert_eq!(
        String::from_utf8(track.vtt).unwrap(),
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\nHi\n\n3\n00:00:02.500 --> 00:00:03.000\n\n"
    );
    let bad = [
        ("1\n00:00:01,000 --> 00:00:02,000\nHi\n\n2a\n", 5, 2, "expected the cue's number"),
        ("00:00:01,000 --> 00:00:02,000\nHi\n", 1, 1, "expected the cue's number on the line"),
        ("1\n", 1, 2, "expected the timing line"),
        ("1\n00:01,000 --> 00:00:02,000\n", 2, 6, "expected `:` in the timestamp"),
        ("1\n00:00:01,00 --> 00:00:02,000\n", 2, 10, "expected exactly 3 digits"),
        ("1\n00:00:01,000 --> 00:00:02,000 X3:1\n", 2, 31, "unexpected `X3:1` after the end"),
        ("1\n00:00:02,000 --> 00:00:01,000\n", 2, 18, "end 00:00:01.000 is not after"),
        ("1\n00:00:01:000 --> 00:00:02,000\n", 2, 9, "too many `:`"),
    ];
    for (text, line, column, message) in bad {
        let (l, c, got) = at(text);
        assert_eq!((l, c), (line, column), "{text:?}: {got}");
        assert!(got.starts_with(message), "{text:?}: {got}");
    }
}

#[test]
fn texttrack_srt_text_conversion() {
    for (srt, vtt) in [
        ("plain", "plain"),
        ("<B>bold</B> <i>it</i> <u>u</u>", "<b>bold</b> <i>it</i> <u>u</u>"),
        ("<font color=\"#ff0000\">red</font>", "red"),
        ("<FONT face='x'>f</Font>", "f"),
        ("{\\an8}top {\\i1}x", "top x"),
        ("{not an override}", "{not an override}"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("<fontx> <br> <3", "&lt;fontx&gt; &lt;br&gt; &lt;3"),
        (
            "R&D &amp; &#233; &#xE9; &eacute; & &; &#; &x y;",
            "R&amp;D &amp; &#233; &#xE9; &eacute; &amp; &amp;; &amp;#; &amp;x y;",
        ),
        ("--{\\an8}> then", "--&gt; then"),
        ("<font color=red", "&lt;font color=red"),
        ("été 日本語", "été 日本語"),
    ] {
        assert_eq!(srt::convert_text(srt), vtt, "{srt}");
    }
}

#[test]
fn texttrack_not_utf8_is_found_where_it_is() {
    let cases: [(&[u8], u64, u64); 5] = [
        (b"\xff", 1, 1),
        (b"\xef\xbb\xbfWEB\xffVTT", 1, 4),
        (b"WEBVTT\n\n\xff\n", 3, 1),
        (b"WEBVTT\r\n\r\n00:01.000 --> 00:02.000\r\nd\xe9j\xe0\r\n", 4, 2),
        (b"1\r00:00:01,000 --> 00:00:02,000\r\xc3", 3, 1),
    ];
    for (bytes, line, column) in cases {
        let e = load(bytes, Kind::Captions).unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{bytes:?}: {e}");
        assert!(e.message.starts_with("the file is not UTF-8"), "{e}");
    }
}
