//! A loopback npm registry for packages the tests write themselves: the package document
//! (`GET /npm/{name}`) and its gzipped tarball (`package/…` entries, `dist.integrity`
//! sha512), in npm's wire format, served by a [`FakeServer`]. Both the Worker's analysis
//! (`NPM_REGISTRY_BASE`) and a machine's `npx` (`npm_config_registry`) read it, so a test
//! can deploy a server that crashes, prints a secret or never answers.

use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

use crate::fake::{FakeServer, Reply};

fn tar_entry(out: &mut Vec<u8>, path: &str, mode: &str, body: &[u8]) {
    let mut h = [0u8; 512];
    let name = path.as_bytes();
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    h[100..108].copy_from_slice(format!("{mode:0>7}\0").as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{:011o}\0", body.len()).as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A gzipped npm tarball of `files` (path under `package/`, contents); `package.json` is
/// written from `manifest`.
pub fn tarball(manifest: &Value, files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = Vec::new();
    tar_entry(
        &mut tar,
        "package/package.json",
        "644",
        manifest.to_string().as_bytes(),
    );
    for (path, body) in files {
        tar_entry(&mut tar, &format!("package/{path}"), "755", body.as_bytes());
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    gz.finish().expect("gzip")
}

/// Publishes `name@version` on `fake` under `/npm`: the document (with `readme`) and the
/// tarball holding `manifest` as package.json plus `files`.
pub fn publish(
    fake: &FakeServer,
    name: &str,
    version: &str,
    readme: &str,
    manifest: Value,
    files: &[(&str, &str)],
) {
    let tgz = tarball(&manifest, files);
    let integrity = format!("sha512-{}", STANDARD.encode(Sha512::digest(&tgz)));
    let base_name = name.rsplit('/').next().unwrap_or(name);
    let tar_path = format!("/npm/{name}/-/{base_name}-{version}.tgz");
    let mut v = manifest;
    v["dist"] = json!({ "tarball": format!("{}{tar_path}", fake.url()), "integrity": integrity });
    let doc = json!({
        "name": name,
        "readme": readme,
        "dist-tags": { "latest": version },
        "versions": { version: v },
    });
    fake.on(
        "GET",
        &format!("/npm/{}", name.replacen('/', "%2f", 1)),
        Reply::json(200, &doc),
    );
    fake.on("GET", &format!("/npm/{name}"), Reply::json(200, &doc));
    fake.on(
        "GET",
        &tar_path,
        Reply::Http(
            200,
            vec![("content-type".into(), "application/octet-stream".into())],
            Bytes::from(tgz),
        ),
    );
}
