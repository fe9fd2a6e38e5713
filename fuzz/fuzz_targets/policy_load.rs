//! Any text as guardrail YAML: loading (and compiling conditions) must refuse, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = countersign::policy::parse_documents("fuzz.yaml", text);
    }
});
