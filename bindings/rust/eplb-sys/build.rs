//! Finds libeplb: the directory in `EPLB_LIB_DIR`, else `pkg-config --libs-only-L eplb`, else the
//! system linker path. Emits `cargo:libdir=` so dependents can set an rpath (DEP_EPLB_LIBDIR).
use std::env;
use std::process::Command;

fn pkg_config_libdir() -> Option<String> {
    let output = Command::new("pkg-config")
        .args(["--libs-only-L", "eplb"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout)
        .ok()?
        .split_whitespace()
        .find_map(|flag| flag.strip_prefix("-L").map(str::to_owned))
}

fn main() {
    println!("cargo:rerun-if-env-changed=EPLB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let libdir = env::var("EPLB_LIB_DIR")
        .ok()
        .filter(|dir| !dir.is_empty())
        .or_else(pkg_config_libdir);
    if let Some(dir) = &libdir {
        println!("cargo:rustc-link-search=native={dir}");
        println!("cargo:libdir={dir}");
    }
    println!("cargo:rustc-link-lib=dylib=eplb");
}
