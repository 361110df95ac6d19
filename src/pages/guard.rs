//! Whether a page's form post may act: it must come from the page itself. Browsers say so
//! with `Sec-Fetch-Site`; without that header, the form token the page embedded (an HMAC of
//! the page's path and link token, see `JwtKeys::page_form_token`) must come back. `Origin`
//! is not compared: with `Referrer-Policy: no-referrer`, Chromium sends `Origin: null` on
//! same-origin form posts.

use actix_web::HttpRequest;

use crate::state::AppState;

/// The form token to embed in a form posting to `path` for the link `token`.
pub(super) fn form_token(state: &AppState, path: &str, token: &str) -> String {
    state.jwt.page_form_token(path, token)
}

/// True when the post to `path` comes from Postier's own page: `Sec-Fetch-Site` is
/// `same-origin` or `none` (typed or bookmarked), or, when the browser sends none, the form
/// token matches. `cross-site` and `same-site` are refused whatever the form holds.
pub(super) fn allowed(
    req: &HttpRequest,
    state: &AppState,
    path: &str,
    token: &str,
    presented: &str,
) -> bool {
    match req.headers().get("sec-fetch-site") {
        Some(site) => matches!(site.to_str(), Ok("same-origin" | "none")),
        None => state.jwt.page_form_token_matches(path, token, presented),
    }
}
