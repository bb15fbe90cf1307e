//! ppc64 backend (placeholder until written).
compile_error!("ppc64 backend not written yet");
