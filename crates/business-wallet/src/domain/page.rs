//! Keyset pagination, written once: a page is read with one row more than its size, and that
//! extra row's presence says whether there is a next page, whose cursor is the last row's id.

/// Splits `rows`, read with a limit of `limit + 1`, into the page of at most `limit` rows and
/// the cursor of the next page (`None` on the last page).
pub(crate) fn split<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    let size = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > size;
    rows.truncate(size);
    let next = if more {
        rows.last().map(|r| id(r).to_string())
    } else {
        None
    };
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_page_has_a_next_cursor_only_when_a_row_is_left_over() {
        assert_eq!(split(vec![9, 8, 7], 2, |r| *r), (vec![9, 8], Some("8".to_string())));
        assert_eq!(split(vec![9, 8], 2, |r| *r), (vec![9, 8], None));
        assert_eq!(split(Vec::<i64>::new(), 2, |r| *r), (vec![], None));
    }
}
