//! The integration test binary: the real server, real databases, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dns_server;
mod helpers;
mod mail_stack;

mod abuse_limits;
mod account_deletion;
mod accounts;
mod addresses;
mod api_tokens;
mod authz;
mod dns;
mod domain_ownership;
mod events_feed;
mod hardening;
mod imports;
mod instances;
mod mail_clients;
mod mail_services;
mod mail_views;
mod mailstack;
mod member_invitations;
mod operations;
mod organizations;
mod password_resets;
mod policy;
mod policy_clients;
mod sessions;
mod settings;
mod sharing;
mod smtp_server;
mod two_factor;
mod verification;
mod webhook_crash;
mod webhook_receiver;
mod webhooks;
