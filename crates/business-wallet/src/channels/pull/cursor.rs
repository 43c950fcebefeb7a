//! The cursor of a pull channel: an opaque string that names the last delivery of a fetched
//! batch and the lease the batch was fetched under.
//!
//! A fetch with a cursor continues after its position (the delivery ids only grow); a commit
//! with a cursor acknowledges what that fetch, and the earlier fetches under the same lease,
//! handed out up to that position. Naming the lease is what keeps a commit from acknowledging
//! events the receiver never saw: a batch fetched by a receiver that then crashed is not
//! covered by the cursor of a later batch, and comes back when its lease ends.

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

/// Version tag at the start of the text, so that the format can change without misreading old
/// ones.
const TAG: &str = "p1";

/// Every text [`Cursor::decode`] reads, as the OpenAPI document states it: the tag, the
/// position and the lease (a UUID), joined by dots. A receiver treats it as opaque; stating its
/// form lets a client check what it stores, and means that every text of this form is a cursor
/// (one whose lease is not a fetch's acknowledges nothing).
pub const PATTERN: &str = r"^p1\.(0|[1-9][0-9]{0,17})\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

impl Cursor {
    /// The form handed to receivers.
    pub fn encode(&self) -> String {
        format!("{TAG}.{}.{}", self.position, self.lease_token)
    }

    /// Reads a cursor made by [`Cursor::encode`].
    ///
    /// # Errors
    /// Anything else.
    pub fn decode(text: &str) -> Result<Cursor, InvalidCursor> {
        let mut parts = text.splitn(3, '.');
        let (Some(TAG), Some(position), Some(lease_token)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidCursor);
        };
        let canonical_position = position == "0" || (!position.starts_with('0') && position.len() <= 18);
        if !canonical_position || !position.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidCursor);
        }
        let position: i64 = position.parse().map_err(|_| InvalidCursor)?;
        let canonical_lease =
            uuid::Uuid::parse_str(lease_token).is_ok_and(|uuid| uuid.hyphenated().to_string() == lease_token);
        if !canonical_lease {
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
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor.clone()));
        let pattern = documented_form();
        assert!(pattern(&cursor.encode()), "{}", cursor.encode());
        let lease = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d";
        for bad in [
            String::new(),
            "x".into(),
            "!!!".into(),
            format!("p1.-3.{lease}"),
            format!("p2.3.{lease}"),
            format!("p1.03.{lease}"),
            format!("p1.3.{}", lease.to_uppercase()),
            "p1.7.".into(),
            format!("p1.1234567890123456789.{lease}"),
        ] {
            assert_eq!(Cursor::decode(&bad), Err(InvalidCursor), "{bad}");
            assert!(!pattern(&bad), "{bad} is outside the documented form too");
        }
        // Every text of the documented form reads.
        for good in [format!("p1.0.{lease}"), format!("p1.999999999999999999.{lease}")] {
            assert!(pattern(&good) && Cursor::decode(&good).is_ok(), "{good}");
        }
    }

    /// [`PATTERN`], checked by hand (no regex crate here): the tag, a canonical number of at
    /// most 18 digits, a lower-case hyphenated UUID.
    fn documented_form() -> impl Fn(&str) -> bool {
        |text: &str| {
            let mut parts = text.splitn(3, '.');
            let (Some("p1"), Some(n), Some(u)) = (parts.next(), parts.next(), parts.next()) else {
                return false;
            };
            let number = (n == "0" || (!n.starts_with('0') && (1..=18).contains(&n.len())))
                && n.bytes().all(|b| b.is_ascii_digit());
            let groups: Vec<&str> = u.split('-').collect();
            let uuid = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                && groups
                    .iter()
                    .all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            number && uuid
        }
    }
}
