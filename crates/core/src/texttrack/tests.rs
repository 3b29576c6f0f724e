use super::*;

use std::path::PathBuf;

const BOM: &str = "\u{feff}";

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
        "vertical:lr line:0 position:10% size:50.5% align:left",
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

// Issue #24, item 7: files refused that are valid.

#[test]
fn texttrack_srt_cue_numbers_may_be_missing() {
    // No numbers at all: the cues are written without identifiers.
    let srt = "00:00:01,000 --> 00:00:02,000\nHi\n\n00:00:03,000 --> 00:00:04,000\nHo\n";
    let track = captions(srt);
    assert_eq!((track.format, track.cues), (Format::Srt, 2));
    assert_eq!(
        String::from_utf8(track.vtt).unwrap(),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHi\n\n00:00:03.000 --> 00:00:04.000\nHo\n\n"
    );
    // Text after a blank line is still no cue: refused where it is, not merged or dropped.
    let (line, column, message) = at("1\n00:00:01,000 --> 00:00:02,000\nHi\n\nthere\n");
    assert_eq!((line, column), (5, 1));
    assert!(message.contains("a cue's text cannot hold a blank line"), "{message}");
}

#[test]
fn texttrack_srt_cue_numbers_written_oddly() {
    // `1.1`, `-1`, `007`, a number with spaces after it, and one cue without: read as SRT, each
    // number kept as the cue's identifier.
    let srt = "1.1\n00:00:01,000 --> 00:00:02,000\nA\n\n-1\n00:00:02,000 --> 00:00:03,000\nB\n\n\
               007\n00:00:03,000 --> 00:00:04,000\nC\n\n4 \t\n00:00:04,000 --> 00:00:05,000\nD\n\n\
               00:00:05,000 --> 00:00:06,000\nE\n";
    let track = captions(srt);
    assert_eq!((track.format, track.cues), (Format::Srt, 5));
    let vtt = String::from_utf8(track.vtt).unwrap();
    for id in ["\n1.1\n00:00:01.000", "\n-1\n00:00:02.000", "\n007\n00:00:03.000", "\n4\n00:00:04"]
    {
        assert!(vtt.contains(id), "{id:?} in {vtt}");
    }
    assert!(vtt.contains("\n\n00:00:05.000 --> 00:00:06.000\nE\n"), "{vtt}");
    // A file that starts with such a number is SRT, not "not SRT either".
    for first in ["1.1", "-1", "-2.5"] {
        let srt = format!("{first}\n00:00:01,000 --> 00:00:02,000\nHi\n");
        assert_eq!(captions(&srt).format, Format::Srt, "{first}");
    }
}

#[test]
fn texttrack_srt_zero_length_cue() {
    let srt = "1\n00:00:01,000 --> 00:00:01,000\nFlash\n\n2\n00:00:02,000 --> 00:00:03,000\nHi\n";
    let track = captions(srt);
    assert_eq!(track.cues, 2);
    let vtt = String::from_utf8(track.vtt).unwrap();
    assert!(vtt.contains("\n1\n00:00:01.000 --> 00:00:01.000\nFlash\n"), "{vtt}");
    // Ending before it starts is still refused, in SRT as in WebVTT.
    let (line, column, message) = at("1\n00:00:02,000 --> 00:00:01,999\nHi\n");
    assert_eq!((line, column), (2, 18));
    assert!(message.starts_with("end 00:00:01.999 is not after start"), "{message}");
}

#[test]
fn texttrack_srt_cues_out_of_order_are_sorted_stably() {
    let srt = "1\n00:01:00,000 --> 00:01:02,000\nlast\n\n2\n00:00:05,000 --> 00:00:09,000\n\
               first\n\n3\n00:00:10,000 --> 00:00:11,000\nthird\n\n4\n00:00:05,000 --> \
               00:00:06,000\nsecond\n";
    let track = captions(srt);
    assert_eq!(track.cues, 4);
    assert_eq!(
        String::from_utf8(track.vtt.clone()).unwrap(),
        "WEBVTT\n\n2\n00:00:05.000 --> 00:00:09.000\nfirst\n\n4\n00:00:05.000 --> 00:00:06.000\n\
         second\n\n3\n00:00:10.000 --> 00:00:11.000\nthird\n\n1\n00:01:00.000 --> 00:01:02.000\n\
         last\n\n"
    );
    // What is sent loads as WebVTT, in order.
    assert_eq!(load(&track.vtt, Kind::Captions).unwrap().cues, 4);
    // Chapters out of order are sorted too, then must not overlap.
    let chapters =
        "2\n00:00:10,000 --> 00:00:20,000\nTwo\n\n1\n00:00:00,000 --> 00:00:10,000\nOne\n";
    assert_eq!(load(chapters.as_bytes(), Kind::Chapters).unwrap().cues, 2);
    let overlapping = "2\n00:00:05,000 --> 00:00:20,000\nTwo\n\n1\n00:00:00,000 --> 00:00:10,000\n\
                       One\n";
    let e = error(overlapping, Kind::Chapters);
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.starts_with("chapter starts at 00:00:05.000, before the previous"), "{e}");
}

