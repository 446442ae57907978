//! Link flags for the operator binary.

fn main() {
    // Packed relative relocations (DT_RELR, glibc ≥ 2.36, binutils ≥ 2.38): the dynamic
    // loader reads a few KiB of bitmaps at start instead of ~1.4 MiB of RELA entries, which
    // otherwise stay resident as file pages of the binary (BENCHMARKS.md, controller RSS).
    // Position-independent, so address-space randomisation is kept.
    let target = std::env::var("TARGET").unwrap_or_default();
    let opt_in = std::env::var("FABRICWATCH_NO_RELR").is_err();
    if opt_in && target.ends_with("-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-env-changed=FABRICWATCH_NO_RELR");
}
