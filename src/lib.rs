//! Postier: the management API of a hosted-mail provider.
//!
//! Layers, outside in: `routes` (HTTP only) → `service` (flows spanning several resources in
//! one transaction) → `repo` (all database access) → `entity` (tables). `domain` holds the
//! validated types every layer shares; `auth` the caller's identity; `error` the problem
//! documents; `startup` mounts everything; `openapi` documents it. `dns` (DKIM keys, expected
//! records, live checks) is a library for the routes, free of HTTP and database types.
//! `pages` renders the HTML pages the links in e-mails open (calling `service` only).
//! `policy` is the Postfix policy service (a second listener) that enforces sending limits.
//! `webhooks` is the wire side of webhook deliveries (allowed targets, signatures, the HTTP
//! sender); their queue and worker are in `service::webhooks`.
//!
//! `mailstack` (the `mailstack-config` command) writes the Postfix + Dovecot configuration
//! that reads Postier's mail views; it shares nothing with the server at run time.

#![warn(unreachable_pub)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod db;
pub mod dns;
pub mod domain;
pub mod entity;
pub mod error;
pub(crate) mod etag;
pub(crate) mod extract;
pub mod idempotency;
pub mod mailer;
pub mod mailstack;
pub mod openapi;
pub(crate) mod pages;
pub mod policy;
pub mod repo;
pub(crate) mod routes;
pub mod service;
pub mod startup;
pub mod state;
mod sys;
pub mod telemetry;
pub(crate) mod webhooks;
