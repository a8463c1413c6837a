//! The admin UI's static files: served without a token, every file embedded, strict headers,
//! no inline script and nothing fetched from another origin; the API behaves as before.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use tower::ServiceExt;

async fn fetch(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn ui_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

#[test]
fn every_file_under_host_ui_is_embedded() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(ui_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let embedded: BTreeSet<String> = pylon_host::ui::asset_names().map(str::to_owned).collect();
    assert_eq!(on_disk, embedded, "host/ui and the embedded list differ");
}

#[tokio::test]
async fn serves_the_page_and_its_modules_without_a_token() {
    let app = TestApp::new().await;
    let (status, headers, body) = fetch(&app, Method::GET, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.contains(r#"<script type="module" src="/ui/main.js"></script>"#),
        "{html}"
    );

    for name in pylon_host::ui::asset_names() {
        let (status, headers, body) = fetch(&app, Method::GET, &format!("/ui/{name}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        let expected_type = match name.rsplit('.').next() {
            Some("html") => "text/html; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            other => panic!("unexpected file type {other:?} for {name}"),
        };
        assert_eq!(header(&headers, header::CONTENT_TYPE), expected_type);
        let csp = header(&headers, header::CONTENT_SECURITY_POLICY);
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header(&headers, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(&headers, header::CACHE_CONTROL), "no-cache");
        assert_eq!(header(&headers, header::REFERRER_POLICY), "no-referrer");

        // Everything the page needs comes from this origin. XML namespace names (SVG's)
        // are identifiers that are never fetched, so they do not count.
        let text = String::from_utf8(body).unwrap();
        let text = text.replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{name} refers to another origin"
        );
    }

    let (status, headers, body) = fetch(&app, Method::HEAD, "/ui/main.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert!(headers.contains_key(header::ETAG));
}

#[test]
fn the_page_has_no_inline_script_or_style() {
    let html = std::fs::read_to_string(ui_dir().join("index.html")).unwrap();
    let lower = html.to_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag_end = at + lower[at..].find('>').unwrap();
        assert!(
            lower[at..tag_end].contains("src="),
            "inline script at byte {at}"
        );
        assert!(
            lower[tag_end..].starts_with("></script>"),
            "script with a body at byte {at}"
        );
    }
    assert!(!lower.contains("<style"), "inline style element");
    assert!(!lower.contains(" style="), "inline style attribute");
    assert!(!lower.contains("javascript:"), "javascript: URL");
    for event in ["onclick=", "onload=", "onsubmit=", "onerror="] {
        assert!(!lower.contains(event), "inline handler {event}");
    }
}

#[tokio::test]
async fn revalidation_answers_not_modified() {
    let app = TestApp::new().await;
    let (_, headers, _) = fetch(&app, Method::GET, "/ui/app.css", &[]).await;
    let etag = header(&headers, header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let (status, headers, body) = fetch(
        &app,
        Method::GET,
        "/ui/app.css",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&headers, header::ETAG), etag);
    let (status, _, _) = fetch(
        &app,
        Method::GET,
        "/ui/app.css",
        &[("if-none-match", "\"stale\"")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_files_are_404_and_the_api_is_unchanged() {
    let app = TestApp::new().await;
    for path in [
        "/ui/nope.js",
        "/ui/..%2Fsrc%2Flib.rs",
        "/ui/",
        "/index.html",
    ] {
        let (status, _, _) = fetch(&app, Method::GET, path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, body) = app.call(Method::GET, "/ui/nope.js", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    // Writing to the page is not a thing; the API still wants its token.
    let (status, body) = app.call(Method::POST, "/", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let (status, body) = app.call(Method::GET, "/api/platforms", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    let (status, headers, _) = fetch(&app, Method::GET, "/healthz", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !headers.contains_key(header::CONTENT_SECURITY_POLICY),
        "API answers keep their own headers"
    );
}
