//! Guardrail policies: the YAML contract, parsed once into types that cannot hold a bad value.

mod duration;
mod expression;
mod load;
mod locate;
mod model;
mod vap;
pub mod webhook_config;

pub use duration::PolicyDuration;
pub use expression::{
    Activation, CelExpression, Inputs, COST_BUDGET, EVAL_STACK, MAX_COMPREHENSION_NESTING,
    MAX_NODES, MAX_SOURCE_LEN, VARIABLES,
};
pub use load::{
    digest_version, load_path, load_versioned, parse_documents, read_sources, GuardrailDocument,
    PolicyError, PolicySources, MAX_REASON_CHARS,
};
pub use model::*;
pub use vap::export as export_vap;
