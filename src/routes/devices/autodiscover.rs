//! Outlook's autodiscover (POX, `POST /autodiscover/autodiscover.xml`): the request names an
//! e-mail address, the answer gives the IMAP, POP3 and SMTP settings. Outlook finds it at
//! `autodiscover.<domain>` (CNAME) or through `_autodiscover._tcp.<domain>` (SRV to the mail
//! host, whose certificate then matches). The answer is the same for every local part of a
//! hosted domain, so it tells nothing about which addresses exist.

use std::fmt::Write as _;

use actix_web::dev::Payload;
use actix_web::{post, web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;

use crate::domain::{EmailAddress, MailProtocol, Security, CLIENT_ENDPOINTS};
use crate::error::{ApiError, ApiResult, ErrorCode, ProblemDocument};
use crate::extract::{check_length, read_body};
use crate::service::mail_clients::discovery::{self, xml_text};
use crate::state::AppState;

/// The only response schema offered: Outlook's POX settings (no Exchange ActiveSync).
const OUTLOOK_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
/// Autodiscover requests are a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;

/// An autodiscover request body (XML, at most 16 KiB).
pub(crate) struct AutodiscoverBody(String);

impl FromRequest for AutodiscoverBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let checked = check_length(req, MAX_BODY);
        let body = read_body(payload, MAX_BODY);
        Box::pin(async move {
            checked?;
            let bytes = body.await?;
            String::from_utf8(bytes).map(AutodiscoverBody).map_err(|_| {
                ApiError::new(ErrorCode::MalformedRequest, "the body is not UTF-8 XML")
            })
        })
    }
}

/// The text of the first element named `name` (any namespace prefix), entities decoded.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with(['/', '?', '!']) || tag.ends_with('/') {
            continue;
        }
        let tag_name = tag.split_whitespace().next().unwrap_or_default();
        let local = tag_name.rsplit(':').next().unwrap_or_default();
        if local == name {
            let text = &rest[..rest.find('<').unwrap_or(rest.len())];
            let decoded = text
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&");
            return Some(decoded.trim().to_string());
        }
    }
    None
}

/// Outlook autodiscover
///
/// The POX request (`<Autodiscover><Request><EMailAddress>…`) answered with the IMAP, POP3
/// and SMTP settings of the provider's mail host, for any address of a domain hosted here
/// (the answer is the same for every local part). Only Outlook's response schema is offered:
/// a request for another (Exchange ActiveSync) gets autodiscover's error 601.
#[utoipa::path(
    tag = "mail-clients",
    request_body(content = String, content_type = "text/xml", description = "The autodiscover request"),
    responses(
        (status = 200, description = "Settings (or autodiscover error 601 for another response schema)", body = String, content_type = "application/xml"),
        (status = 400, description = "Not an autodiscover request (`malformed_request`)", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "Not a domain hosted here", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Not an e-mail address (`validation_failed`)", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
#[post("/autodiscover/autodiscover.xml")]
pub(crate) async fn autodiscover(
    state: web::Data<AppState>,
    body: AutodiscoverBody,
) -> ApiResult<HttpResponse> {
    let xml = body.0;
    let email = element_text(&xml, "EMailAddress").ok_or_else(|| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            "not an autodiscover request: no <EMailAddress> element",
        )
    })?;
    let email = EmailAddress::parse(&email)
        .map_err(|e| ApiError::invalid_field("EMailAddress", e.to_string()))?;
    if !discovery::hosted_domain(&state, email.domain()).await? {
        return Err(ApiError::not_found("hosted domain"));
    }
    let wanted = element_text(&xml, "AcceptableResponseSchema");
    let answer = match wanted.as_deref() {
        None | Some(OUTLOOK_SCHEMA) => settings(email.as_str(), &state.config.mail_host),
        Some(_) => schema_not_offered(),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(answer))
}

fn settings(email: &str, host: &str) -> String {
    let (email, host) = (xml_text(email), xml_text(host));
    let mut protocols = String::new();
    // Outlook takes the first protocol of each direction it supports: the preferred ones
    // come first in CLIENT_ENDPOINTS.
    for e in CLIENT_ENDPOINTS {
        let kind = match e.protocol {
            MailProtocol::Imap => "IMAP",
            MailProtocol::Pop3 => "POP3",
            MailProtocol::Smtp => "SMTP",
        };
        let tls = match e.security {
            Security::Ssl => "<SSL>on</SSL>",
            Security::Starttls => "<SSL>on</SSL><Encryption>TLS</Encryption>",
        };
        let smtp = if e.protocol == MailProtocol::Smtp {
            "<UsePOPAuth>off</UsePOPAuth><SMTPLast>off</SMTPLast>"
        } else {
            ""
        };
        let _ = write!(
            protocols,
            "      <Protocol>\n\
             \x20       <Type>{kind}</Type>\n\
             \x20       <Server>{host}</Server>\n\
             \x20       <Port>{port}</Port>\n\
             \x20       <DomainRequired>off</DomainRequired>\n\
             \x20       <LoginName>{email}</LoginName>\n\
             \x20       <SPA>off</SPA>\n\
             \x20       {tls}\n\
             \x20       <AuthRequired>on</AuthRequired>{smtp}\n\
             \x20     </Protocol>\n",
            port = e.port,
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
         \x20 <Response xmlns=\"{OUTLOOK_SCHEMA}\">\n\
         \x20   <Account>\n\
         \x20     <AccountType>email</AccountType>\n\
         \x20     <Action>settings</Action>\n\
         {protocols}\
         \x20   </Account>\n\
         \x20 </Response>\n\
         </Autodiscover>\n"
    )
}

/// Autodiscover's own error for a response schema that is not offered.
fn schema_not_offered() -> String {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
     <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
     \x20 <Response>\n\
     \x20   <Error>\n\
     \x20     <ErrorCode>601</ErrorCode>\n\
     \x20     <Message>Provider is not available for the requested schema: only IMAP, POP3 and SMTP settings are offered</Message>\n\
     \x20     <DebugData />\n\
     \x20   </Error>\n\
     \x20 </Response>\n\
     </Autodiscover>\n"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_whatever_the_namespace_prefix() {
        let plain = "<?xml version=\"1.0\"?><Autodiscover xmlns=\"x\"><Request>\
                     <EMailAddress> Julie@Famille.example </EMailAddress></Request></Autodiscover>";
        assert_eq!(
            element_text(plain, "EMailAddress").as_deref(),
            Some("Julie@Famille.example")
        );
        let prefixed = "<a:Autodiscover xmlns:a=\"x\"><a:Request><a:EMailAddress>a&amp;b@c.example\
                        </a:EMailAddress></a:Request></a:Autodiscover>";
        assert_eq!(
            element_text(prefixed, "EMailAddress").as_deref(),
            Some("a&b@c.example")
        );
        assert_eq!(
            element_text("<Request><EMailAddress/></Request>", "EMailAddress"),
            None
        );
        assert_eq!(element_text("not xml at all", "EMailAddress"), None);
        assert_eq!(element_text("<EMailAddress", "EMailAddress"), None);
    }
}
