//! `GET /metrics` HTTP series: one middleware layer counts every request by method,
//! matched route pattern and status, and times it by method and route.

use crate::support::{TestApp, ADMIN};
use axum::http::{Method, StatusCode};

#[tokio::test]
async fn requests_are_counted_by_route_pattern_never_by_raw_path() {
    let app = TestApp::new().await;
    for (path, token, expected) in [
        ("/api/platforms", Some(ADMIN), StatusCode::OK),
        (
            "/api/resources/no-such-resource-id",
            Some(ADMIN),
            StatusCode::NOT_FOUND,
        ),
        ("/api/resources", None, StatusCode::UNAUTHORIZED),
        (
            "/no/such/route-anywhere",
            Some(ADMIN),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (status, body) = app.call(Method::GET, path, token, None).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    // The first scrape is counted too, and shows in the second.
    app.metrics_text().await;
    let text = app.metrics_text().await;

    let requests = |route: &str, status: u16| {
        format!(
            "pylon_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} 1"
        )
    };
    for line in [
        "# TYPE pylon_http_requests_total counter".to_owned(),
        requests("/api/platforms", 200),
        requests("/api/resources/{id}", 404),
        requests("/api/resources", 401),
        requests("unmatched", 404),
        requests("/metrics", 200),
        "# TYPE pylon_http_request_duration_seconds histogram".to_owned(),
        "pylon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/resources/{id}\",le=\"+Inf\"} 1"
            .to_owned(),
        "pylon_http_request_duration_seconds_count{method=\"GET\",route=\"/api/resources/{id}\"} 1"
            .to_owned(),
        "pylon_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\"} 1".to_owned(),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line:?} in:\n{text}"
        );
    }
    // Ids and raw paths never become label values; the status is not a latency label.
    assert!(!text.contains("no-such-resource-id"), "{text}");
    assert!(!text.contains("route-anywhere"), "{text}");
    assert!(
        !text.contains("pylon_http_request_duration_seconds_count{method=\"GET\",route=\"/api/resources/{id}\",status"),
        "{text}"
    );
    assert!(!text.contains(ADMIN), "{text}");
}
