//! The pages' HTML: the language chosen from `Accept-Language`, escaping, the one layout,
//! forms, the stylesheet and the headers every page carries. Knows nothing of the flows.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::{ApiError, ErrorCode};

/// Only Postier's own stylesheet, only forms posting back to Postier, no script at all, no
/// framing; no referrer either, so the token in the address never leaves in a `Referer`.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

pub(super) const STYLESHEET_PATH: &str = "/pages/style.css";

const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;\
color:#1d2330;line-height:1.5}\
h1{font-size:1.4rem}\
form{margin:1.2rem 0;padding:1rem;border:1px solid #d5d9e0;border-radius:.5rem}\
label{display:block;margin:.6rem 0 .2rem}\
input[type=email],input[type=password],input[type=text]{width:100%;box-sizing:border-box;\
padding:.45rem;font-size:1rem}\
button{margin-top:.9rem;padding:.5rem 1.1rem;font-size:1rem;border:0;border-radius:.35rem;\
background:#2557c7;color:#fff;cursor:pointer}\
button.secondary{background:#6b7280}\
p.error{color:#a61b1b;font-weight:600}\
";

/// The stylesheet, from the binary (the pages' CSP allows `'self'` only).
pub(super) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// French or English: French when the browser prefers it to English, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    En,
    Fr,
}

impl Lang {
    pub(super) fn of(req: &HttpRequest) -> Self {
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Self::from_accept_language)
            .unwrap_or(Self::En)
    }

    /// The first of `fr` and `en` with the highest weight (other languages are ignored).
    fn from_accept_language(value: &str) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let primary = tag.split('-').next().unwrap_or("");
            let lang = match primary {
                "fr" => Self::Fr,
                "en" => Self::En,
                _ => continue,
            };
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, lang));
            }
        }
        best.map_or(Self::En, |(_, lang)| lang)
    }

    pub(super) fn pick<'a>(self, en: &'a str, fr: &'a str) -> &'a str {
        match self {
            Self::En => en,
            Self::Fr => fr,
        }
    }

    fn code(self) -> &'static str {
        self.pick("en", "fr")
    }
}

/// Text made safe to put in HTML content and attribute values.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An input of a form.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
    Login,
    Password,
    Code,
    NewPassword,
}

/// A form posting back to a page: its hidden values, inputs and button.
pub(super) struct Form {
    pub(super) action: &'static str,
    pub(super) hidden: Vec<(&'static str, String)>,
    pub(super) fields: Vec<Field>,
    pub(super) button: String,
    pub(super) secondary: bool,
}

impl Form {
    fn html(&self, lang: Lang) -> String {
        let mut out = format!(r#"<form method="post" action="{}">"#, esc(self.action));
        for (name, value) in &self.hidden {
            out.push_str(&format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                esc(value)
            ));
        }
        for field in &self.fields {
            let (name, label, attributes) = match field {
                Field::Login => (
                    "login",
                    lang.pick("Login (e-mail address)", "Identifiant (adresse e-mail)"),
                    r#"type="email" autocomplete="username" required"#,
                ),
                Field::Password => (
                    "password",
                    lang.pick("Password", "Mot de passe"),
                    r#"type="password" autocomplete="current-password" required"#,
                ),
                Field::Code => (
                    "code",
                    lang.pick(
                        "Code from your authenticator app (or a recovery code)",
                        "Code de votre application d'authentification (ou un code de secours)",
                    ),
                    r#"type="text" inputmode="numeric" autocomplete="one-time-code" required"#,
                ),
                Field::NewPassword => (
                    "new_password",
                    lang.pick("New password", "Nouveau mot de passe"),
                    r#"type="password" autocomplete="new-password" required"#,
                ),
            };
            out.push_str(&format!(
                r#"<label for="{name}">{}</label><input id="{name}" name="{name}" {attributes}>"#,
                esc(label)
            ));
        }
        let class = if self.secondary {
            r#" class="secondary""#
        } else {
            ""
        };
        out.push_str(&format!(
            r#"<button type="submit"{class}>{}</button></form>"#,
            esc(&self.button)
        ));
        out
    }
}

/// One page: a title, paragraphs, an optional error line and forms.
pub(super) struct Page {
    lang: Lang,
    status: StatusCode,
    title: String,
    body: String,
}

impl Page {
    pub(super) fn new(lang: Lang, status: StatusCode, title: &str) -> Self {
        Self {
            lang,
            status,
            title: title.to_string(),
            body: String::new(),
        }
    }

    /// A paragraph of plain text (escaped).
    pub(super) fn text(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<p>{}</p>", esc(text)));
        self
    }

    /// A paragraph shown as an error.
    pub(super) fn error(mut self, text: &str) -> Self {
        self.body.push_str(&format!(
            r#"<p class="error" role="alert">{}</p>"#,
            esc(text)
        ));
        self
    }

    /// A list of plain-text items (escaped).
    pub(super) fn list(mut self, items: &[String]) -> Self {
        if !items.is_empty() {
            self.body.push_str("<ul>");
            for item in items {
                self.body.push_str(&format!("<li>{}</li>", esc(item)));
            }
            self.body.push_str("</ul>");
        }
        self
    }

    pub(super) fn form(mut self, form: Form) -> Self {
        self.body.push_str(&form.html(self.lang));
        self
    }

