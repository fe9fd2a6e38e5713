//! Recorded traffic, for the simulator: a bounded, deduplicated, redacted sample of the reviews the
//! webhook answered, matched by a guardrail or not (a new guardrail can only be simulated against
//! traffic no guardrail matched yet). Each distinct request shape is kept once, with how often it
//! was seen and one redacted example, for a configurable number of days.

pub mod recorder;
pub mod redact;
pub mod shape;

pub use recorder::{TrafficRecorder, FLUSH_EVERY};
pub use shape::{Shape, ShapeSample};