#[test]
fn texttrack_webvtt_whitespace_only_lines_end_blocks_as_browsers_read_them() {
    // A line of spaces, tabs or a form feed between cues, after the signature, before an empty
    // line.
    for blank in ["   ", "\t", " \t ", "\u{c}"] {
        let text = format!(
            "WEBVTT\n{blank}\n00:01.000 --> 00:02.000\nHi\n{blank}\n00:03.000 --> 00:04.000\n\
             Ho\n{blank}\n\nid\n00:05.000 --> 00:06.000\nHa\n{blank}\n"
        );
        assert_eq!(captions(&text).cues, 3, "{blank:?}");
    }
    // A subtitle file of a film's length, its cues parted by lines of spaces, CRLF: every cue.
    let mut film = String::from("WEBVTT\r\n\r\n");
    for n in 0..1333u64 {
        let (start, end) = (cue::show(n * 3000), cue::show(n * 3000 + 2500));
        film.push_str(&format!("{start} --> {end}\r\nLine {n}\r\n  \r\n"));
    }
    assert_eq!(captions(&film).cues, 1333);
    // A whitespace line with more text after it is text, as a browser shows it.
    assert_eq!(captions("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n \nthere\n").cues, 1);
    // A whitespace line, then an identifier and a timing line: a browser shows the identifier as
    // the cue's last line of text, so the file is refused at the whitespace line.
    let (line, column, message) =
        at("WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n \n2\n00:03.000 --> 00:04.000\nHo\n");
    assert_eq!((line, column), (5, 1));
    assert!(
        message.starts_with("a line of only whitespace, then text, then a timing"),
        "{message}"
    );
}

/// `text` in UTF-16 or UTF-32, `big_endian` or not, after its byte order mark.
fn wide(text: &str, width: usize, big_endian: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut push = |unit: u32| {
        let all = unit.to_be_bytes();
        let mut unit = all[4 - width..].to_vec();
        if !big_endian {
            unit.reverse();
        }
        bytes.extend(unit);
    };
    push(0xfeff);
    for c in text.chars() {
        if width == 4 {
            push(c as u32);
        } else {
            let mut units = [0; 2];
            c.encode_utf16(&mut units).iter().for_each(|u| push(u32::from(*u)));
        }
    }
    bytes
}

#[test]
fn texttrack_utf16_and_utf32_with_a_byte_order_mark_are_read_and_sent_as_utf8() {
    let vtt = "WEBVTT\r\n\r\n00:01.000 --> 00:02.000\r\nÉté 日本語 🎬\r\n";
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nÉté 🎬\n";
    for (width, big_endian) in [(2, false), (2, true), (4, false), (4, true)] {
        let track = load(&wide(vtt, width, big_endian), Kind::Captions)
            .unwrap_or_else(|e| panic!("{width} {big_endian}: {e}"));
        assert_eq!(track, Track { format: Format::WebVtt, vtt: vtt.as_bytes().to_vec(), cues: 1 });
        let track = load(&wide(srt, width, big_endian), Kind::Captions).unwrap();
        assert_eq!(track.format, Format::Srt);
        assert_eq!(
            track.vtt,
            b"WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\n\xc3\x89t\xc3\xa9 \xf0\x9f\x8e\xac\n\n"
        );
    }
    // What does not decode is found where it is: a lone surrogate, a cut-off last unit.
    let mut bytes = wide("WEBVTT\n\nab", 2, false);
    bytes.extend([0x00, 0xd8, b'c', 0]);
    let e = load(&bytes, Kind::Captions).unwrap_err();
    assert_eq!((e.line, e.column), (3, 3), "{e}");
    assert!(e.message.starts_with("the file is not UTF-16 as its byte order mark says"), "{e}");
    let mut bytes = wide("WEBVTT\n", 4, true);
    bytes.extend([0, 0, 0]);
    let e = load(&bytes, Kind::Captions).unwrap_err();
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.starts_with("the file is not UTF-32"), "{e}");
    // Without a mark, UTF-16 is not guessed.
    let mut bytes = wide(vtt, 2, false);
    bytes.drain(..2);
    assert!(load(&bytes, Kind::Captions).is_err());
}

// Issue #24, item 8: files accepted that are broken.

