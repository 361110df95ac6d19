//! Device configuration: the server settings of a mail service and Thunderbird's autoconfig
//! document, so that mail clients, phones and printers configure themselves.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use crate::auth::AuthUser;
use crate::domain::EmailAddress;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::repo;
use crate::service::authz;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (implicit TLS).
    Ssl,
    /// Plain connection upgraded with STARTTLS.
    Starttls,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerEndpoint {
    pub protocol: Protocol,
    /// Always the provider's host name: never an IP address, never `mail.<your domain>`.
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Authentication is required (SMTP included).
    pub authentication_required: bool,
    pub recommended: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerSettingsResponse {
    pub incoming: Vec<ServerEndpoint>,
    pub outgoing: Vec<ServerEndpoint>,
    /// What to type as user name: the full mail address.
    pub username: String,
    /// What to type as password.
    pub password: String,
    /// Advice shown to the user, with the reasons.
    pub notes: Vec<String>,
}

fn endpoint(
    protocol: Protocol,
    host: &str,
    port: u16,
    security: Security,
    recommended: bool,
) -> ServerEndpoint {
    ServerEndpoint {
        protocol,
        host: host.to_string(),
        port,
        security,
        authentication_required: true,
        recommended,
    }
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
pub async fn get_server_settings(
    state: web::Data<AppState>,
    user: AuthUser,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (service, _) = authz::service(&state.db, &user, path.into_inner()).await?;
    let host = state.config.mail_host.as_str();
    Ok(HttpResponse::Ok().json(ServerSettingsResponse {
        incoming: vec![
            endpoint(Protocol::Imap, host, 993, Security::Ssl, true),
            endpoint(Protocol::Pop3, host, 995, Security::Ssl, false),
        ],
        outgoing: vec![
            endpoint(Protocol::Smtp, host, 465, Security::Ssl, true),
            endpoint(Protocol::Smtp, host, 587, Security::Starttls, false),
        ],
        username: "the full mail address, e.g. name@".to_string() + &service.domain,
        password: "the password of the mail address (not the account password)".into(),
        notes: vec![
            format!(
                "Use {host} as server name, never an IP address: the servers' addresses may change at any time."
            ),
            format!(
                "Do not use mail.{} as server name: the TLS certificate is issued for {host} and would not match.",
                service.domain
            ),
            "Prefer IMAP to POP: IMAP keeps messages and folders on the server, in sync on every device; moving from POP to IMAP later means re-creating the account in the client.".into(),
            "Printers and scanners must support SMTP authentication; a device that only accepts an IP address cannot be configured.".into(),
        ],
    }))
}

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutoconfigQuery {
    /// The address being configured; the domain comes from the `autoconfig.<domain>` host
    /// when omitted.
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320)]
    pub emailaddress: Option<String>,
}

/// Thunderbird autoconfig document
///
/// The `clientConfig` XML that Thunderbird and other clients fetch from
/// `autoconfig.<domain>/mail/config-v1.1.xml`. Answers for hosted domains only.
#[utoipa::path(
    tag = "mail-services",
    params(AutoconfigQuery),
    responses(
        (status = 200, description = "Autoconfig document", body = String, content_type = "application/xml"),
        (status = 404, description = "Not a domain hosted here", body = crate::error::ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/mail/config-v1.1.xml")]
pub async fn get_autoconfig(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: ApiQuery<AutoconfigQuery>,
) -> ApiResult<HttpResponse> {
    autoconfig(&state, &req, query.emailaddress.as_deref()).await
}

/// Thunderbird autoconfig document (well-known location)
///
/// The same document at `<domain>/.well-known/autoconfig/mail/config-v1.1.xml`.
#[utoipa::path(
    tag = "mail-services",
    params(AutoconfigQuery),
    responses(
        (status = 200, description = "Autoconfig document", body = String, content_type = "application/xml"),
        (status = 404, description = "Not a domain hosted here", body = crate::error::ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[get("/.well-known/autoconfig/mail/config-v1.1.xml")]
pub async fn get_well_known_autoconfig(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: ApiQuery<AutoconfigQuery>,
) -> ApiResult<HttpResponse> {
    autoconfig(&state, &req, query.emailaddress.as_deref()).await
}

async fn autoconfig(
    state: &AppState,
    req: &HttpRequest,
    email: Option<&str>,
) -> ApiResult<HttpResponse> {
    let domain = match email {
        Some(email) => EmailAddress::parse(email)
            .map_err(|e| ApiError::invalid_field("emailaddress", e.to_string()))?
            .domain()
            .to_string(),
        None => {
            let host = req.connection_info().host().to_ascii_lowercase();
            let host = host.split(':').next().unwrap_or_default().to_string();
            host.strip_prefix("autoconfig.")
                .unwrap_or(&host)
                .to_string()
        }
    };
    let hosted = domain == state.config.free_domain.to_ascii_lowercase()
        || repo::mail_services::find_domain(&state.db, &domain)
            .await?
            .is_some();
    if !hosted {
        return Err(ApiError::not_found("hosted domain"));
    }
    let host = &state.config.mail_host;
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{domain}">
    <domain>{domain}</domain>
    <displayName>{domain}</displayName>
    <displayShortName>{domain}</displayShortName>
    <incomingServer type="imap">
      <hostname>{host}</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>{host}</hostname>
      <port>995</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
    <outgoingServer type="smtp">
      <hostname>{host}</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#
    );
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}
