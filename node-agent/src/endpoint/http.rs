//! HTTP/1.1 probe over a connection it opens itself, so that each phase is timed where it
//! happens: `getaddrinfo`, TCP connect, TLS handshake, request → response head, body.
//!
//! Hostile servers are bounded: the response head may be at most
//! [`MAX_HEADER_BYTES`] (hyper's read buffer limit; a larger head fails the probe), at most
//! [`MAX_BODY_BYTES`] of the body are read, and the caller's timeout covers every phase
//! (a server that trickles its headers or never ends its body times out).

use std::time::Instant;

use fabricwatch_proto::endpoint::{
    HttpMethod, HttpProbe, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_REDIRECTS,
};
use http_body_util::{BodyExt, Empty};
use hyper::{body::Bytes, header, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{connect, resolve, tls::TlsClient, Trace};

/// Most header files read from `headersDir`, and most bytes of each.
pub const MAX_HEADER_FILES: usize = 32;
const MAX_HEADER_FILE_BYTES: u64 = 8 * 1024;
/// Most characters of a `Location` quoted in an error.
const MAX_LOCATION_CHARS: usize = 200;

/// Request headers from the files of `dir` (file name = header name, content = value,
/// surrounding whitespace trimmed). Kubernetes' `..data`-style entries are skipped.
///
/// # Errors
/// When the directory cannot be read or a name or value is not a valid header (the value
/// is never put into the message).
pub fn read_headers(dir: &str) -> Result<Vec<(header::HeaderName, header::HeaderValue)>, String> {
    use std::io::Read;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("headers {dir}: {e}"))?;
    let mut out = Vec::new();
    let mut names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    for n in names.into_iter().take(MAX_HEADER_FILES) {
        let path = std::path::Path::new(dir).join(&n);
        let mut v = Vec::new();
        std::fs::File::open(&path)
            .and_then(|f| f.take(MAX_HEADER_FILE_BYTES).read_to_end(&mut v))
            .map_err(|e| format!("header {n}: {e}"))?;
        let name = header::HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("header {n}: not a valid header name"))?;
        let value = header::HeaderValue::from_bytes(v.trim_ascii())
            .map_err(|_| format!("header {n}: value is not a valid header value"))?;
        out.push((name, value));
    }
    Ok(out)
}

/// Whether `code` counts as up: one of `valid`, or any 2xx when `valid` is empty.
pub fn status_ok(code: u16, valid: &[u16]) -> bool {
    if valid.is_empty() {
        (200..300).contains(&code)
    } else {
        valid.contains(&code)
    }
}

