//! The integration test binary: the real server, real databases, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dns_server;
mod helpers;
mod mail_stack;

mod accounts;
mod addresses;
mod dns;
mod imports;
mod mail_clients;
mod mail_services;
mod mail_views;
mod mailstack;
mod operations;
mod organizations;
mod policy;
mod sessions;
mod settings;
mod sharing;
mod smtp_server;
