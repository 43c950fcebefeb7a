//! The cursor of a pull channel: an opaque string that names the last delivery of a fetched
//! batch and the lease the batch was fetched under.
//!
//! A fetch with a cursor continues after its position (the delivery ids only grow); a commit
//! with a cursor acknowledges what that fetch, and the earlier fetches under the same lease,
//! handed out up to that position. Naming the lease is what keeps a commit from acknowledging
//! events the receiver never saw: a batch fetched by a receiver that then crashed is not
//! covered by the cursor of a later batch, and comes back when its lease ends.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A position in a pull channel's deliveries, with the lease of the fetch that reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last delivery row id handed out.
    pub position: i64,
    /// The lease token of that fetch.
    pub lease_token: String,
}

/// A cursor string that is not one this server made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cursor is not a cursor of this channel's events")]
pub struct InvalidCursor;

/// Version tag inside the encoding, so that the format can change without misreading old ones.
const TAG: &str = "p1";

impl Cursor {
    /// The opaque form handed to receivers.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{TAG}.{}.{}", self.position, self.lease_token))
    }

    /// Reads a cursor made by [`Cursor::encode`].
    ///
    /// # Errors
    /// Anything else.
    pub fn decode(text: &str) -> Result<Cursor, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
        let mut parts = text.splitn(3, '.');
        let (Some(TAG), Some(position), Some(lease_token)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidCursor);
        };
        let position: i64 = position.parse().map_err(|_| InvalidCursor)?;
        if position < 0 || lease_token.is_empty() || lease_token.len() > 64 {
            return Err(InvalidCursor);
        }
        Ok(Cursor {
            position,
            lease_token: lease_token.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_and_nothing_else_reads() {
        let cursor = Cursor {
            position: 1234,
            lease_token: uuid::Uuid::new_v4().to_string(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for bad in [
            "",
            "x",
            "cDEuMTI",
            "!!!",
            &URL_SAFE_NO_PAD.encode("p1.-3.t"),
            &URL_SAFE_NO_PAD.encode("p2.3.t"),
        ] {
            assert_eq!(Cursor::decode(bad), Err(InvalidCursor), "{bad}");
        }
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("p1.7.")), Err(InvalidCursor));
    }
}
