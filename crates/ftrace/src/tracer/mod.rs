//! Tracers built on the engine: callbacks that record events into per-CPU
//! buffers, and Linux's output formats.

pub mod buffer;
pub mod clock;
pub mod dump;
pub mod function;
pub mod graph;
pub mod output;
pub mod ring;
