//! The files of static/, built into the binary by build.rs.
//! Python: Flask's static/ folder, and render_template('seckill.html').

use percent_encoding::percent_decode_str;

/// Every file of static/ by name.
static FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

/// The page served at /seckill; build.rs refuses to build without it.
pub const PAGE: &str = "seckill.html";

/// A file of static/: its name and bytes.
pub type StaticFile = (&'static str, &'static [u8]);

/// The file named by the rest of a `/static/` URL, percent-decoded. Only the
/// exact name of a file in static/ matches, so no path can climb out of it.
pub fn find(encoded_name: &str) -> Option<StaticFile> {
    let name = percent_decode_str(encoded_name).decode_utf8().ok()?;
    FILES.iter().copied().find(|(file, _)| *file == name)
}

/// The page served at /seckill.
pub fn page() -> StaticFile {
    find(PAGE).unwrap_or((PAGE, b""))
}

/// The Content-Type for a file name.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_by_exact_name_only() {
        assert_eq!(find("seckill.html").map(|(name, _)| name), Some(PAGE));
        assert_eq!(find("seckill%2Ehtml").map(|(name, _)| name), Some(PAGE));
        for climb in [
            "../Cargo.toml",
            "..%2FCargo.toml",
            "%2e%2e/Cargo.toml",
            "%2e%2e%2fsrc%2fmain.rs",
            "./seckill.html",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "..\\Cargo.toml",
            "seckill.html%00",
            "%ff",
            "",
        ] {
            assert_eq!(find(climb), None, "{climb}");
        }
    }
}
