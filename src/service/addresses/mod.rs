//! Mail addresses: the one creation flow (`create`, which the CSV import uses in its bulk
//! form), the room a service has for more (`capacity`), changing one (`manage`, `password`,
//! `aliases`), password unification and what callers see of an address (`views`).

pub mod aliases;
pub mod capacity;
pub mod create;
pub mod manage;
pub mod password;
pub mod unification;
pub mod views;
