//! Webhooks on the wire, free of the database: which targets may be reached
//! (`target`: https only, no loopback/private/link-local/metadata address unless
//! `POSTIER_WEBHOOK_ALLOW_HOSTS` names it, checked after DNS resolution and pinned to the
//! checked addresses), Standard Webhooks signatures (`signature`) and the HTTP sender with
//! its limits (`sender`: no redirects, no proxy, a time limit, a bounded read of the answer).
//! The queue, the worker and the endpoints' management are `service::webhooks`.

pub(crate) mod sender;
pub(crate) mod signature;
pub(crate) mod target;
