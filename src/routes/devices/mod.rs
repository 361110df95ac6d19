//! Device configuration: the server settings of a mail service, and the documents with
//! which mail clients, phones and printers configure themselves (Thunderbird's autoconfig,
//! Outlook's autodiscover, Apple's configuration profiles). Every one repeats
//! `domain::CLIENT_ENDPOINTS` on the provider's mail host.

pub(super) mod autoconfig;
pub(super) mod autodiscover;
pub(super) mod mobileconfig;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::{ClientEndpoint, MailProtocol, Security, CLIENT_ENDPOINTS};
use crate::error::ApiResult;
use crate::service::authz;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ServerEndpoint {
    pub protocol: MailProtocol,
    /// Always the provider's host name: never an IP address, never `mail.<your domain>`.
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Authentication is required (SMTP included).
    pub authentication_required: bool,
    pub recommended: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ServerSettingsResponse {
    pub incoming: Vec<ServerEndpoint>,
    pub outgoing: Vec<ServerEndpoint>,
    /// What to type as user name: the full mail address.
    pub username: String,
    /// What to type as password.
    pub password: String,
    /// Advice shown to the user, with the reasons.
    pub notes: Vec<String>,
}

/// Server settings for mail clients and devices
///
/// IMAP 993 (SSL, recommended over POP), POP 995 (SSL), SMTP 465 (SSL) and 587 (STARTTLS),
/// authentication required with the full address as user name.
#[utoipa::path(
    tag = "mail-services",
    security(("bearer" = [])),
    params(("service_id" = Uuid, Path, description = "Mail service id")),
    responses((status = 200, description = "Settings", body = ServerSettingsResponse))
)]
#[get("/v1/mail-services/{service_id}/server-settings")]
pub(crate) async fn get_server_settings(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (service, _) = authz::service(&state.db, &user, path.into_inner()).await?;
    let host = state.config.mail_host.as_str();
    let (incoming, outgoing): (Vec<_>, Vec<_>) =
        CLIENT_ENDPOINTS.iter().partition(|e| e.incoming());
    let shown = |list: Vec<&ClientEndpoint>| -> Vec<ServerEndpoint> {
        list.into_iter()
            .map(|e| ServerEndpoint {
                protocol: e.protocol,
                host: host.to_string(),
                port: e.port,
                security: e.security,
                authentication_required: true,
                recommended: e.recommended,
            })
            .collect()
    };
    Ok(HttpResponse::Ok().json(ServerSettingsResponse {
        incoming: shown(incoming),
        outgoing: shown(outgoing),
        username: "the full mail address, e.g. name@".to_string() + &service.domain,
        password: "the password of the mail address, or a device password made for this device (never the account password)".into(),
        notes: notes(host, &service.domain),
    }))
}

/// The advice given with the settings, each with its reason.
fn notes(host: &str, domain: &str) -> Vec<String> {
    vec![
        format!(
            "Use {host} as server name, never an IP address: the servers' addresses may change at any time."
        ),
        format!(
            "Do not use mail.{domain} as server name: the TLS certificate is issued for {host} and would not match."
        ),
        "Prefer IMAP to POP: IMAP keeps messages and folders on the server, in sync on every device; moving from POP to IMAP later means re-creating the account in the client.".into(),
        "Printers and scanners must support SMTP authentication; a device that only accepts an IP address cannot be configured.".into(),
        "Give each device its own device password (POST /v1/addresses/{id}/device-passwords): it can be revoked alone, and the address password stays with you.".into(),
    ]
}
