//! HTTP handlers, one module per resource: extract → authorize → call the service → answer.
//! Route modules never import each other; what several share lives in `params` (pages,
//! confirmations) or with its owner in `service`. The one `configure` function here is
//! mounted by the server and read by the OpenAPI generator.

mod accounts;
mod addresses;
mod api_tokens;
mod device_passwords;
mod devices;
mod domains;
mod events;
mod health;
mod imports;
mod mail_services;
mod mailbox_tokens;
mod member_invitations;
mod organizations;
mod outbox;
pub(crate) mod params;
mod password_resets;
mod sessions;
mod settings;
mod sharing;
mod totp;
mod webhooks;

use utoipa_actix_web::service_config::ServiceConfig;

/// Every route of the API; the server and `postier openapi` use this same function. The
/// order is the document's (paths in first-registration order) and actix's matching order:
/// a literal segment (`/v1/invitations/accept`) must come before a `{id}` one.
pub(crate) fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(accounts::create_account)
        .service(accounts::verify_login)
        .service(accounts::get_me)
        .service(accounts::update_me)
        .service(accounts::delete_me)
        .service(accounts::change_my_password)
        .service(accounts::resend_verification)
        .service(accounts::change_my_login)
        .service(api_tokens::list_api_tokens)
        .service(api_tokens::create_api_token)
        .service(api_tokens::revoke_api_token)
        .service(password_resets::request_password_reset)
        .service(password_resets::complete_password_reset)
        .service(totp::start_totp_enrolment)
        .service(totp::confirm_totp_enrolment)
        .service(totp::disable_totp)
        .service(sessions::create_session)
        .service(sessions::complete_second_factor)
        .service(sessions::refresh_session)
        .service(sessions::reauthenticate)
        .service(sessions::delete_current_session)
        .service(organizations::list_organizations)
        .service(organizations::create_organization)
        .service(organizations::get_organization)
        .service(organizations::update_organization)
        .service(organizations::members::list_members)
        .service(organizations::members::add_member)
        .service(organizations::members::get_member)
        .service(organizations::members::update_member)
        .service(organizations::members::remove_member)
        .service(member_invitations::list_member_invitations)
        .service(member_invitations::list_my_member_invitations)
        .service(member_invitations::accept_member_invitation_by_token)
        .service(member_invitations::revoke_member_invitation)
        .service(member_invitations::accept_member_invitation)
        .service(member_invitations::decline_member_invitation)
        .service(events::list_organization_events)
        .service(events::stream_organization_events)
        .service(webhooks::list_webhooks)
        .service(webhooks::create_webhook)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::rotate_webhook_secret)
        .service(webhooks::ping_webhook)
        .service(webhooks::list_webhook_deliveries)
        .service(webhooks::redeliver_webhook_delivery)
        .service(mail_services::list_organization_mail_services)
        .service(mail_services::create_mail_service)
        .service(mail_services::list_mail_services)
        .service(mail_services::get_mail_service)
        .service(mail_services::update_mail_service)
        .service(mail_services::delete_mail_service)
        .service(domains::list_domains)
        .service(domains::link_domain)
        .service(domains::unlink_domain)
        .service(domains::get_domain_dns)
        .service(domains::check_domain_dns)
        .service(devices::get_server_settings)
        .service(devices::autoconfig::get_autoconfig)
        .service(devices::autoconfig::get_well_known_autoconfig)
        .service(devices::autodiscover::autodiscover)
        .service(addresses::crud::list_addresses)
        .service(addresses::create::create_address)
        .service(addresses::create::create_generic_address)
        .service(addresses::crud::get_address)
        .service(addresses::crud::update_address)
        .service(addresses::crud::delete_address)
        .service(addresses::password::change_address_password)
        .service(addresses::attach::list_my_addresses)
        .service(addresses::attach::attach_address)
        .service(addresses::aliases::list_aliases)
        .service(addresses::aliases::create_alias)
        .service(addresses::aliases::delete_alias)
        .service(events::list_address_events)
        .service(addresses::crud::get_address_sending)
        .service(imports::import_addresses)
        .service(sharing::users::list_address_users)
        .service(sharing::users::get_address_user)
        .service(sharing::users::update_address_user)
        .service(sharing::users::remove_address_user)
        .service(sharing::invitations::list_address_invitations)
        .service(sharing::invitations::create_invitation)
        .service(sharing::invitations::accept_invitation_by_token)
        .service(sharing::invitations::decline_invitation_by_token)
        .service(sharing::invitations::revoke_invitation)
        .service(sharing::invitations::resend_invitation)
        .service(sharing::invitations::accept_invitation)
        .service(sharing::invitations::decline_invitation)
        .service(sharing::invitations::list_my_invitations)
        .service(sharing::share_links::list_share_links)
        .service(sharing::share_links::create_share_link)
        .service(sharing::share_links::redeem_share_link)
        .service(sharing::share_links::get_share_link)
        .service(sharing::share_links::revoke_share_link)
        .service(outbox::list_outbox)
        .service(settings::forwards::list_forwards)
        .service(settings::forwards::create_forward)
        .service(settings::forwards::get_forward)
        .service(settings::forwards::update_forward)
        .service(settings::forwards::delete_forward)
        .service(settings::forwards::confirm_forward)
        .service(settings::forwards::refuse_forward)
        .service(settings::auto_reply::get_auto_reply)
        .service(settings::auto_reply::put_auto_reply)
        .service(settings::auto_reply::delete_auto_reply)
        .service(device_passwords::list_device_passwords)
        .service(device_passwords::create_device_password)
        .service(device_passwords::revoke_device_passwords)
        .service(device_passwords::revoke_device_password)
        .service(mailbox_tokens::create_mailbox_token)
        .service(devices::mobileconfig::get_mobileconfig);
}
