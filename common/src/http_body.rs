//! Bounded reading of HTTP answers from servers fabricwatch does not control (LLM providers,
//! notification channels): `reqwest::Response::bytes` and `text` read a body of any size into
//! memory, bounded only by a timeout.

/// At most `max` bytes of `resp`'s body, and whether the body was longer (the rest is not
/// read; dropping the response closes the connection).
///
/// # Errors
/// The transport's error while reading (reset, timeout, bad chunking).
pub async fn read_limited(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = max - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
}
