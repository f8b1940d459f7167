//! Builds the web client in `web/` and embeds it into the `roost` binary.
//!
//! Runs on the build machine (also for cross builds): `npm ci` when `web/node_modules` is
//! missing or older than `web/package-lock.json`, then `npm run build` with Vite's output
//! directory in `OUT_DIR`, so nothing git tracks in `web/` is written (only the ignored
//! `node_modules/`). `ROOST_WEB_DIST=<dir>` embeds an already built client instead, for build
//! machines without node (the directory must hold what `npm run build` writes; a relative path
//! is taken from the checkout's root, where cargo runs this script).
//!
//! Every file of the built client becomes an entry of `OUT_DIR/web_files.rs` (read by
//! `src/web/mod.rs`): its URL path, content type, a strong ETag made from its SHA-256, its
//! bytes (`include_bytes!`) and, for text types, gzip and brotli variants compressed here, once,
//! at the highest levels (a request never compresses anything). It must not touch anything
//! outside `OUT_DIR` but `web/node_modules`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// What in `web/` changes the built client. `node_modules` is not watched: `npm ci` follows
/// the lock file.
const WEB_INPUTS: [&str; 7] = [
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

/// Vite 8 needs node 20.19 or later; older versions fail in ways that do not name the cause.
const MIN_NODE_MAJOR: u32 = 20;

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let web = manifest_dir.join("web");
    // A path that does not exist would make cargo run this script on every build (web/public
    // may be absent); its creation comes with a change to one of the others.
    for input in WEB_INPUTS.iter().filter(|input| web.join(input).exists()) {
        println!("cargo:rerun-if-changed=web/{input}");
    }
    println!("cargo:rerun-if-env-changed=ROOST_WEB_DIST");

    let dist = match std::env::var_os("ROOST_WEB_DIST") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            println!("cargo:rerun-if-changed={}", dir.display());
            dir
        }
        None => {
            let dist = out_dir.join("web-dist");
            build_client(&web, &dist);
            dist
        }
    };
    if !dist.join("index.html").is_file() {
        fail(&format!(
            "the built web client in {} has no index.html",
            dist.display()
        ));
    }
    embed(
        &dist,
        &out_dir.join("web-embed"),
        &out_dir.join("web_files.rs"),
    );
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

/// Stops the build with `message` (cargo prints a failed build script's stderr).
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// `npm ci` if needed, then `npm run build` into `dist`.
fn build_client(web: &Path, dist: &Path) {
    check_node();
    let lock = web.join("package-lock.json");
    // npm writes its own copy of the lock into node_modules at every install.
    let installed = web.join("node_modules").join(".package-lock.json");
    if modified(&installed).is_none_or(|installed| modified(&lock) > Some(installed)) {
        run(web, &["ci", "--no-audit", "--no-fund"]);
    }
    let out = dist
        .to_str()
        .unwrap_or_else(|| fail("OUT_DIR is not valid UTF-8, which npm cannot be given"));
    // Vite's own output directory (web/dist) is left alone: two builds of the same worktree
    // (another profile, another target dir) would otherwise empty it under each other.
    run(
        web,
        &["run", "build", "--", "--outDir", out, "--emptyOutDir"],
    );
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A clear error when node or npm is missing or too old, instead of npm's or Vite's own.
fn check_node() {
    const INSTALL: &str = "building Roost needs Node.js 20 or later and npm for its web client \
        (Debian 13: `apt install nodejs npm`; older systems: nodejs.org), or ROOST_WEB_DIST \
        set to a client built elsewhere";
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(_) | Err(_) => fail(&format!("`node --version` failed: {INSTALL}")),
    };
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major.is_none_or(|m| m < MIN_NODE_MAJOR) {
        fail(&format!("found node {}: {INSTALL}", version.trim()));
    }
    match Command::new("npm").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(_) | Err(_) => fail(&format!("`npm --version` failed: {INSTALL}")),
    }
}

fn run(web: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run npm: {e}")));
    if !status.success() {
        fail(&format!(
            "`npm {}` in {} failed ({status}); its output is above",
            args.join(" "),
            web.display()
        ));
    }
}

/// One built file, as the generated table describes it.
struct Entry {
    url_path: String,
    source: PathBuf,
    content_type: &'static str,
    etag: String,
    gzip: Option<PathBuf>,
    br: Option<PathBuf>,
}