    pub(super) fn into_response(self) -> HttpResponse {
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"referrer\" content=\"no-referrer\">\
             <title>{title} · Postier</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
             <body><main><h1>{title}</h1>{body}</main></body></html>\n",
            lang = self.lang.code(),
            title = esc(&self.title),
            css = STYLESHEET_PATH,
            body = self.body,
        );
        let mut res = HttpResponse::build(self.status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .body(html);
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        res
    }
}

/// The page for a link without a token, or with one nobody knows.
pub(super) fn unknown_link(lang: Lang) -> HttpResponse {
    Page::new(
        lang,
        StatusCode::NOT_FOUND,
        lang.pick("This link does not work", "Ce lien ne fonctionne pas"),
    )
    .text(lang.pick(
        "It is unknown, was used already, or was replaced by a newer one. Ask whoever sent it for a new link.",
        "Il est inconnu, a déjà servi ou a été remplacé par un plus récent. Demandez un nouveau lien à qui vous l'a envoyé.",
    ))
    .into_response()
}

/// The page for a refused cross-site or unsigned form post (nothing was done).
pub(super) fn cross_site(lang: Lang) -> HttpResponse {
    Page::new(
        lang,
        StatusCode::FORBIDDEN,
        lang.pick("Nothing was done", "Rien n'a été fait"),
    )
    .text(lang.pick(
        "This form was not sent from this page. Open the link from your e-mail again and press the button there.",
        "Ce formulaire n'a pas été envoyé depuis cette page. Rouvrez le lien de votre e-mail et appuyez sur le bouton.",
    ))
    .into_response()
}

/// The page for a service's refusal: the link's state in plain words (never a problem
/// document, never internals).
pub(super) fn refusal(lang: Lang, e: &ApiError) -> HttpResponse {
    use ErrorCode as C;
    let (status, title, text) = match e.code {
        C::NotFound | C::TokenInvalid => return unknown_link(lang),
        C::InvitationExpired | C::ShareLinkExpired => (
            StatusCode::GONE,
            lang.pick("This link has expired", "Ce lien a expiré"),
            lang.pick(
                "Ask whoever sent it for a new one.",
                "Demandez-en un nouveau à qui vous l'a envoyé.",
            ),
        ),
        C::ShareLinkRevoked => (
            StatusCode::GONE,
            lang.pick("This link was revoked", "Ce lien a été révoqué"),
            lang.pick(
                "Its owner withdrew it. Ask them for a new one.",
                "Son propriétaire l'a retiré. Demandez-lui un nouveau lien.",
            ),
        ),
        C::ShareLinkUsedUp => (
            StatusCode::GONE,
            lang.pick("This link was used up", "Ce lien a déjà servi"),
            lang.pick(
                "It has no uses left. Ask whoever sent it for a new one.",
                "Il ne peut plus servir. Demandez-en un nouveau à qui vous l'a envoyé.",
            ),
        ),
        C::InvitationNotPending => (
            StatusCode::GONE,
            lang.pick("This invitation is closed", "Cette invitation est close"),
            lang.pick(
                "It was accepted, declined or withdrawn already.",
                "Elle a déjà été acceptée, déclinée ou retirée.",
            ),
        ),
        C::AccessAlreadyExists | C::MemberAlreadyExists | C::AddressIsAccountLogin => (
            StatusCode::CONFLICT,
            lang.pick("Nothing to do", "Rien à faire"),
            lang.pick(
                "This account has that access already.",
                "Ce compte a déjà cet accès.",
            ),
        ),
        C::InvitationBindingMismatch => (
            StatusCode::FORBIDDEN,
            lang.pick("Another account is expected", "Un autre compte est attendu"),
            lang.pick(
                "Only the account whose verified login is the invited address can accept this invitation.",
                "Seul le compte dont l'identifiant vérifié est l'adresse invitée peut accepter cette invitation.",
            ),
        ),
        C::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            lang.pick("Too many attempts", "Trop de tentatives"),
            lang.pick(
                "Wait a few minutes, then try again.",
                "Attendez quelques minutes, puis réessayez.",
            ),
        ),
        _ => {
            if e.code.status().is_server_error() {
                tracing::warn!(code = e.code.as_str(), detail = %e.detail, "a page's flow failed");
            }
            (
                if e.code.status().is_server_error() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_REQUEST
                },
                lang.pick("That did not work", "Cela n'a pas fonctionné"),
                lang.pick(
                    "Nothing was changed. Try again in a moment.",
                    "Rien n'a été modifié. Réessayez dans un instant.",
                ),
            )
        }
    };
    Page::new(lang, status, title).text(text).into_response()
}

#[cfg(test)]
mod tests {
    use super::{esc, Lang};

    #[test]
    fn french_is_chosen_only_when_preferred_to_english() {
        let of = Lang::from_accept_language;
        assert_eq!(of("fr-FR,fr;q=0.9,en;q=0.8"), Lang::Fr);
        assert_eq!(of("en-US,en;q=0.9,fr;q=0.8"), Lang::En);
        assert_eq!(of("de-DE,fr;q=0.5"), Lang::Fr);
        assert_eq!(of("en;q=0.4,fr;q=0.6"), Lang::Fr);
        assert_eq!(of("fr;q=0"), Lang::En);
        assert_eq!(of("de"), Lang::En);
        assert_eq!(of(""), Lang::En);
    }

    #[test]
    fn escaping_covers_content_and_attributes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
