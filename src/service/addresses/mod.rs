//! Mail addresses: the one creation flow (`create`, which the CSV import uses in its bulk
//! form), the room a service has for more (`capacity`), changing one (`manage`, `password`,
//! `aliases`), password unification and what callers see of an address (`views`).

pub(crate) mod aliases;
pub(crate) mod capacity;
pub(crate) mod create;
pub(crate) mod manage;
pub(crate) mod password;
pub(crate) mod unification;
pub(crate) mod views;
