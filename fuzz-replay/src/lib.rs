//! The fuzz targets' bodies, compiled on stable for replay.
//!
//! `fuzz/` is a cargo-fuzz project outside the workspace (libFuzzer needs nightly flags); its
//! `src/lib.rs` holds one `pub fn(&[u8])` per target and is the only copy. This crate compiles
//! that file as [`targets`], and `tests/replay.rs` sends every committed input through it: the
//! seeds in `fuzz/corpus/<target>/`, the generated corpus in `fuzz/corpus.tar.xz` and the
//! former findings in `fuzz/regressions/<target>/`. It needs no root: it belongs to the unit
//! tier (`cargo xtask test unit`).

#[path = "../../fuzz/src/lib.rs"]
pub mod targets;
