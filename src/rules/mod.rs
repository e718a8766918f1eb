//! Alert rules. Today: the region policy ([`region`]); custom filter-pattern rules plug in
//! beside it. Rules are plain functions of an [`crate::event::Event`] and a time.

pub mod glob;
pub mod policy;
pub mod region;

pub use policy::RegionPolicy;
