//! Address settings: forwarding targets and the auto-reply.

pub(super) mod auto_reply;
pub(super) mod forwards;
