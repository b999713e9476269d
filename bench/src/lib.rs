//! Shared helpers for Skua's benchmarks (batch builders, result files).
