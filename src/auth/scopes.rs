//! What each operation asks of a personal API token, decided in one place for every route
//! (the `AuthUser` extractor calls [`check`] with the matched route pattern): safe methods
//! need `read` (every token), deletions and the operations listed in [`DANGEROUS`] need
//! `dangerous`, every other change `write`; [`SESSION_ONLY`] operations refuse API tokens
//! whatever their scopes. A unit test checks that every listed pattern is a route, so a
//! renamed path cannot silently fall back to `write`.

use actix_web::http::Method;

use crate::auth::caller::TokenGrant;
use crate::error::{ApiError, ApiResult, ErrorCode};

/// Changes that are not deletions yet count as dangerous: passwords, the login, second
/// factors and the credentials mail clients log in with.
pub(crate) const DANGEROUS: &[(&str, &str)] = &[
    ("PUT", "/v1/me/password"),
    ("PUT", "/v1/me/login"),
    ("POST", "/v1/me/totp"),
    ("POST", "/v1/me/totp/confirm"),
    ("PUT", "/v1/addresses/{address_id}/password"),
    ("POST", "/v1/addresses/{address_id}/device-passwords"),
    ("POST", "/v1/addresses/{address_id}/mailbox-tokens"),
];

/// Operations a session only may call: managing API tokens (a token cannot mint or revoke
/// tokens), step-up and logout (an API token has no session to refresh or end).
pub(crate) const SESSION_ONLY: &[&str] = &[
    "/v1/me/tokens",
    "/v1/me/tokens/{token_id}",
    "/v1/sessions/reauth",
    "/v1/sessions/current",
];

/// What an operation needs from an API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
    Dangerous,
    Session,
}

/// What `method` on the route `pattern` needs.
pub(crate) fn need(method: &Method, pattern: &str) -> Need {
    if SESSION_ONLY.contains(&pattern) {
        return Need::Session;
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Need::Read;
    }
    if *method == Method::DELETE
        || DANGEROUS
            .iter()
            .any(|(m, p)| *p == pattern && *m == method.as_str())
    {
        return Need::Dangerous;
    }
    Need::Write
}

/// 403 unless `grant` covers `method` on `pattern` (no pattern: an unmatched route, which
/// answers 404/405 anyway; treated as a change).
pub(crate) fn check(grant: &TokenGrant, method: &Method, pattern: Option<&str>) -> ApiResult<()> {
    let need = need(method, pattern.unwrap_or(""));
    let insufficient = |scope: &str| {
        Err(ApiError::new(
            ErrorCode::TokenScopeInsufficient,
            format!(
                "{method} {} needs an API token with the {scope} scope",
                pattern.unwrap_or("this route")
            ),
        ))
    };
    match need {
        Need::Read => Ok(()),
        Need::Write if grant.write => Ok(()),
        Need::Write => insufficient("write"),
        Need::Dangerous if grant.dangerous => Ok(()),
        Need::Dangerous => insufficient("dangerous"),
        Need::Session => Err(ApiError::new(
            ErrorCode::SessionRequired,
            "this operation needs a logged-in session (an access token from POST /v1/sessions), not an API token",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_operation_is_a_route_of_the_api() {
        let spec = serde_json::to_value(crate::openapi::build()).unwrap();
        let paths = spec["paths"].as_object().unwrap();
        for (method, pattern) in DANGEROUS {
            let op = &paths[*pattern][method.to_lowercase()];
            assert!(op.is_object(), "{method} {pattern} is not a route");
        }
        for pattern in SESSION_ONLY {
            assert!(paths.contains_key(*pattern), "{pattern} is not a route");
        }
    }

    #[test]
    fn safe_methods_read_deletions_and_listed_changes_are_dangerous() {
        assert_eq!(need(&Method::GET, "/v1/me"), Need::Read);
        assert_eq!(need(&Method::PATCH, "/v1/me"), Need::Write);
        assert_eq!(need(&Method::DELETE, "/v1/me"), Need::Dangerous);
        assert_eq!(need(&Method::PUT, "/v1/me/password"), Need::Dangerous);
        assert_eq!(need(&Method::GET, "/v1/me/tokens"), Need::Session);
        let write = TokenGrant {
            token_id: uuid::Uuid::nil(),
            write: true,
            dangerous: false,
            organization_id: None,
        };
        assert!(check(&write, &Method::POST, Some("/v1/organizations")).is_ok());
        let refused = check(&write, &Method::DELETE, Some("/v1/addresses/{address_id}"));
        assert_eq!(
            refused.err().map(|e| e.code),
            Some(ErrorCode::TokenScopeInsufficient)
        );
    }
}
