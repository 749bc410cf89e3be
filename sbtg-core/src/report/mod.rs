//! **Report layer**: what is made for people to read. Comparison with a connectome
//! ([`compare`]: metrics, report, figures), the figures of a circuit ([`plot`]) and the
//! benchmark of every method on simulated and real data ([`benchmark`]). Depends on
//! every layer below it.

pub mod benchmark;
pub mod compare;
pub mod plot;
pub mod training;
