//! Reads files out of a tar archive as a stream — npm tarballs are gzipped tars with a
//! `package/` prefix, and the registry's document often has an empty `readme`, so the
//! README and package.json come from here. The archive is inflated and walked block by
//! block: entries we do not want are skipped without being kept, the walk stops as soon
//! as every wanted file is found, and it never inflates more than the caller's cap, so a
//! tarball that unpacks to gigabytes costs at most that cap of work and [`MAX_FILE`] per
//! kept file of memory. ustar and pax path headers are understood; nothing touches a file
//! system.

use std::io::{self, Read};

/// Largest single file we keep (a README, a manifest).
pub const MAX_FILE: usize = 1024 * 1024;
/// Largest pax extended header we read (it only carries a path here).
const MAX_PAX: usize = 64 * 1024;
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

/// Reads exactly `n` bytes, or `None` at a short read (a truncated archive).
fn read_exact_vec(r: &mut impl Read, n: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    r.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Skips `n` bytes without keeping them; `false` at a short read.
fn skip(r: &mut impl Read, n: usize) -> bool {
    io::copy(&mut r.by_ref().take(n as u64), &mut io::sink()).is_ok_and(|m| m == n as u64)
}

/// The contents of the regular files whose paths `wanted` accepts (first match per path,
/// each at most [`MAX_FILE`]), with paths as stored (e.g. `package/README.md`). The walk
/// ends at the end of the archive, at a malformed or truncated entry, or once `enough`
/// files were found.
pub fn read_stream(
    mut tar: impl Read,
    wanted: impl Fn(&str) -> bool,
    enough: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut next_path: Option<String> = None;
    for _ in 0..MAX_ENTRIES {
        if out.len() >= enough {
            break;
        }
        let Some(header) = read_exact_vec(&mut tar, BLOCK) else {
            break;
        };
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let Some(size) = octal(&header[124..136]) else {
            break;
        };
        let Some(padded) = size.checked_next_multiple_of(BLOCK) else {
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
        let kind = header[156];
        let keep = match kind {
            b'x' => size <= MAX_PAX,
            b'0' | 0 => {
                let path = next_path.clone().unwrap_or_else(|| name.clone());
                size <= MAX_FILE && wanted(&path) && !out.iter().any(|(p, _)| *p == path)
            }
            _ => false,
        };
        if !keep {
            if !skip(&mut tar, padded) {
                break;
            }
            // A pax header we did not read, or an entry it described, no longer applies.
            next_path = None;
            continue;
        }
        let Some(mut body) = read_exact_vec(&mut tar, padded) else {
            break;
        };
        body.truncate(size);
        match kind {
            b'x' => next_path = pax_path(&body),
            _ => {
                let path = next_path.take().unwrap_or(name);
                out.push((path, body));
            }
        }
    }
    out
}

/// [`read_stream`] over an archive already in memory.
pub fn read_files(tar: &[u8], wanted: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
    read_stream(tar, wanted, usize::MAX)
}

/// npm's layout: `package/README.md` (any case of the name) and `package/package.json`,
/// read from the gzipped tarball while it is inflated, never past `max_inflated` bytes.
pub fn npm_readme_and_manifest(
    tgz: &[u8],
    max_inflated: usize,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let gz = flate2::read::GzDecoder::new(tgz);
    if gz.header().is_none() {
        return Err("not a gzip stream");
    }
    let inflated = gz.take(max_inflated as u64);
    let files = read_stream(
        inflated,
        |p| {
            let lower = p.to_ascii_lowercase();
            lower == "package/package.json"
                || lower == "package/readme.md"
                || lower == "package/readme"
        },
        2,
    );
    let text = |pred: &dyn Fn(&str) -> bool| {
        files
            .iter()
            .find(|(p, _)| pred(&p.to_ascii_lowercase()))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    };
    Ok((
        text(&|p| p.starts_with("package/readme")),
        text(&|p| p == "package/package.json"),
    ))
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
        let (readme, manifest) = npm_readme_and_manifest(&gzip(&tar), 1 << 20).unwrap();
        assert_eq!(readme.as_deref(), Some("# Weather\nUse ACME_TOKEN."));
        assert_eq!(manifest.as_deref(), Some(r#"{"name": "@acme/w"}"#));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Counts the bytes the walk pulls out of the decompressor.
    struct Counted<R> {
        inner: R,
        read: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n);
            Ok(n)
        }
    }

    #[test]
    fn a_bomb_is_walked_only_up_to_the_cap_and_the_walk_stops_at_the_files_it_wants() {
        // 64 MiB of zeros inside one entry compress to ~64 KiB: the classic bomb.
        let mut tar = Vec::new();
        entry(
            &mut tar,
            "package/package.json",
            b'0',
            br#"{"name": "@acme/w"}"#,
        );
        entry(
            &mut tar,
            "package/dist/bomb.bin",
            b'0',
            &vec![0u8; 64 << 20],
        );
        entry(&mut tar, "package/README.md", b'0', b"after the bomb");
        finish(&mut tar);
        let tgz = gzip(&tar);
        assert!(tgz.len() < 1 << 20, "the bomb is small: {}", tgz.len());
        let (readme, manifest) = npm_readme_and_manifest(&tgz, 4 << 20).unwrap();
        assert_eq!(manifest.as_deref(), Some(r#"{"name": "@acme/w"}"#));
        assert_eq!(readme, None, "the README past the cap is not reached");

        // Once both files are found nothing more is inflated.
        let mut early = Vec::new();
        entry(&mut early, "package/README.md", b'0', b"hello");
        entry(&mut early, "package/package.json", b'0', b"{}");
        entry(
            &mut early,
            "package/dist/big.bin",
            b'0',
            &vec![7u8; 8 << 20],
        );
        finish(&mut early);
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let early_gz = gzip(&early);
        let counted = Counted {
            inner: flate2::read::GzDecoder::new(&early_gz[..]),
            read: read.clone(),
        };
        let files = read_stream(counted, |p| !p.contains("dist"), 2);
        assert_eq!(files.len(), 2);
        assert!(read.get() <= 4 * BLOCK, "inflated {} bytes", read.get());
        assert!(npm_readme_and_manifest(b"not gzip", 10).is_err());
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