#[test]
fn texttrack_webvtt_cues_name_regions_defined() {
    let region = "REGION\nid:fred width:40% lines:3\nregionanchor:0%,100% viewportanchor:10%,90% \
                  scroll:up";
    let good = format!(
        "WEBVTT\n\n{region}\n\nREGION\nid:bill\n\n00:01.000 --> 00:02.000 \
                        region:fred\nHi\n\n00:02.000 --> 00:03.000 region:bill align:left\nHo\n"
    );
    assert_eq!(captions(&good).cues, 2);
    let undefined = format!("WEBVTT\n\n{region}\n\n00:01.000 --> 00:02.000 region:bill\nHi\n");
    let (line, column, message) = at(&undefined);
    assert_eq!((line, column), (7, 32), "{message}");
    assert!(message.starts_with("no REGION block defines region `bill`"), "{message}");
    let (line, column, message) = at("WEBVTT\n\n00:01.000 --> 00:02.000 region:fred\nHi\n");
    assert_eq!((line, column), (3, 32), "{message}");
}

#[test]
fn texttrack_webvtt_region_blocks_are_checked() {
    // A REGION block with `lines` (its first line, `REGION`, is line 3), then a cue.
    let block = |lines: &str| format!("WEBVTT\n\nREGION{lines}\n\n00:01.000 --> 00:02.000\nHi\n");
    let bad = [
        (block("\nwidth:40%"), 3, 1, "a REGION block without an `id:`"),
        (block("\nid:a\nid:b"), 5, 1, "region setting `id` given twice"),
        (block("\nid:a\n\nREGION\nid:a"), 7, 4, "region `a` is defined twice (first by the REGION"),
        (block("\nid:a colour:red"), 4, 6, "unknown region setting `colour`"),
        (block("\nid:a width:101%"), 4, 12, "bad value `101%` for region setting `width`"),
        (block("\nid:a width:40"), 4, 12, "bad value `40`"),
        (block("\nid:a lines:1.5"), 4, 12, "bad value `1.5`"),
        (block("\nid:a lines:-1"), 4, 12, "bad value `-1`"),
        (block("\nid:a regionanchor:0%"), 4, 19, "bad value `0%`"),
        (block("\nid:a viewportanchor:0,0"), 4, 21, "bad value `0,0`"),
        (block("\nid:a scroll:down"), 4, 13, "bad value `down`"),
        (block("\nid:a scroll:"), 4, 6, "expected a region setting"),
        (block(" id:a"), 3, 8, "text after `REGION`"),
    ];
    for (text, line, column, message) in bad {
        let (l, c, got) = at(&text);
        assert_eq!((l, c), (line, column), "{text:?}: {got}");
        assert!(got.starts_with(message), "{text:?}: {got}");
    }
}

#[test]
fn texttrack_webvtt_line_numbers_too_large_for_a_number_are_refused() {
    let cue = |line: &str| format!("WEBVTT\n\n00:01.000 --> 00:02.000 line:{line}\nHi\n");
    // The largest double, written out, either way; and far past a 64-bit integer.
    let max = format!("17976931348623157{}", "0".repeat(292));
    for good in [max.clone(), format!("-{max}"), "18446744073709552000".to_owned()] {
        assert_eq!(captions(&cue(&good)).cues, 1, "{good}");
    }
    // Past it: a browser drops the setting.
    let past = format!("17976931348623159{}", "0".repeat(292));
    for bad in [past.clone(), format!("-{past}"), format!("{past},end"), "9".repeat(400)] {
        let (line, column, message) = at(&cue(&bad));
        assert_eq!((line, column), (3, 30), "{bad}");
        assert!(message.starts_with("bad value"), "{message}");
    }
}

#[test]
fn texttrack_arrow_without_spaces_is_one_rule_in_webvtt_and_srt() {
    let vtt = "WEBVTT\n\nid\n00:01.000-->00:02.000\nHi\n\n00:02.000\t-->00:03.000 align:end\nHo\n";
    assert_eq!(captions(vtt).cues, 2);
    for srt in [
        "1\n00:00:01,000-->00:00:02,000\nHi\n",
        "00:00:01,000-->00:00:02,000\nHi\n",
        "\n00:00:01,000 -->00:00:02,000  X1:1 X2:2 Y1:3 Y2:4\nHi\n",
    ] {
        let track = captions(srt);
        assert_eq!((track.format, track.cues), (Format::Srt, 1), "{srt:?}");
        let vtt = String::from_utf8(track.vtt).unwrap();
        assert!(vtt.contains("00:00:01.000 --> 00:00:02.000\nHi\n"), "{vtt}");
    }
    // The arrow is `-->`: `- >` and `-- >` are refused alike in both.
    for text in ["WEBVTT\n\n00:01.000 -- > 00:02.000\nHi\n", "1\n00:00:01,000 - > 00:00:02,000\n"] {
        let e = error(text, Kind::Captions);
        assert!(e.message.starts_with("expected `-->` between the cue's start and end"), "{e}");
    }
}