/// Runs the probe, recording phases and findings in `trace`.
///
/// # Errors
/// Why the endpoint is down, e.g. `connect 10.0.0.1:443: Connection refused`,
/// `status 503, expected 2xx`, `body does not contain "ok"`.
pub async fn probe(
    cfg: &HttpProbe,
    tls: Option<&TlsClient>,
    trace: &mut Trace,
) -> Result<(), String> {
    let extra = match &cfg.headers_dir {
        Some(d) => read_headers(d)?,
        None => Vec::new(),
    };
    let mut url = url::Url::parse(&cfg.url).map_err(|e| format!("url: {e}"))?;
    for hop in 0..=MAX_REDIRECTS {
        let host = url.host_str().ok_or("url has no host")?.to_string();
        let port = url.port_or_known_default().ok_or("url has no port")?;
        let addr = resolve(&host, port, trace).await?;
        let tcp = connect(addr, trace).await?;
        let status = if url.scheme() == "https" {
            let client = tls.ok_or("https URL without a TLS client")?;
            trace.stage = "tls";
            let t = Instant::now();
            let r = client.handshake(tcp, &host, &mut trace.tls_not_after).await;
            add(&mut trace.phases.tls, t);
            let h = r?;
            trace.tls_version = h.version;
            exchange(h.stream, cfg, &url, &extra, trace).await?
        } else {
            exchange(tcp, cfg, &url, &extra, trace).await?
        };
        let (code, location) = status;
        trace.status_code = Some(code);
        if cfg.follow_redirects && (300..400).contains(&code) {
            if let Some(loc) = location {
                if hop == MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                // The Location may be as long as the head (64 KiB); the message quotes its start.
                url = url
                    .join(&loc)
                    .map_err(|e| format!("redirect to {}: {e}", quote_start(&loc)))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!("redirect to a {} URL", quote_start(url.scheme())));
                }
                continue;
            }
        }
        if !status_ok(code, &cfg.valid_status_codes) {
            let want = if cfg.valid_status_codes.is_empty() {
                "2xx".to_string()
            } else {
                format!("{:?}", cfg.valid_status_codes)
            };
            return Err(format!("status {code}, expected {want}"));
        }
        if let Some(m) = &cfg.body_match {
            if !trace.body_matched {
                return Err(format!(
                    "body (first {MAX_BODY_BYTES} bytes) does not contain {m:?}"
                ));
            }
        }
        return Ok(());
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// `s` quoted, cut to [`MAX_LOCATION_CHARS`] (marked `…`): a `Location` may be as long as
/// the head (64 KiB), an error quotes its start.
fn quote_start(s: &str) -> String {
    match s.char_indices().nth(MAX_LOCATION_CHARS) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

fn add(slot: &mut Option<f64>, since: Instant) {
    *slot = Some(slot.unwrap_or(0.0) + since.elapsed().as_secs_f64());
}

/// Sends the request on `io` and reads the head and (bounded) body. Returns the status and
/// the `Location` header.
async fn exchange<S>(
    io: S,
    cfg: &HttpProbe,
    url: &url::Url,
    extra: &[(header::HeaderName, header::HeaderValue)],
    trace: &mut Trace,
) -> Result<(u16, Option<String>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    trace.stage = "processing";
    let t = Instant::now();
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEADER_BYTES)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {e}"))?;
    // The connection task ends with the probe: aborted on drop (also on timeout).
    let driver = AbortOnDrop(tokio::spawn(conn));
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req = Request::builder()
        .method(match cfg.method {
            HttpMethod::Get => hyper::Method::GET,
            HttpMethod::Head => hyper::Method::HEAD,
        })
        .uri(path)
        .header(header::HOST, host)
        .header(
            header::USER_AGENT,
            concat!("fabricwatch-agent/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close");
    for (k, v) in extra {
        req = req.header(k, v);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender.send_request(req).await.map_err(|e| {
        // hyper says "message head is too large" for a head over the buffer limit.
        format!("http: {e}")
    })?;
    add(&mut trace.phases.processing, t);
    let code = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    trace.stage = "transfer";
    let t = Instant::now();
    let mut body = resp.into_body();
    let mut seen: Vec<u8> = Vec::new();
    let want = cfg.body_match.as_deref().map(str::as_bytes);
    trace.body_matched = false;
    if cfg.method == HttpMethod::Get {
        while seen.len() < MAX_BODY_BYTES {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        let room = MAX_BODY_BYTES - seen.len();
                        seen.extend_from_slice(&d[..d.len().min(room)]);
                    }
                }
                Some(Err(e)) => {
                    add(&mut trace.phases.transfer, t);
                    return Err(format!("reading body: {e}"));
                }
                None => break,
            }
        }
        if let Some(w) = want {
            trace.body_matched = seen.windows(w.len()).any(|x| x == w);
        }
    }
    add(&mut trace.phases.transfer, t);
    drop(driver);
    Ok((code, location))
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert!(status_ok(204, &[]));
        assert!(!status_ok(301, &[]));
        assert!(status_ok(301, &[301, 302]));
        assert!(!status_ok(200, &[301]));
    }

    #[test]
    fn headers_from_a_mounted_secret() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("Authorization"), "Bearer s3cret\n").expect("write");
        std::fs::create_dir(d.path().join("..data")).expect("mkdir");
        let h = read_headers(&d.path().to_string_lossy()).expect("headers");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].0.as_str(), "authorization");
        assert_eq!(h[0].1.as_bytes(), b"Bearer s3cret");
        std::fs::write(d.path().join("X-Bad"), "a\nb").expect("write");
        let e = read_headers(&d.path().to_string_lossy()).expect_err("bad value");
        assert_eq!(e, "header X-Bad: value is not a valid header value");
        assert!(!e.contains("s3cret"));
    }
}
