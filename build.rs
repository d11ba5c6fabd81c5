//! Generates include/credvault.h from the crate's `extern "C"` functions with cbindgen.
//! The header is committed; CI checks that the build leaves it unchanged.

fn main() {
    shared_library_link_args();
    let crate_dir =
        std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=src/error.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(format!("{crate_dir}/include/credvault.h"));
        }
        Err(e) => {
            // A parse error in a half-edited file must not hide the compiler's own message.
            println!("cargo:warning=cbindgen could not generate include/credvault.h: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared library packaging (issue 13, the C/C++ packaging; kept apart from the header generation
// above). ELF only: the SONAME `libcredvault.so.0`, the C ABI's major version (bindings/install.sh
// installs libcredvault.so.0.1.0 and the symlinks .so.0 and .so). Reaches only the cdylib link,
// never the rlib, the staticlib, the tests or the binaries.
//
// Exported symbols: rustc already links a cdylib with a version script of its own that exports
// only the `#[no_mangle] extern "C"` functions (`vault_*`) and makes everything else local. A
// second script does not narrow that: GNU ld refuses to combine it with rustc's ("anonymous
// version tag cannot be combined with other version tags") and lld, rustc's default linker on
// x86_64 Linux, takes the union of both. tests/cpp/run.sh checks `nm -D` instead.
fn shared_library_link_args() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if !matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd"
    ) {
        return;
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcredvault.so.0");
    // Programs linked against target/<profile>/libcredvault.so (the C tests, the quick start, cgo)
    // now ask the loader for libcredvault.so.0: give them that name next to the library. The link
    // is made before the library exists (this script runs first) and is left alone if present.
    #[cfg(unix)]
    if let Ok(out_dir) = std::env::var("OUT_DIR") {
        // OUT_DIR is <target>/<profile>/build/credvault-<hash>/out.
        if let Some(profile_dir) = std::path::Path::new(&out_dir).ancestors().nth(3) {
            let link = profile_dir.join("libcredvault.so.0");
            if std::fs::symlink_metadata(&link).is_err() {
                let _ = std::os::unix::fs::symlink("libcredvault.so", &link);
            }
        }
    }
}
