::pgrx::pg_module_magic!(name, version);
pub mod allocation;
pub mod amount;
pub mod error;
pub mod input;
pub mod spi;
