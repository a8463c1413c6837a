//! A minimal HTTP/1.1 server on 127.0.0.1 (hyper) that stops when dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub(crate) type Body = Full<Bytes>;

/// Binds `127.0.0.1:0`.
pub(crate) async fn bind_loopback() -> TcpListener {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"))
}

pub(crate) fn local_port(listener: &TcpListener) -> u16 {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("cannot read the listener's address: {e}"))
        .port()
}

/// A background task; aborting it on drop closes its listener and connections.
#[derive(Debug)]
pub(crate) struct Background(JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves HTTP/1.1 on `listener` with `handler` until the returned value is dropped.
pub(crate) fn serve<H, F>(listener: TcpListener, handler: H) -> Background
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    Background(tokio::spawn(async move {
        // Connections live in the set, so aborting this task aborts them too.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors, for example: back off instead of spinning.
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    };
                    let handler = handler.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| {
                            let response = handler(request);
                            async move { Ok::<_, Infallible>(response.await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }))
}

/// Hands out a background task for servers that are not HTTP.
pub(crate) fn spawn<F>(future: F) -> Background
where
    F: Future<Output = ()> + Send + 'static,
{
    Background(tokio::spawn(future))
}
