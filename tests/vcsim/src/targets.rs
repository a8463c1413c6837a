//! Network targets that fail in specific ways, for failure-classification tests.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::server::{bind_loopback, local_port, serve, spawn, Background};

/// A port on 127.0.0.1 with nothing listening: connecting is refused.
///
/// The port was free a moment ago (bound, then released); another process could take
/// it, which is unlikely within a test.
pub async fn closed_port() -> u16 {
    let listener = bind_loopback().await;
    let port = local_port(&listener);
    drop(listener);
    port
}

/// Accepts TCP connections on 127.0.0.1 and never sends a byte; the connections stay
/// open until the server is dropped. Gives connect success, then a read timeout (a TLS
/// handshake that never finishes, for `https://`).
#[derive(Debug)]
pub struct HungServer {
    port: u16,
    _task: Background,
}

impl HungServer {
    pub async fn start() -> Self {
        let listener = bind_loopback().await;
        let port = local_port(&listener);
        let task = spawn(async move {
            let mut held = Vec::new();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
            }
        });
        HungServer { port, _task: task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Plain HTTP/1.1 on 127.0.0.1 that answers every request (after reading it) with the
/// same status, `Content-Type` and body: a web server where vCenter should be, an HTML
/// error page, a proxy's 502, and so on.
#[derive(Debug)]
pub struct HttpServer {
    port: u16,
    _task: Background,
}

impl HttpServer {
    /// # Panics
    ///
    /// When `status` is not a valid HTTP status or `content_type` not a valid header value.
    pub async fn start(status: u16, content_type: &str, body: &str) -> Self {
        let status = StatusCode::from_u16(status)
            .unwrap_or_else(|e| panic!("HttpServer: {status} is not an HTTP status: {e}"));
        let content_type = HeaderValue::from_str(content_type).unwrap_or_else(|e| {
            panic!("HttpServer: {content_type:?} is not a valid Content-Type: {e}")
        });
        let body = Bytes::copy_from_slice(body.as_bytes());

        let listener = bind_loopback().await;
        let port = local_port(&listener);
        let task = serve(listener, move |request| {
            let content_type = content_type.clone();
            let body = body.clone();
            async move {
                // Read the whole request so the connection can be reused.
                let _ = request.into_body().collect().await;
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                response.headers_mut().insert(CONTENT_TYPE, content_type);
                response
            }
        });
        HttpServer { port, _task: task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
