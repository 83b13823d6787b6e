//! Which of curve25519-dalek's backends checks Ed25519 signatures on this CPU.
//!
//! The workspace builds the crate with its AVX-512 IFMA backend compiled in
//! (`.cargo/config.toml`); the crate then picks, at run time, IFMA where the CPU has `avx512ifma`
//! and `avx512vl`, else AVX2, else its portable 64-bit code. This module asks the CPU the same
//! questions so that a run can say which one did the work (a figure means little without it).

/// The backend's name: `avx512ifma`, `avx2` or `serial`.
pub fn ed25519_backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(curve25519_dalek_backend = "avx512")]
        if std::arch::is_x86_feature_detected!("avx512ifma")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return "avx512ifma";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "serial"
}

/// Whether this build carries the AVX-512 IFMA backend (it is used only where the CPU has it).
pub const HAS_AVX512_BACKEND: bool = cfg!(curve25519_dalek_backend = "avx512");

#[cfg(test)]
mod tests {
    use super::*;

    /// The workspace's release and test builds carry the IFMA backend on x86-64: a build made with
    /// RUSTFLAGS that replace .cargo/config.toml's would silently lose it.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x86_64_builds_carry_the_avx512_backend() {
        const {
            assert!(
                HAS_AVX512_BACKEND,
                "built without .cargo/config.toml's rustflags"
            )
        };
        let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has = |flag: &str| {
            cpu.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|f| f == flag))
        };
        let expected = if has("avx512ifma") && has("avx512vl") {
            "avx512ifma"
        } else if has("avx2") {
            "avx2"
        } else {
            "serial"
        };
        if !cpu.is_empty() {
            assert_eq!(ed25519_backend(), expected);
        }
    }
}
