//! Thunderbird's autoconfig document (`clientConfig` 1.1), fetched from
//! `autoconfig.<domain>/mail/config-v1.1.xml` or `<domain>/.well-known/autoconfig/…`.

use std::fmt::Write as _;

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use validator::Validate;

use crate::domain::{EmailAddress, MailProtocol, Security, CLIENT_ENDPOINTS};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::service::mail_clients::discovery;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AutoconfigQuery {
    /// The address being configured; the domain comes from the `autoconfig.<domain>` host
    /// when omitted.
    #[validate(length(min = 1, max = 320))]
    #[param(min_length = 1, max_length = 320, format = Email)]
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
pub(crate) async fn get_autoconfig(
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
pub(crate) async fn get_well_known_autoconfig(
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
    if !discovery::hosted_domain(state, &domain).await? {
        return Err(ApiError::not_found("hosted domain"));
    }
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(client_config(&domain, &state.config.mail_host)))
}

/// The document: every client endpoint, preferred first in each direction.
fn client_config(domain: &str, host: &str) -> String {
    let domain = discovery::xml_text(domain);
    let host = discovery::xml_text(host);
    let mut servers = String::new();
    for e in CLIENT_ENDPOINTS {
        let (element, kind) = match e.protocol {
            MailProtocol::Imap => ("incomingServer", "imap"),
            MailProtocol::Pop3 => ("incomingServer", "pop3"),
            MailProtocol::Smtp => ("outgoingServer", "smtp"),
        };
        let socket = match e.security {
            Security::Ssl => "SSL",
            Security::Starttls => "STARTTLS",
        };
        let _ = write!(
            servers,
            "    <{element} type=\"{kind}\">\n\
             \x20     <hostname>{host}</hostname>\n\
             \x20     <port>{port}</port>\n\
             \x20     <socketType>{socket}</socketType>\n\
             \x20     <authentication>password-cleartext</authentication>\n\
             \x20     <username>%EMAILADDRESS%</username>\n\
             \x20   </{element}>\n",
            port = e.port,
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <clientConfig version=\"1.1\">\n\
         \x20 <emailProvider id=\"{domain}\">\n\
         \x20   <domain>{domain}</domain>\n\
         \x20   <displayName>{domain}</displayName>\n\
         \x20   <displayShortName>{domain}</displayShortName>\n\
         {servers}\
         \x20 </emailProvider>\n\
         </clientConfig>\n"
    )
}
