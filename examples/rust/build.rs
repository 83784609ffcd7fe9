//! Gives the example an rpath to the libeplb that eplb-sys linked (`EPLB_LIB_DIR` or
//! `pkg-config eplb`), so that `cargo run` finds it: the rpath a dependency's build script adds
//! does not reach this binary. Copy this file (and the eplb-sys dependency) into your crate.
fn main() {
    if let Ok(dir) = std::env::var("DEP_EPLB_LIBDIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
