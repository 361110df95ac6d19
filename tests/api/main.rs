//! The integration test binary: the real server, real databases, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod mail_services;
mod operations;
mod organizations;
mod policy;
mod sessions;
