//! A bucket's key is taken as written (issue #25): one with a `.` or `..` segment names an
//! object of its own, which avbatch cannot read, so the row is refused rather than read as
//! another object.

use super::RemoteError;

/// Refuses a bucket's key with a `.` or `..` segment (`s3://b/dots/../o1.mp4`), written or
/// percent-encoded. Such a key is an object of its own, but URL parsing resolves the segment
/// (the row read `o1.mp4`, another object: issue #25) and object_store's `Path` cannot hold it,
/// so no request avbatch can make names it. A web server's URL resolves as every client does.
pub(super) fn refuse(text: &str) -> Result<(), RemoteError> {
    let after = text.split_once("://").map_or(text, |(_, rest)| rest);
    let key = after.split(['?', '#']).next().unwrap_or_default();
    let Some((_, key)) = key.split_once('/') else { return Ok(()) };
    let dots = key.split('/').find_map(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        matches!(decoded.as_ref(), "." | "..").then_some(decoded.into_owned())
    });
    match dots {
        Some(dots) => Err(RemoteError::Unsupported(format!(
            "the key `{key}` has a `{dots}` segment, which avbatch cannot read as written \
             (it would read another object): copy the object to a key without `.` or `..` \
             segments"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_refused_written_or_encoded() {
        for text in [
            "s3://b/dots/../o1.mp4",
            "s3://b/./o1.mp4",
            "s3://b/a/%2E%2E/o1.mp4",
            "s3://b/a/.%2e/o1.mp4",
            "s3://b/a/..",
        ] {
            assert!(refuse(text).is_err(), "{text}");
        }
        for text in ["s3://b/a..b/.c.mp4", "s3://b/.../o1.mp4", "s3://b", "s3://b/o1.mp4?x=/../"] {
            assert!(refuse(text).is_ok(), "{text}");
        }
    }
}
