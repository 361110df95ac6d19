//! One GET and one POST per page of `links`. The GET reads what the link's token designates
//! (through the services' read-only previews) and shows it with a button; only the POST acts,
//! calling the same service function as the API's operation. Flows that need an account
//! (accepting an invitation, redeeming a share link, joining an organization) ask for the
//! login and password on the page: the POST opens a session, acts once, and ends it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::guard;
use super::render::{cross_site, refusal, unknown_link, Field, Form, Lang, Page};
use crate::auth::{Caller, ClientIp};
use crate::domain::{AccountBinding, Password, PermissionSet, Secret};
use crate::error::{ApiError, ErrorCode};
use crate::service::accounts::{password_reset, verification};
use crate::service::addresses::views::MyAddressResponse;
use crate::service::links::{
    ACCEPT_INVITATION, ACCEPT_MEMBER_INVITATION, CONFIRM_FORWARD, DECLINE_INVITATION,
    REDEEM_SHARE_LINK, REFUSE_FORWARD, RESET_PASSWORD, VERIFY_LOGIN,
};
use crate::service::sharing::{invitations, share_links};
use crate::service::{member_invitations, sessions, settings};
use crate::state::AppState;

type Data = web::Data<AppState>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: Option<String>,
}

/// The `token` of the page's address, if any.
fn query_token(req: &HttpRequest) -> Option<String> {
    serde_urlencoded::from_str::<TokenQuery>(req.query_string())
        .ok()
        .and_then(|q| q.token)
        .filter(|t| !t.is_empty())
}

/// Everything a page's forms may post (each uses some).
#[derive(Deserialize, Default)]
#[serde(default)]
struct PageForm {
    token: String,
    form_token: String,
    login: String,
    password: Option<Secret>,
    challenge: Option<Secret>,
    code: Option<Secret>,
    new_password: Option<String>,
}

/// The posted form, once it is known to come from the page itself (else the page saying
/// nothing was done).
fn posted(
    req: &HttpRequest,
    state: &AppState,
    path: &str,
    body: &[u8],
    lang: Lang,
) -> Result<PageForm, Box<HttpResponse>> {
    let form: PageForm =
        serde_urlencoded::from_bytes(body).map_err(|_| Box::new(unknown_link(lang)))?;
    if !guard::allowed(req, state, path, &form.token, &form.form_token) {
        return Err(Box::new(cross_site(lang)));
    }
    if form.token.is_empty() {
        return Err(Box::new(unknown_link(lang)));
    }
    Ok(form)
}

/// A form posting to `action` for the link `token`, with its form token.
fn form(state: &AppState, action: &'static str, token: &str, button: &str) -> Form {
    Form {
        action,
        hidden: vec![
            ("token", token.to_string()),
            ("form_token", guard::form_token(state, action, token)),
        ],
        fields: Vec::new(),
        button: button.to_string(),
        secondary: false,
    }
}

fn permission_names(permissions: PermissionSet) -> Vec<String> {
    permissions
        .to_vec()
        .iter()
        .map(|p| p.as_str().to_string())
        .collect()
}

/// The login form (or, after a password for an account with two-factor login, the code
/// form carrying the challenge) of a flow that needs an account.
fn login_form(
    state: &AppState,
    (action, token): (&'static str, &str),
    challenge: Option<String>,
    button: &str,
) -> Form {
    let mut login = form(state, action, token, button);
    match challenge {
        Some(challenge) => {
            login.hidden.push(("challenge", challenge));
            login.fields = vec![Field::Code];
        }
        None => login.fields = vec![Field::Login, Field::Password],
    }
    login
}

/// What went wrong with a login, to say on the form shown again; `None` for refusals that
/// are not about the typed credentials (their own page says what happened).
fn login_problem(lang: Lang, e: &ApiError) -> Option<&'static str> {
    match e.code {
        ErrorCode::InvalidCredentials => Some(lang.pick(
            "The login or the password is wrong.",
            "L'identifiant ou le mot de passe est incorrect.",
        )),
        ErrorCode::SecondFactorInvalid => Some(lang.pick(
            "The code is wrong or was used already: try the current one.",
            "Le code est incorrect ou a déjà servi : essayez le code actuel.",
        )),
        ErrorCode::SecondFactorChallengeInvalid => Some(lang.pick(
            "That took too long: log in again.",
            "Le délai est dépassé : reconnectez-vous.",
        )),
        _ => None,
    }
}

