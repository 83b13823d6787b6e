//! The verification page (web/, README "The verification page") at `/verify/`: the files
//! `web/build.sh` built into `web/dist`, compiled into the binary so every node serves the same
//! page with nothing to install. The page verifies in the browser; from this node it only reads
//! the trust bundle and status lists, and asks it to resolve presentation codes.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// What the page may do: its own scripts (and WebAssembly compiled from bytes it fetched), its
/// own styles, pictures it draws, the camera, and requests to this node only. No inline script,
/// no other origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' \
     'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
     connect-src 'self'; manifest-src 'self'; worker-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The page's files: name, media type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../web/dist/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dist/app.js"),
    ),
    (
        "jsQR.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dist/jsQR.js"),
    ),
    (
        "sw.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/dist/sw.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/dist/style.css"),
    ),
    (
        "tongban_web.wasm",
        "application/wasm",
        include_bytes!("../../web/dist/tongban_web.wasm"),
    ),
    (
        "manifest.webmanifest",
        "application/manifest+json",
        include_bytes!("../../web/dist/manifest.webmanifest"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../web/dist/icon.svg"),
    ),
];

pub fn router() -> Router {
    Router::new()
        .route("/verify", get(|| async { Redirect::permanent("/verify/") }))
        .route("/verify/", get(|| async { file("index.html") }))
        .route(
            "/verify/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
        .method_not_allowed_fallback(crate::api::method_not_allowed)
}

fn file(name: &str) -> Response {
    let Some((_, media_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            "no such file of the verification page\n",
        )
            .into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *media_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // Revalidated each time: the service worker keeps the copy used offline.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *bytes,
    )
        .into_response()
}
