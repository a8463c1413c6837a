//! The admin web UI: the static files under `host/ui/`, embedded in the binary and served at
//! `/` (the page) and `/ui/{file}` (its stylesheet and ES modules).
//!
//! The files are plain ES modules with no build step, so what is in the repository is exactly
//! what the browser runs (see `docs/ui.md`). Embedding them with `include_bytes!` means the
//! binary works offline and the UI can never drift from the API it was released with.
//!
//! These routes carry no data, so they need no token (the scope table in `auth.rs` declares
//! them `Public`); the page signs in by asking for an API token and sends it on each API call.
//! Every answer carries a strict Content-Security-Policy: scripts, styles and connections
//! only from this origin and no inline script, so a string that slips into the page from the
//! API cannot run.

use crate::api::error::ApiError;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file.
struct Asset {
    /// File name under `host/ui/`, which is also its URL under `/ui/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

/// Every file of `host/ui/`. A test checks that this list and the directory agree.
const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("main.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("form.js", JS),
    asset!("connections.js", JS),
    asset!("resources.js", JS),
];

/// The page itself; the other assets are only reachable under `/ui/`.
const INDEX: &str = "index.html";

/// Same origin only, no inline script or style element, no plugins, no framing. `data:` images
/// cover the empty favicon the page declares so browsers do not ask for `/favicon.ico`.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Names of the embedded files, for tests that compare them with `host/ui/`.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|asset| asset.name)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve(INDEX, &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&name, &headers)
}

fn serve(name: &str, request: &HeaderMap) -> Result<Response, ApiError> {
    let (position, asset) = ASSETS
        .iter()
        .enumerate()
        .find(|(_, asset)| asset.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no UI file named `{name}`")))?;
    let etag = &etags()[position];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidate on every load: the ETag makes that a cheap 304, and an upgraded binary is
    // picked up at once instead of mixing old and new modules from the browser cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// Strong ETags from the content, computed once; index-aligned with [`ASSETS`].
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                format!("\"{}\"", hex::encode(&digest[..16]))
            })
            .collect()
    })
}
