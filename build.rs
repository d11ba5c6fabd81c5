//! Generates include/credvault.h from the crate's `extern "C"` functions with cbindgen.
//! The header is committed; CI checks that the build leaves it unchanged.

fn main() {
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