/// Logs in with the posted credentials (password, then the code of a two-factor login) for
/// one action. `show` renders the flow's page again with an error line and, for the code
/// step, the challenge.
async fn authenticate(
    state: &AppState,
    lang: Lang,
    form: &PageForm,
    ip: Option<String>,
    show: impl Fn(StatusCode, Option<&str>, Option<String>) -> HttpResponse,
) -> Result<Caller, Box<HttpResponse>> {
    let opened = match (&form.challenge, &form.code) {
        (Some(challenge), Some(code)) => {
            sessions::complete_second_factor(state, challenge.clone(), code.clone(), ip.clone())
                .await
        }
        _ => match &form.password {
            Some(password) if !form.login.is_empty() => {
                sessions::log_in(state, &form.login, password.clone(), ip.clone()).await
            }
            _ => {
                return Err(Box::new(show(
                    StatusCode::BAD_REQUEST,
                    Some(lang.pick(
                        "Type your login and password.",
                        "Saisissez votre identifiant et votre mot de passe.",
                    )),
                    None,
                )))
            }
        },
    };
    let e = match opened {
        Ok(session) => {
            return sessions::caller_of(state, &session, ip)
                .await
                .map_err(|e| Box::new(refusal(lang, &e)))
        }
        Err(e) => e,
    };
    if e.code == ErrorCode::SecondFactorRequired {
        return Err(Box::new(show(StatusCode::OK, None, e.challenge.clone())));
    }
    match login_problem(lang, &e) {
        Some(problem) => {
            // A wrong code leaves the challenge usable: ask for the code again.
            let challenge = (e.code == ErrorCode::SecondFactorInvalid)
                .then(|| form.challenge.as_ref().map(|c| c.expose().to_string()))
                .flatten();
            Err(Box::new(show(
                StatusCode::UNAUTHORIZED,
                Some(problem),
                challenge,
            )))
        }
        None => Err(Box::new(refusal(lang, &e))),
    }
}

/// Ends the session a page opened for one action.
async fn end_session(state: &AppState, caller: &Caller) {
    if let Err(e) = sessions::log_out(state, caller).await {
        tracing::warn!(error = %e, "ending a page's session failed");
    }
}

/// What a page of a flow that needs an account is shown again with: the status, a problem
/// line, the challenge of the code step.
type Shown<'a> = (StatusCode, Option<&'a str>, Option<String>);

