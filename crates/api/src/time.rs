//! Times as api.video writes them: ATOM, whole seconds, `+00:00`
//! (`2019-12-16T08:25:51+00:00`), for serde's `with` and `serialize_with`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// `t` as api.video writes a time.
pub fn atom_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// A time that must be there.
pub(crate) mod atom {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&atom_timestamp(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not a time: {text}")))
    }
}

/// A time that may be absent; one that does not parse is read as absent rather than failing
/// the whole answer (some of api.video's examples carry none, or another format).
pub(crate) mod lenient {
    use super::*;

    // serde hands `with` a reference to the field.
    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&atom_timestamp(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D>(d: D) -> Result<Option<DateTime<Utc>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = Option::<serde_json::Value>::deserialize(d)?;
        Ok(value.as_ref().and_then(serde_json::Value::as_str).and_then(parse))
    }
}
