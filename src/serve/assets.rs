//! The web UI files embedded at build time (see `build.rs`), and the cache
//! policy: content-hashed files under `assets/` are immutable, everything
//! else (the HTML page) is `no-store`, so a new binary's page always points
//! at its own assets.

/// One embedded file.
pub struct Asset {
    /// Path relative to `web/dist`, with `/` separators.
    pub path: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// `Cache-Control` for immutable, content-hashed files.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for the page and anything that names other files.
pub const NO_STORE: &str = "no-store";

/// Finds an embedded file by its path (no leading `/`).
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The cache policy for a path.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with("assets/") {
        IMMUTABLE
    } else {
        NO_STORE
    }
}

/// The content type for a file name.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
