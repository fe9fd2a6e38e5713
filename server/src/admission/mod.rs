//! `admission.k8s.io/v1` AdmissionReview: parsing with clear errors, the request digest, responses.

mod digest;
mod review;

pub use digest::{request_digest, without_volatile_fields};
pub use review::*;
