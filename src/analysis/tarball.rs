//! Reads files out of an (already decompressed) tar archive held in memory — npm tarballs
//! are gzipped tars with a `package/` prefix, and the registry's document often has an
//! empty `readme`, so the README and package.json come from here. ustar and pax path
//! headers are understood; sizes and counts are bounded; nothing touches a file system.

/// Largest single file we keep (a README, a manifest).
pub const MAX_FILE: usize = 1024 * 1024;
/// Headers read before giving up (a tarball with more entries is still searched that far).
const MAX_ENTRIES: usize = 10_000;
const BLOCK: usize = 512;

fn octal(field: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    usize::from_str_radix(s, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// `path=…` from a pax extended header body.
fn pax_path(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    text.lines().find_map(|l| {
        l.split_once(' ')
            .and_then(|(_, kv)| kv.strip_prefix("path="))
            .map(str::to_string)
    })
}

/// The contents of the regular files whose paths `wanted` accepts (first match per path),
/// with paths as stored (e.g. `package/README.md`). Malformed archives end the walk.
pub fn read_files(tar: &[u8], wanted: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut pos = 0usize;
    let mut next_path: Option<String> = None;
    for _ in 0..MAX_ENTRIES {
        let Some(header) = tar.get(pos..pos + BLOCK) else {
            break;
        };
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let Some(size) = octal(&header[124..136]) else {
            break;
        };
        let kind = header[156];
        let body_start = pos + BLOCK;
        let Some(body_end) = body_start.checked_add(size) else {
            break;
        };
        let Some(body) = tar.get(body_start..body_end) else {
            break;
        };
        let name = {
            let prefix = cstr(&header[345..500]);
            let base = cstr(&header[0..100]);
            if &header[257..262] == b"ustar" && !prefix.is_empty() {
                format!("{prefix}/{base}")
            } else {
                base
            }
        };
        match kind {
            b'x' => next_path = pax_path(body),
            b'0' | 0 => {
                let path = next_path.take().unwrap_or(name);
                if size <= MAX_FILE && wanted(&path) && !out.iter().any(|(p, _)| *p == path) {
                    out.push((path, body.to_vec()));
                }
            }
            _ => next_path = None,
        }
        pos = body_start + size.div_ceil(BLOCK) * BLOCK;
    }
    out
}

/// Inflates a gzip stream (npm tarballs), refusing output past `max` bytes so a small
/// "zip bomb" cannot take the Worker's memory. Pure Rust (miniz_oxide), same on both tiers.
pub fn gunzip(data: &[u8], max: usize) -> Result<Vec<u8>, &'static str> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut reader = flate2::read::GzDecoder::new(data).take(max as u64 + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|_| "not a gzip stream")?;
    if out.len() > max {
        return Err("unpacks to more than the cap");
    }
    Ok(out)
}

/// npm's layout: `package/README.md` (any case of the name) and `package/package.json`.
pub fn npm_readme_and_manifest(tar: &[u8]) -> (Option<String>, Option<String>) {
    let files = read_files(tar, |p| {
        let lower = p.to_ascii_lowercase();
        lower == "package/package.json" || lower == "package/readme.md" || lower == "package/readme"
    });
    let text = |pred: &dyn Fn(&str) -> bool| {
        files
            .iter()
            .find(|(p, _)| pred(&p.to_ascii_lowercase()))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    };
    (
        text(&|p| p.starts_with("package/readme")),
        text(&|p| p == "package/package.json"),
    )
}

#[cfg(test)]
pub mod build {
    //! A tiny tar writer for tests.
    pub fn entry(out: &mut Vec<u8>, name: &str, kind: u8, body: &[u8]) {
        let mut h = [0u8; 512];
        h[..name.len().min(100)].copy_from_slice(&name.as_bytes()[..name.len().min(100)]);
        h[100..108].copy_from_slice(b"0000644\0");
        let size = format!("{:011o}\0", body.len());
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        out.extend_from_slice(&h);
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    pub fn finish(out: &mut Vec<u8>) {
        out.extend_from_slice(&[0u8; 1024]);
    }
}

#[cfg(test)]
mod tests {
    use super::build::{entry, finish};
    use super::*;

    #[test]
    fn the_readme_and_manifest_come_out_of_an_npm_tarball() {
        let mut tar = Vec::new();
        entry(&mut tar, "package/dist/index.js", b'0', b"console.log(1)");
        entry(
            &mut tar,
            "package/README.md",
            b'0',
            b"# Weather\nUse ACME_TOKEN.",
        );
        entry(
            &mut tar,
            "package/package.json",
            b'0',
            br#"{"name": "@acme/w"}"#,
        );
        finish(&mut tar);
        let (readme, manifest) = npm_readme_and_manifest(&tar);
        assert_eq!(readme.as_deref(), Some("# Weather\nUse ACME_TOKEN."));
        assert_eq!(manifest.as_deref(), Some(r#"{"name": "@acme/w"}"#));
    }

    #[test]
    fn gzip_is_inflated_within_a_cap() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 100_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 100_000).unwrap().len(), 100_000);
        assert!(
            gunzip(&gz, 99_999).is_err(),
            "a bomb past the cap is refused"
        );
        assert!(gunzip(b"not gzip", 10).is_err());
    }

    #[test]
    fn pax_paths_override_the_short_name() {
        let mut tar = Vec::new();
        let long = format!("package/{}/README.md", "d".repeat(120));
        let record = format!("{} path={long}\n", long.len() + 7 + 3);
        entry(&mut tar, "PaxHeader", b'x', record.as_bytes());
        entry(&mut tar, "truncated-name", b'0', b"deep");
        finish(&mut tar);
        let files = read_files(&tar, |p| p.ends_with("README.md"));
        assert_eq!(files, vec![(long, b"deep".to_vec())]);
    }

    #[test]
    fn truncated_or_lying_archives_end_the_walk_without_panicking() {
        let mut tar = Vec::new();
        entry(&mut tar, "package/README.md", b'0', b"hello");
        for cut in [0, 10, 511, 512, 515] {
            let _ = read_files(&tar[..cut.min(tar.len())], |_| true);
        }
        let mut lying = tar.clone();
        lying[124..136].copy_from_slice(b"77777777777\0");
        assert!(read_files(&lying, |_| true).is_empty());
        let mut garbage = tar;
        garbage[124..136].copy_from_slice(b"not octal!!\0");
        assert!(read_files(&garbage, |_| true).is_empty());
        assert!(read_files(&[0xffu8; 4096], |_| true).is_empty());
    }
}