/// Writes the compressed variants into `variants_dir` and the table into `table`.
fn embed(dist: &Path, variants_dir: &Path, table: &Path) {
    if variants_dir.exists() {
        std::fs::remove_dir_all(variants_dir)
            .unwrap_or_else(|e| fail(&format!("cannot empty {}: {e}", variants_dir.display())));
    }
    std::fs::create_dir_all(variants_dir)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", variants_dir.display())));
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    let mut entries = Vec::new();
    for (n, (url_path, source)) in files.into_iter().enumerate() {
        let bytes = std::fs::read(&source)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", source.display())));
        let content_type = content_type(&url_path);
        let hash = hex(&Sha256::digest(&bytes));
        // Strong and per representation (RFC 9110, 8.8.3): the compressed variants are other
        // bytes, so they get their own tags.
        let etag = format!("\"{}\"", &hash[..32]);
        let (mut gzip, mut br) = (None, None);
        if compressible(content_type) {
            let gz = gzip_bytes(&bytes);
            if worth_it(gz.len(), bytes.len()) {
                gzip = Some(write_variant(variants_dir, &format!("{n}.gz"), &gz));
            }
            let brotli = brotli_bytes(&bytes);
            if worth_it(brotli.len(), bytes.len()) {
                br = Some(write_variant(variants_dir, &format!("{n}.br"), &brotli));
            }
        }
        entries.push(Entry {
            url_path,
            source,
            content_type,
            etag,
            gzip,
            br,
        });
    }
    entries.sort_by(|a, b| a.url_path.cmp(&b.url_path));
    let mut code = String::from(
        "// Generated by build.rs from the built web client; do not edit.\n\
         pub static FILES: &[EmbeddedFile] = &[\n",
    );
    for e in &entries {
        let variant = |path: &Option<PathBuf>, suffix: &str| match path {
            Some(p) => format!(
                "Some(Variant {{ etag: {:?}, bytes: include_bytes!({:?}) }})",
                format!("{}-{suffix}\"", e.etag.trim_end_matches('"')),
                path_str(p)
            ),
            None => "None".to_owned(),
        };
        writeln!(
            code,
            "    EmbeddedFile {{ path: {:?}, content_type: {:?}, identity: Variant {{ etag: {:?}, \
             bytes: include_bytes!({:?}) }}, gzip: {}, br: {} }},",
            e.url_path,
            e.content_type,
            e.etag,
            path_str(&e.source),
            variant(&e.gzip, "gz"),
            variant(&e.br, "br"),
        )
        .expect("writing to a String cannot fail");
    }
    code.push_str("];\n");
    std::fs::write(table, code)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", table.display())));
}

/// Every file under `dir`, with its URL path relative to `root`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let listing = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())));
    for item in listing {
        let item = item.unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", dir.display())));
        let path = item.path();
        if path.is_dir() {
            collect(root, &path, files);
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .expect("a file found under root is under root");
        let mut url_path = String::new();
        for part in relative.components() {
            let part = part
                .as_os_str()
                .to_str()
                .unwrap_or_else(|| fail(&format!("{} is not a UTF-8 file name", path.display())));
            url_path.push('/');
            url_path.push_str(part);
        }
        files.push((url_path, path));
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| fail(&format!("{} is not valid UTF-8", path.display())))
}

fn write_variant(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", path.display())));
    path
}

/// A variant is kept only if it saves a tenth: below that, the identity bytes cost the client
/// no more and the binary carries less.
fn worth_it(compressed: usize, original: usize) -> bool {
    compressed * 10 < original * 9
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_else(|e| fail(&format!("gzip failed: {e}")))
}

fn brotli_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)
        .unwrap_or_else(|e| fail(&format!("brotli failed: {e}")));
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("writing to a String cannot fail");
    }
    s
}

/// The content type of a built file, by its extension; unknown ones are served as bytes.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "avif" => "image/avif",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

/// Text formats shrink; images, fonts and audio are compressed already.
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type.starts_with("application/json")
        || content_type.starts_with("application/manifest+json")
        || content_type == "image/svg+xml"
        || content_type == "image/x-icon"
        || content_type == "application/wasm"
}
