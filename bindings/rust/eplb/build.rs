//! Adds an rpath to libeplb's directory (found by eplb-sys) to this crate's tests and examples:
//! an rpath emitted by the -sys crate does not reach its dependents' binaries.
fn main() {
    if let Ok(dir) = std::env::var("DEP_EPLB_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
