//! Headers every HTML answer carries, whatever route made it: a page may show names and
//! amounts, so it is never framed, never sniffed into another type, sends no referrer, and runs
//! nothing but what its own policy lists (no `unsafe-inline`). A page with an inline style
//! names it by hash ([`style_hash`]); one that sets no policy gets the strictest.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The policy of a page that sets none: nothing loads, forms post only back here.
pub const STRICT_POLICY: &str =
    "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `'sha256-…'`: a Content-Security-Policy source naming one inline `<style>` element's text.
pub fn style_hash(css: &str) -> String {
    let digest = Sha256::digest(css.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// [`STRICT_POLICY`] allowing one inline style, and nothing else.
pub fn policy_with_style(css: &str) -> String {
    format!("{STRICT_POLICY}; style-src {}", style_hash(css))
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// The layer: adds what an HTML answer lacks, keeps what its route set.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    if is_html(headers) {
        for (name, value) in [
            (header::CONTENT_SECURITY_POLICY, STRICT_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ] {
            headers
                .entry(name)
                .or_insert(HeaderValue::from_static(value));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_style_hash_is_the_sha256_of_its_text() {
        // The digest of the empty string, as CSP Level 3 writes it.
        assert_eq!(
            style_hash(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
        assert_ne!(style_hash("a{}"), style_hash("b{}"));
    }

    async fn through_the_layer(
        content_type: &'static str,
        policy: Option<&'static str>,
    ) -> HeaderMap {
        use axum::routing::get;
        use tower::ServiceExt as _;
        let app = axum::Router::new()
            // The fallback, not a route: the route-walking test reads every `.route` in src.
            .fallback(get(move || async move {
                let mut r = Response::new(axum::body::Body::from("x"));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                if let Some(p) = policy {
                    r.headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(p));
                }
                r
            }))
            .layer(axum::middleware::from_fn(headers));
        let req = Request::builder()
            .uri("/")
            .body(axum::body::Body::empty())
            .expect("request");
        app.oneshot(req).await.expect("answer").headers().clone()
    }

    #[tokio::test]
    async fn html_gets_the_headers_and_keeps_its_own_policy() {
        let h = through_the_layer("text/html; charset=utf-8", None).await;
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], STRICT_POLICY);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        let own = "default-src 'none'; style-src 'sha256-x'; frame-ancestors 'none'";
        let h = through_the_layer("TEXT/HTML", Some(own)).await;
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], own);
        let h = through_the_layer("application/json", None).await;
        assert!(h.get(header::CONTENT_SECURITY_POLICY).is_none());
    }

    #[test]
    fn policies_never_allow_inline_code() {
        for p in [STRICT_POLICY.to_string(), policy_with_style("body{}")] {
            assert!(!p.contains("unsafe-inline"), "{p}");
            assert!(p.contains("frame-ancestors 'none'"), "{p}");
        }
    }
}
