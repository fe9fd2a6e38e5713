//! `admission.k8s.io/v1` AdmissionReview: parsing with clear errors, the request digest, responses.

mod digest;
pub mod redact;
mod review;

pub use digest::{
    digested_object, digested_options, request_digest, without_volatile_fields, writes_status,
};
pub use review::*;
