//! Postier's own pages behind the links in e-mails (docs/pages.md), for installs without a
//! frontend (`POSTIER_APP_URL` unset): small server-rendered HTML in French or English, no
//! script, no external asset, mounted at the paths of `service::links`. A GET only shows
//! what the button will do (mail scanners open links); the POST acts, through the same
//! service functions as the API's operations. HTML only: every flow lives in `service`.
//! Not JSON operations, so not in the OpenAPI document.

mod flows;
mod guard;
mod render;

use actix_web::web;

use crate::service::links;

/// Mounts the pages and their stylesheet.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(render::STYLESHEET_PATH, web::get().to(render::stylesheet))
        .service(
            web::resource(links::VERIFY_LOGIN)
                .route(web::get().to(flows::verify_login_page))
                .route(web::post().to(flows::verify_login)),
        )
        .service(
            web::resource(links::RESET_PASSWORD)
                .route(web::get().to(flows::reset_password_page))
                .route(web::post().to(flows::reset_password)),
        )
        .service(
            web::resource(links::ACCEPT_MEMBER_INVITATION)
                .route(web::get().to(flows::accept_member_invitation_page))
                .route(web::post().to(flows::accept_member_invitation)),
        )
        .service(
            web::resource(links::ACCEPT_INVITATION)
                .route(web::get().to(flows::accept_invitation_page))
                .route(web::post().to(flows::accept_invitation)),
        )
        .service(
            web::resource(links::DECLINE_INVITATION)
                .route(web::get().to(flows::decline_invitation_page))
                .route(web::post().to(flows::decline_invitation)),
        )
        .service(
            web::resource(links::CONFIRM_FORWARD)
                .route(web::get().to(flows::confirm_forward_page))
                .route(web::post().to(flows::confirm_forward)),
        )
        .service(
            web::resource(links::REFUSE_FORWARD)
                .route(web::get().to(flows::refuse_forward_page))
                .route(web::post().to(flows::refuse_forward)),
        )
        .service(
            web::resource(links::REDEEM_SHARE_LINK)
                .route(web::get().to(flows::redeem_share_link_page))
                .route(web::post().to(flows::redeem_share_link)),
        );
}
