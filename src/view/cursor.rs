//! Opaque pagination cursors: the sort key of the last item of a page, hex-encoded so clients
//! treat it as a token rather than something to edit.

use chrono::{DateTime, Datelike, Utc};

use crate::http::errors::ApiError;

/// Default and largest page sizes of every list.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// The position after which the next page starts: newest-first lists sort by (time, kind, id)
/// descending; lists of one kind use an empty `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub id: i64,
}

impl Cursor {
    /// The position before everything: the first page.
    pub fn start() -> Cursor {
        // unwrap: a constant, valid timestamp far in the future.
        Cursor {
            at: DateTime::from_timestamp(253_402_300_799, 0).unwrap(),
            kind: "~".into(),
            id: i64::MAX,
        }
    }

    pub fn encode(&self) -> String {
        hex_encode(&format!(
            "{}|{}|{}",
            self.at.timestamp_micros(),
            self.kind,
            self.id
        ))
    }

    pub fn decode(token: &str) -> Result<Cursor, ApiError> {
        let bad = || ApiError::validation("cursor", "cursor is not one this server issued");
        let raw = hex_decode(token).ok_or_else(bad)?;
        let mut parts = raw.splitn(3, '|');
        let (Some(at), Some(kind), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let at = at
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .filter(within_years)
            .ok_or_else(bad)?;
        let id = id.parse::<i64>().map_err(|_| bad())?;
        Ok(Cursor {
            at,
            kind: kind.to_owned(),
            id,
        })
    }
}

/// Whether an instant lies in the years 1 to 9999, those ISO 8601 writes without expansion:
/// PostgreSQL refuses some instants chrono reads ("timestamp out of range"), so every instant a
/// client hands in is checked against these.
pub fn within_years(t: &DateTime<Utc>) -> bool {
    (1..=9999).contains(&t.year())
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes `hex` wrote; None for anything else.
pub fn unhex(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    token
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        })
        .collect()
}

/// Hex of a string: cursors are tokens to hand back, not something to edit.
pub fn hex_encode(raw: &str) -> String {
    hex(raw.as_bytes())
}

/// The string a `hex_encode` made; None for anything else.
pub fn hex_decode(token: &str) -> Option<String> {
    if token.len() > 2048 {
        return None;
    }
    // A NUL cannot reach PostgreSQL as text: a cursor holding one is not ours.
    String::from_utf8(unhex(token)?)
        .ok()
        .filter(|s| !s.contains('\0'))
}

/// The page size asked for, checked against the limits.
pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::validation(
            "limit",
            format!("limit must be 1 to {MAX_LIMIT}, got {n}"),
        )),
    }
}

/// Trims a page fetched with one extra row; returns the cursor of the next page if there is one.
pub fn finish_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> Cursor,
) -> Option<String> {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|last| key(last).encode())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(secs in 0i64..4_000_000_000, micros in 0i64..1_000_000, kind in "[a-z]{0,10}", id in any::<i64>()) {
            let c = Cursor { at: DateTime::from_timestamp_micros(secs * 1_000_000 + micros).unwrap(), kind, id };
            prop_assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }

        #[test]
        fn garbage_is_a_422_not_a_panic(token in "\\PC{0,80}") {
            let _ = Cursor::decode(&token);
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 20);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
        assert_eq!(
            Cursor::decode(&Cursor::start().encode()).unwrap(),
            Cursor::start()
        );
    }
}