/// The POST of a flow that needs an account: the form checked (`posted`), what its token
/// designates read again (`preview`: the `page` is shown again with it on a login problem),
/// a session opened for this one action (`authenticate`), the action, the session ended, and
/// the `outcome` page (or the refusal).
async fn act_with_account<P, T>(
    (req, state, ip, body): (&HttpRequest, &AppState, ClientIp, &[u8]),
    action: &'static str,
    preview: impl AsyncFnOnce(&AppState, &str) -> Result<P, ApiError>,
    page: impl Fn(&AppState, Lang, &str, &P, Shown<'_>) -> HttpResponse,
    act: impl AsyncFnOnce(&AppState, &Caller, &str) -> Result<T, ApiError>,
    outcome: impl FnOnce(Lang, T) -> HttpResponse,
) -> HttpResponse {
    let lang = Lang::of(req);
    let form = match posted(req, state, action, body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    let designated = match preview(state, &form.token).await {
        Ok(designated) => designated,
        Err(e) => return refusal(lang, &e),
    };
    let show = |status, problem: Option<&str>, challenge| {
        page(
            state,
            lang,
            &form.token,
            &designated,
            (status, problem, challenge),
        )
    };
    let caller = match authenticate(state, lang, &form, ip.0, show).await {
        Ok(caller) => caller,
        Err(res) => return *res,
    };
    let result = act(state, &caller, &form.token).await;
    end_session(state, &caller).await;
    match result {
        Ok(acted) => outcome(lang, acted),
        Err(e) => refusal(lang, &e),
    }
}

/// The page saying the caller's account now reaches `address`.
fn access_given(lang: Lang, title: &str, address: &MyAddressResponse) -> HttpResponse {
    done(
        lang,
        title,
        &format!(
            "{} {}.",
            lang.pick(
                "Your account now has access to",
                "Votre compte a désormais accès à",
            ),
            address.address
        ),
    )
}

fn done(lang: Lang, title: &str, text: &str) -> HttpResponse {
    Page::new(lang, StatusCode::OK, title)
        .text(text)
        .into_response()
}

// --- Verifying a login ---------------------------------------------------------------

pub(super) async fn verify_login_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match verification::preview(&state, &token).await {
        Ok(login) => Page::new(
            lang,
            StatusCode::OK,
            lang.pick("Confirm your login", "Confirmez votre identifiant"),
        )
        .text(&format!(
            "{} {login}",
            lang.pick(
                "Press the button to confirm that this is your login:",
                "Appuyez sur le bouton pour confirmer que ceci est votre identifiant :",
            )
        ))
        .form(form(
            &state,
            VERIFY_LOGIN,
            &token,
            lang.pick("Confirm", "Confirmer"),
        ))
        .into_response(),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn verify_login(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = match posted(&req, &state, VERIFY_LOGIN, &body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    match verification::verify(&state, &form.token, ip.0).await {
        Ok(verified) => done(
            lang,
            lang.pick("Login verified", "Identifiant vérifié"),
            &format!(
                "{} {}",
                verified.login,
                lang.pick("is your verified login.", "est votre identifiant vérifié.")
            ),
        ),
        Err(e) => refusal(lang, &e),
    }
}

// --- Resetting a password ------------------------------------------------------------

fn reset_form(
    state: &AppState,
    lang: Lang,
    token: &str,
    status: StatusCode,
    errors: &[String],
) -> HttpResponse {
    let mut page = Page::new(
        lang,
        status,
        lang.pick("Choose a new password", "Choisissez un nouveau mot de passe"),
    )
    .text(lang.pick(
        "At least 12 characters, hard to guess. Every session of your account ends: log in again afterwards.",
        "Au moins 12 caractères, difficile à deviner. Toutes les sessions de votre compte se terminent : reconnectez-vous ensuite.",
    ));
    for error in errors {
        page = page.error(error);
    }
    let mut change = form(
        state,
        RESET_PASSWORD,
        token,
        lang.pick("Change the password", "Changer le mot de passe"),
    );
    change.fields = vec![Field::NewPassword];
    page.form(change).into_response()
}

pub(super) async fn reset_password_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match password_reset::preview(&state, &token).await {
        Ok(()) => reset_form(&state, lang, &token, StatusCode::OK, &[]),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn reset_password(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = match posted(&req, &state, RESET_PASSWORD, &body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    let typed = form.new_password.clone().unwrap_or_default();
    let password = match Password::deserialize(serde::de::value::StrDeserializer::<
        serde::de::value::Error,
    >::new(&typed))
    {
        Ok(password) => password,
        Err(e) => {
            return reset_form(
                &state,
                lang,
                &form.token,
                StatusCode::UNPROCESSABLE_ENTITY,
                &[e.to_string()],
            )
        }
    };
    match password_reset::complete(&state, &form.token, password, ip.0).await {
        Ok(changed) => Page::new(
            lang,
            StatusCode::OK,
            lang.pick("Password changed", "Mot de passe changé"),
        )
        .text(lang.pick(
            "Log in with your new password. These addresses take the same new password:",
            "Connectez-vous avec votre nouveau mot de passe. Ces adresses prennent le même nouveau mot de passe :",
        ))
        .list(&changed.unified_addresses)
        .into_response(),
        Err(e) if e.code == ErrorCode::ValidationFailed => {
            let messages: Vec<String> = if e.errors.is_empty() {
                vec![e.detail.clone()]
            } else {
                e.errors.iter().map(|f| f.message.clone()).collect()
            };
            reset_form(&state, lang, &form.token, StatusCode::UNPROCESSABLE_ENTITY, &messages)
        }
        Err(e) => refusal(lang, &e),
    }
}

// --- Joining an organization -------------------------------------------------------

fn member_invitation_page(
    state: &AppState,
    lang: Lang,
    token: &str,
    invitation: &member_invitations::MemberInvitationResponse,
    (status, problem, challenge): Shown<'_>,
) -> HttpResponse {
    let mut page = Page::new(
        lang,
        status,
        lang.pick("Join an organization", "Rejoindre une organisation"),
    )
    .text(&format!(
        "{} {} ({}: {}).",
        lang.pick(
            "You are invited to join the organization",
            "Vous êtes invité à rejoindre l'organisation",
        ),
        invitation.organization_name,
        lang.pick("role", "rôle"),
        invitation.role.as_str(),
    ))
    .text(lang.pick(
        "Log in with the account that joins (sign up first if you have none).",
        "Connectez-vous avec le compte qui rejoint l'organisation (inscrivez-vous d'abord si vous n'en avez pas).",
    ));
    if let Some(problem) = problem {
        page = page.error(problem);
    }
    page.form(login_form(
        state,
        (ACCEPT_MEMBER_INVITATION, token),
        challenge,
        lang.pick("Log in and join", "Se connecter et rejoindre"),
    ))
    .into_response()
}

pub(super) async fn accept_member_invitation_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match member_invitations::preview_by_token(&state, &token).await {
        Ok(invitation) => member_invitation_page(
            &state,
            lang,
            &token,
            &invitation,
            (StatusCode::OK, None, None),
        ),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn accept_member_invitation(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    act_with_account(
        (&req, &state, ip, &body),
        ACCEPT_MEMBER_INVITATION,
        member_invitations::preview_by_token,
        member_invitation_page,
        member_invitations::accept_by_token,
        |lang, joined| {
            done(
                lang,
                lang.pick("Welcome", "Bienvenue"),
                &format!(
                    "{} {} ({}).",
                    lang.pick("You are now a member of", "Vous êtes désormais membre de"),
                    joined.organization_name,
                    joined.role.as_str()
                ),
            )
        },
    )
    .await
}

// --- Invitations onto an address ---------------------------------------------------

fn invitation_page(
    state: &AppState,
    lang: Lang,
    token: &str,
    invitation: &invitations::InvitationPreview,
    (status, problem, challenge): Shown<'_>,
) -> HttpResponse {
    let mut page = Page::new(
        lang,
        status,
        lang.pick("Accept an invitation", "Accepter une invitation"),
    )
    .text(&format!(
        "{} {}. {}",
        lang.pick(
            "You are invited to use the mail address",
            "Vous êtes invité à utiliser l'adresse mail",
        ),
        invitation.address,
        lang.pick("Permissions:", "Permissions :"),
    ))
    .list(&permission_names(invitation.permissions))
    .text(match invitation.account_binding {
        AccountBinding::ThisAddress => lang.pick(
            "Only the account whose verified login is this address can accept.",
            "Seul le compte dont l'identifiant vérifié est cette adresse peut accepter.",
        ),
        AccountBinding::Any => lang.pick(
            "Log in with the account of your choice (sign up first if you have none).",
            "Connectez-vous avec le compte de votre choix (inscrivez-vous d'abord si vous n'en avez pas).",
        ),
    });
    page = page.text(&format!(
        "{} {}.",
        lang.pick("This invitation expires on", "Cette invitation expire le"),
        invitation.expires_at.format("%Y-%m-%d %H:%M UTC")
    ));
    if let Some(problem) = problem {
        page = page.error(problem);
    }
    let mut decline = form(
        state,
        DECLINE_INVITATION,
        token,
        lang.pick("Decline the invitation", "Décliner l'invitation"),
    );
    decline.secondary = true;
    page.form(login_form(
        state,
        (ACCEPT_INVITATION, token),
        challenge,
        lang.pick("Log in and accept", "Se connecter et accepter"),
    ))
    .form(decline)
    .into_response()
}

pub(super) async fn accept_invitation_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match invitations::preview_by_token(&state, &token).await {
        Ok(invitation) => invitation_page(
            &state,
            lang,
            &token,
            &invitation,
            (StatusCode::OK, None, None),
        ),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn accept_invitation(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    act_with_account(
        (&req, &state, ip, &body),
        ACCEPT_INVITATION,
        invitations::preview_by_token,
        invitation_page,
        invitations::accept_by_token,
        |lang, address| {
            access_given(
                lang,
                lang.pick("Invitation accepted", "Invitation acceptée"),
                &address,
            )
        },
    )
    .await
}

pub(super) async fn decline_invitation_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match invitations::preview_by_token(&state, &token).await {
        Ok(invitation) => Page::new(
            lang,
            StatusCode::OK,
            lang.pick("Decline an invitation", "Décliner une invitation"),
        )
        .text(&format!(
            "{} {}. {}",
            lang.pick(
                "You are invited to use the mail address",
                "Vous êtes invité à utiliser l'adresse mail",
            ),
            invitation.address,
            lang.pick(
                "No account is needed to decline.",
                "Aucun compte n'est nécessaire pour décliner.",
            ),
        ))
        .form(form(
            &state,
            DECLINE_INVITATION,
            &token,
            lang.pick("Decline the invitation", "Décliner l'invitation"),
        ))
        .into_response(),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn decline_invitation(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = match posted(&req, &state, DECLINE_INVITATION, &body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    match invitations::decline_by_token(&state, &form.token, ip.0).await {
        Ok(()) => done(
            lang,
            lang.pick("Invitation declined", "Invitation déclinée"),
            lang.pick(
                "Whoever invited you sees it declined. Nothing else happens.",
                "La personne qui vous a invité la voit déclinée. Rien d'autre ne se passe.",
            ),
        ),
        Err(e) => refusal(lang, &e),
    }
}

// --- Forwarding targets ------------------------------------------------------------

pub(super) async fn confirm_forward_page(req: HttpRequest, state: Data) -> HttpResponse {
    forward_page(req, state, false).await
}

pub(super) async fn refuse_forward_page(req: HttpRequest, state: Data) -> HttpResponse {
    forward_page(req, state, true).await
}

/// The confirmation page offers both answers; the refusal page only the refusal.
async fn forward_page(req: HttpRequest, state: Data, refusal_only: bool) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    let secret = Secret::from(token.clone());
    let pending = match settings::pending_forward(&state, &secret).await {
        Ok(pending) => pending,
        Err(e) => return refusal(lang, &e),
    };
    let mut page = Page::new(
        lang,
        StatusCode::OK,
        lang.pick("Forwarding to you", "Transfert vers vous"),
    )
    .text(&format!(
        "{} {} {} {}.",
        lang.pick("Mail sent to", "Le courrier envoyé à"),
        pending.address.address,
        lang.pick("is to be forwarded to", "doit être transféré à"),
        pending.forward.target,
    ))
    .text(lang.pick(
        "Nothing is forwarded until you confirm. No account is needed.",
        "Rien n'est transféré avant votre confirmation. Aucun compte n'est nécessaire.",
    ));
    if !refusal_only {
        page = page.form(form(
            &state,
            CONFIRM_FORWARD,
            &token,
            lang.pick("Confirm the forwarding", "Confirmer le transfert"),
        ));
    }
    let mut refuse = form(
        &state,
        REFUSE_FORWARD,
        &token,
        lang.pick("Refuse the forwarding", "Refuser le transfert"),
    );
    refuse.secondary = !refusal_only;
    page.form(refuse).into_response()
}

pub(super) async fn confirm_forward(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = match posted(&req, &state, CONFIRM_FORWARD, &body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    match settings::confirm_forward(&state, &Secret::from(form.token), ip.0).await {
        Ok(confirmed) => done(
            lang,
            lang.pick("Forwarding confirmed", "Transfert confirmé"),
            &format!(
                "{} {} {} {}.",
                lang.pick("Mail sent to", "Le courrier envoyé à"),
                confirmed.address,
                lang.pick("now reaches", "arrive désormais à"),
                confirmed.target
            ),
        ),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn refuse_forward(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    let lang = Lang::of(&req);
    let form = match posted(&req, &state, REFUSE_FORWARD, &body, lang) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    match settings::refuse_forward(&state, &Secret::from(form.token), ip.0).await {
        Ok(refused) => done(
            lang,
            lang.pick("Forwarding refused", "Transfert refusé"),
            &format!(
                "{} {}.",
                lang.pick(
                    "Nothing will be forwarded to you from",
                    "Rien ne vous sera transféré depuis",
                ),
                refused.address.address
            ),
        ),
        Err(e) => refusal(lang, &e),
    }
}

// --- Share links -------------------------------------------------------------------

fn share_link_page(
    state: &AppState,
    lang: Lang,
    token: &str,
    link: &share_links::ShareLinkPreview,
    (status, problem, challenge): Shown<'_>,
) -> HttpResponse {
    let mut page = Page::new(
        lang,
        status,
        lang.pick("Use a share link", "Utiliser un lien de partage"),
    )
    .text(&format!(
        "{} {}. {}",
        lang.pick(
            "This link gives your account access to",
            "Ce lien donne à votre compte l'accès à",
        ),
        link.address,
        lang.pick("Permissions:", "Permissions :"),
    ))
    .list(&permission_names(link.permissions))
    .text(lang.pick(
        "Log in with the account that gets the access (sign up first if you have none).",
        "Connectez-vous avec le compte qui reçoit l'accès (inscrivez-vous d'abord si vous n'en avez pas).",
    ));
    if let Some(problem) = problem {
        page = page.error(problem);
    }
    page.form(login_form(
        state,
        (REDEEM_SHARE_LINK, token),
        challenge,
        lang.pick(
            "Log in and get the access",
            "Se connecter et obtenir l'accès",
        ),
    ))
    .into_response()
}

pub(super) async fn redeem_share_link_page(req: HttpRequest, state: Data) -> HttpResponse {
    let lang = Lang::of(&req);
    let Some(token) = query_token(&req) else {
        return unknown_link(lang);
    };
    match share_links::preview(&state, &token).await {
        Ok(link) => share_link_page(&state, lang, &token, &link, (StatusCode::OK, None, None)),
        Err(e) => refusal(lang, &e),
    }
}

pub(super) async fn redeem_share_link(
    req: HttpRequest,
    state: Data,
    ip: ClientIp,
    body: web::Bytes,
) -> HttpResponse {
    act_with_account(
        (&req, &state, ip, &body),
        REDEEM_SHARE_LINK,
        share_links::preview,
        share_link_page,
        share_links::redeem,
        |lang, address| access_given(lang, lang.pick("Access given", "Accès obtenu"), &address),
    )
    .await
}
