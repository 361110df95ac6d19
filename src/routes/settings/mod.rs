//! Address settings: forwarding targets and the auto-reply.

pub mod auto_reply;
pub mod forwards;
