//! Reading a body from a remote server with a size limit, so that a server that answers far
//! more than the product needs (a token endpoint streaming megabytes, a wrong URL) costs at
//! most the limit in memory. The request's own timeout bounds how long the reading may take.

/// Why a body could not be read within its limit.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body (declared or read so far) is larger than the limit.
    #[error("the response body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection failed or timed out while the body was read.
    #[error("the response body could not be read: {0}")]
    Transport(#[source] reqwest::Error),
}

/// Reads the whole body of `response`, refusing a declared or actual length over `limit`
/// bytes; reading stops (and the connection is dropped) as soon as the limit is passed.
///
/// # Errors
/// [`BodyError::TooLarge`] past the limit, [`BodyError::Transport`] when reading fails.
pub async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|declared| declared > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
