//! Guardrail policies: the YAML contract, parsed once into types that cannot hold a bad value.

mod duration;
mod load;
mod model;

pub use duration::PolicyDuration;
pub use load::{load_path, parse_documents, PolicyError};
pub use model::*;