/// The files of public conformance suites (tests/fixtures/captions-conformance, where
/// SOURCES.md says where each comes from): each loads or is refused as expected.tsv says.
#[test]
fn texttrack_conformance_suites_as_their_verdicts_say() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/captions-conformance");
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut wrong = Vec::new();
    let mut rows = 0;
    for line in tsv.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let kind = if fields[2] == "chapters" { Kind::Chapters } else { Kind::Captions };
        let bytes = std::fs::read(dir.join(fields[0])).unwrap();
        let got = load(&bytes, kind);
        if got.is_ok() != (fields[1] == "valid") {
            wrong.push(format!("{} ({}): {:?}", fields[0], fields[1], got.map(|t| t.cues)));
        }
        rows += 1;
    }
    assert!(rows >= 400, "{rows} rows");
    assert!(wrong.is_empty(), "{} of {rows} not as expected:\n{}", wrong.len(), wrong.join("\n"));
}

/// A reader that gives at most `most` bytes a read.
struct Trickle<'a> {
    bytes: &'a [u8],
    most: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.most).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// What [`check`] says of `bytes` read at most `most` bytes at a time.
fn streamed(bytes: &[u8], kind: Kind, most: usize) -> Result<Summary, ParseError> {
    match check(Trickle { bytes, most }, kind) {
        Ok(summary) => Ok(summary),
        Err(ReadError::Parse(e)) => Err(e),
        Err(ReadError::Io(e)) => panic!("bytes in memory: {e}"),
    }
}

/// Issue #25, point 13: the manifest check reads tracks as they stream in. Every fixture and
/// conformance file, as captions and as chapters, read in pieces that cut CRLFs and UTF-16
/// units in two: the same verdict, error and WebVTT length as loading it whole, and, read so,
/// the same WebVTT.
#[test]
fn texttrack_check_as_it_streams_says_what_load_says() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files = Vec::new();
    for dir in ["texttrack", "texttrack/bad", "captions-conformance"] {
        let mut found = vec![root.join(dir)];
        while let Some(dir) = found.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    found.push(path);
                } else if path.extension().is_some_and(|e| e == "vtt" || e == "srt") {
                    files.push(std::fs::read(&path).unwrap());
                }
            }
        }
    }
    files.push(wide("WEBVTT\r\n\r\n00:01.000 --> 00:02.000\r\nÉté 🎬\r\n", 2, false));
    files.push(wide("1\r\n00:00:01,000 --> 00:00:02,000\r\nÉté 🎬\r\n", 4, true));
    let mut cut = wide("WEBVTT\n\nab", 2, false);
    cut.extend([0x00, 0xd8, b'c', 0]);
    files.push(cut);
    assert!(files.len() >= 400, "{} files", files.len());
    for bytes in &files {
        for kind in [Kind::Captions, Kind::Chapters] {
            let whole = load(bytes, kind);
            for most in [1, 3, 8192] {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
                match (&whole, streamed(bytes, kind, most)) {
                    (Ok(track), Ok(summary)) => assert_eq!(
                        (summary.format, summary.cues, summary.vtt_len, summary.bytes),
                        (track.format, track.cues, track.vtt.len() as u64, bytes.len() as u64),
                        "{shown:?}"
                    ),
                    (Err(e), Err(streamed)) => assert_eq!(e, &streamed, "{shown:?}"),
                    (whole, streamed) => panic!("{shown:?}: {whole:?} but {streamed:?}"),
                }
                if let Ok(track) = &whole {
                    let again = read(Trickle { bytes, most }, kind, 0);
                    assert_eq!(track, &again.unwrap_or_else(|e| panic!("{shown:?}: {e}")));
                }
            }
        }
    }
}

/// A broken timestamp deep in a long file is found on its line, and checking it holds no more
/// than a line of it: nothing here is held but what the check returns.
#[test]
fn texttrack_check_finds_a_problem_deep_in_a_long_file() {
    let mut text = String::from("WEBVTT\n\n");
    let cues = 200_000u64;
    for n in 0..cues {
        let (start, end) = (cue::show(n * 1000), cue::show(n * 1000 + 900));
        text.push_str(&format!("{start} --> {end}\nLine {n}\n\n"));
    }
    let good = streamed(text.as_bytes(), Kind::Captions, 8192).unwrap();
    assert_eq!((good.cues, good.vtt_len), (cues as usize, text.len() as u64));
    // Cue 150 000 starts at 150 000 s, on line 3 + 3 × 150 000.
    let broken = text.replacen("41:40:00.000 --> ", "41:40:00.000 -> ", 1);
    let e = streamed(broken.as_bytes(), Kind::Captions, 8192).unwrap_err();
    assert_eq!((e.line, e.column), (450_003, 14), "{e}");
    assert!(e.message.starts_with("expected `-->`"), "{e}");
}
