//! Criterion benchmarks of Tongban; the benches live in `benches/` and run with
//! `cargo bench -p tongban-benches`.
