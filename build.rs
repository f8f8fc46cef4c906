//! Builds every file of static/ into the binary, so `seckill` serves its page
//! wherever it is started from.

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=static");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("cannot read static/")
        .map(|entry| entry.expect("cannot read static/").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let mut table = String::from("&[\n");
    for path in &files {
        let name = path.file_name().and_then(|name| name.to_str());
        let name = name.expect("names of files in static/ must be UTF-8");
        let path = path.to_str().expect("the path to static/ must be UTF-8");
        table += &format!("    ({name:?}, include_bytes!({path:?})),\n");
    }
    table += "]\n";
    assert!(
        files.iter().any(|path| path.ends_with("seckill.html")),
        "static/seckill.html is missing"
    );
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static_files.rs");
    fs::write(out, table).expect("cannot write the table of static files");
}
