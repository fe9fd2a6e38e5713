//! The portal's built assets (the site root cargo-leptos fills: `pkg/` and the `public/` files),
//! held in memory: read and hashed once at start-up, compressed once per file (brotli and gzip,
//! in the background from start-up, or by the first request that needs it, which never waits for
//! brotli on a large file), and served
//!
//! - under `/assets/{hash}/…`, where `{hash}` covers every file, with immutable caching: a new
//!   build gives new URLs, so a browser never asks twice for the same one;
//! - at their legacy URLs (`/pkg/countersign.js`, `/webauthn.js`, …) with `no-cache` and a strong
//!   `ETag`, so a repeat visit gets a 304.
//!
//! It runs as a middleware outside the session and CSRF layers: an asset request never loads a
//! session from the store, and never gets a cookie (which would make it uncacheable).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::assets::AssetBase;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Where hashed URLs start.
const PREFIX: &str = "/assets/";

/// How deep the site root is searched (it is flat in practice: `pkg/` and a few files).
const MAX_DEPTH: usize = 4;

/// Hex digits of the build hash in URLs (64 bits: unique across builds, short in the HTML).
const HASH_LEN: usize = 16;

/// Cache policy of hashed URLs: their content never changes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Cache policy of legacy URLs: revalidate every time (cheap: a 304).
const REVALIDATE: &str = "no-cache";

/// Brotli's best quality; it is paid once per file.
const BROTLI_QUALITY: i32 = 11;

/// Brotli window (4 MiB) — larger than the wasm, so it all counts as context.
const BROTLI_WINDOW: i32 = 22;

/// A request waits for brotli only on files this small (well under a second). Larger ones (the
/// wasm: seconds at quality 11 on a busy core) go out in gzip until the warm-up has made them.
const BROTLI_WAIT_MAX: usize = 256 * 1024;

/// Why the site root could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A directory or file under the site root could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A content coding the portal can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
    Identity,
}

impl Coding {
    fn token(self) -> Option<&'static str> {
        match self {
            Coding::Brotli => Some("br"),
            Coding::Gzip => Some("gzip"),
            Coding::Identity => None,
        }
    }
}

/// One file: its bytes, and its compressed forms once made (`None` when compressing did not
/// make it smaller, as for an already-compressed image).
struct Asset {
    content_type: &'static str,
    identity: Bytes,
    /// Hex SHA-256 prefix of `identity`; the ETag of each coding derives from it.
    digest: String,
    brotli: OnceCell<Option<Bytes>>,
    gzip: OnceCell<Option<Bytes>>,
}

impl Asset {
    fn new(path: &str, identity: Vec<u8>) -> Self {
        let digest = hex::encode(Sha256::digest(&identity));
        Self {
            content_type: content_type(path),
            identity: Bytes::from(identity),
            digest: digest[..HASH_LEN * 2].to_owned(),
            brotli: OnceCell::new(),
            gzip: OnceCell::new(),
        }
    }

    /// The bytes in `coding` if a request may have them now: made already, or cheap to make.
    async fn ready(self: &Arc<Self>, coding: Coding) -> Option<Bytes> {
        if coding == Coding::Brotli && self.identity.len() > BROTLI_WAIT_MAX {
            return self.brotli.get().cloned().flatten();
        }
        self.encoded(coding).await
    }

    /// The bytes in `coding`, compressing them on first use (off the async threads).
    async fn encoded(self: &Arc<Self>, coding: Coding) -> Option<Bytes> {
        let cell = match coding {
            Coding::Identity => return Some(self.identity.clone()),
            Coding::Brotli => &self.brotli,
            Coding::Gzip => &self.gzip,
        };
        cell.get_or_init(|| {
            let data = self.identity.clone();
            async move {
                let compressed = tokio::task::spawn_blocking(move || compress(coding, &data))
                    .await
                    .ok()
                    .flatten();
                compressed.filter(|c| c.len() < self.identity.len())
            }
        })
        .await
        .clone()
    }

    /// A strong ETag per representation: the bytes of each coding differ.
    fn etag(&self, coding: Coding) -> String {
        match coding.token() {
            Some(token) => format!("\"{}-{token}\"", self.digest),
            None => format!("\"{}\"", self.digest),
        }
    }
}

/// Compress `data`; `None` if the encoder failed (the file is then sent as it is).
fn compress(coding: Coding, data: &[u8]) -> Option<Bytes> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(data.len() / 3);
    match coding {
        Coding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: BROTLI_QUALITY,
                lgwin: BROTLI_WINDOW,
                size_hint: data.len(),
                ..Default::default()
            };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params).ok()?;
        }
        Coding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(&mut out, flate2::Compression::best());
            encoder.write_all(data).ok()?;
            encoder.finish().ok()?;
        }
        Coding::Identity => return Some(Bytes::copy_from_slice(data)),
    }
    Some(Bytes::from(out))
}

/// The site's files in memory, by path relative to the site root (`pkg/countersign.wasm`).
#[derive(Clone, Default)]
pub struct Assets {
    /// `/assets/{hash}`, or `None` when the site root held no files.
    base: Option<String>,
    files: Arc<BTreeMap<String, Arc<Asset>>>,
}

impl Assets {
    /// Read every file under `site_root` and hash them together. A missing site root is an empty
    /// site (pages then link the unhashed paths); an unreadable one is an error.
    pub fn load(site_root: &Path) -> Result<Self, LoadError> {
        let mut found = BTreeMap::new();
        match std::fs::metadata(site_root) {
            Ok(meta) if meta.is_dir() => collect(site_root, "", 0, &mut found)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(LoadError::Read {
                    path: site_root.to_owned(),
                    source,
                })
            }
        }
        Ok(Self::from_files(found))
    }

    fn from_files(found: BTreeMap<String, Vec<u8>>) -> Self {
        if found.is_empty() {
            return Self::default();
        }
        // Names and lengths are hashed too, so moving bytes between files changes the hash.
        let mut hasher = Sha256::new();
        for (path, bytes) in &found {
            hasher.update((path.len() as u64).to_be_bytes());
            hasher.update(path.as_bytes());
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        }
        let hash = hex::encode(hasher.finalize());
        let files = found
            .into_iter()
            .map(|(path, bytes)| {
                let asset = Arc::new(Asset::new(&path, bytes));
                (path, asset)
            })
            .collect();
        Self {
            base: Some(format!("/assets/{}", &hash[..HASH_LEN])),
            files: Arc::new(files),
        }
    }

    /// The URL prefix pages link the assets under (empty, the unhashed paths, for an empty site).
    pub fn base(&self) -> AssetBase {
        AssetBase(self.base.clone().unwrap_or_default())
    }

    /// Compress every file in the background, so the first visitor does not wait for brotli.
    pub fn warm_up(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let files = self.files.clone();
        runtime.spawn(async move {
            // Gzip first: it takes milliseconds, brotli seconds.
            for coding in [Coding::Gzip, Coding::Brotli] {
                for asset in files.values() {
                    asset.encoded(coding).await;
                }
            }
        });
    }

    /// The file a request path names, and whether it was named by its hashed URL. `Err` for a path
    /// under `/assets/` that names nothing we have (an old build's hash): it is answered 404 here,
    /// not by the pages.
    fn lookup(&self, path: &str) -> Result<Option<(&Arc<Asset>, bool)>, ()> {
        if let Some(rest) = path.strip_prefix(PREFIX) {
            let base = self.base.as_deref().and_then(|b| b.strip_prefix(PREFIX));
            let file = match (rest.split_once('/'), base) {
                (Some((hash, file)), Some(base)) if hash == base => file,
                _ => return Err(()),
            };
            return self.files.get(file).map(|a| Some((a, true))).ok_or(());
        }
        Ok(path
            .strip_prefix('/')
            .and_then(|p| self.files.get(p))
            .map(|a| (a, false)))
    }
}

/// Add the regular files under `dir` to `found`, keyed by `/`-joined relative path.
fn collect(
    dir: &Path,
    prefix: &str,
    depth: usize,
    found: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), LoadError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| LoadError::Read { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let entry = entry.map_err(read_err(dir))?;
        let path = entry.path();
        // A name that is not UTF-8 cannot be a URL we link; skip it.
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let key = format!("{prefix}{name}");
        // Not followed: a symlink could publish anything the process can read (a key, the
        // database), whatever the mode checks say (second review, finding 15).
        let kind = entry.file_type().map_err(read_err(&path))?;
        if kind.is_dir() {
            if depth < MAX_DEPTH {
                collect(&path, &format!("{key}/"), depth + 1, found)?;
            }
        } else if kind.is_file() && is_site_file(&key) {
            found.insert(key, std::fs::read(&path).map_err(read_err(&path))?);
        }
    }
    Ok(())
}

/// Whether a file is of a kind a built site holds: only those are published, so a key, a
/// certificate or a database that lands under the site root is not.
fn is_site_file(path: &str) -> bool {
    content_type(path) != "application/octet-stream"
}

/// The media type for a file name; `nosniff` is on, so scripts and wasm need exact ones.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether the client accepts `token` (`q` above zero, named or through `*`).
fn accepts(headers: &HeaderMap, token: &str) -> bool {
    let mut named = None;
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case(token) {
                named = Some(q > 0.0);
            } else if coding == "*" {
                star = Some(q > 0.0);
            }
        }
    }
    named.or(star).unwrap_or(false)
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for this header).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Answer GET and HEAD for an asset from memory; anything else goes on to the pages.
pub async fn serve(State(assets): State<Assets>, request: Request, next: Next) -> Response {
    let head = *request.method() == Method::HEAD;
    if !head && *request.method() != Method::GET {
        return next.run(request).await;
    }
    let (asset, hashed) = match assets.lookup(request.uri().path()) {
        Ok(Some(found)) => found,
        Ok(None) => return next.run(request).await,
        Err(()) => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    let headers = request.headers();
    let mut chosen = (Coding::Identity, asset.identity.clone());
    for coding in [Coding::Brotli, Coding::Gzip] {
        if accepts(headers, coding.token().unwrap_or_default()) {
            if let Some(bytes) = asset.ready(coding).await {
                chosen = (coding, bytes);
                break;
            }
        }
    }
    let (coding, body) = chosen;
    let etag = asset.etag(coding);

    let mut response = Response::new(Body::empty());
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if hashed { IMMUTABLE } else { REVALIDATE }),
    );
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    if not_modified(headers, &etag) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if let Some(token) = coding.token() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if !head {
        *response.body_mut() = Body::from(body);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn accept_encoding_honours_q_zero_and_star() {
        let h = with("accept-encoding", "gzip, deflate, br;q=0");
        assert!(accepts(&h, "gzip"));
        assert!(!accepts(&h, "br"));
        let h = with("accept-encoding", "*;q=0.5, gzip;q=0");
        assert!(accepts(&h, "br"));
        assert!(!accepts(&h, "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let h = with("if-none-match", "\"a\", W/\"b\"");
        assert!(not_modified(&h, "\"b\""));
        assert!(!not_modified(&h, "\"c\""));
        assert!(not_modified(&with("if-none-match", "*"), "\"c\""));
    }

    #[test]
    fn lookup_by_hash_and_legacy_path() {
        let mut files = BTreeMap::new();
        files.insert("pkg/app.js".to_owned(), b"x".to_vec());
        let assets = Assets::from_files(files);
        let base = assets.base().0;
        assert!(matches!(
            assets.lookup(&format!("{base}/pkg/app.js")),
            Ok(Some((_, true)))
        ));
        assert!(matches!(assets.lookup("/pkg/app.js"), Ok(Some((_, false)))));
        assert!(matches!(assets.lookup("/login"), Ok(None)));
        assert!(assets
            .lookup("/assets/0000000000000000/pkg/app.js")
            .is_err());
        assert!(assets.lookup(&format!("{base}/pkg/other.js")).is_err());
        assert!(assets.lookup(&format!("{base}/../pkg/app.js")).is_err());
    }

    #[test]
    fn review2_15_only_site_files_and_no_symlinks_are_published() -> std::io::Result<()> {
        let site = tempfile::tempdir()?;
        let secrets = tempfile::tempdir()?;
        std::fs::create_dir(site.path().join("pkg"))?;
        std::fs::write(site.path().join("pkg/app.js"), "x")?;
        std::fs::write(site.path().join("grant-signing.key"), "seed")?;
        std::fs::write(site.path().join("countersign.db"), "db")?;
        std::fs::write(
            secrets.path().join("tls.css"),
            "a key named like a stylesheet",
        )?;
        std::os::unix::fs::symlink(
            secrets.path().join("tls.css"),
            site.path().join("linked.css"),
        )?;
        std::os::unix::fs::symlink(secrets.path(), site.path().join("data"))?;
        let mut found = BTreeMap::new();
        collect(site.path(), "", 0, &mut found).map_err(std::io::Error::other)?;
        assert_eq!(found.keys().collect::<Vec<_>>(), vec!["pkg/app.js"]);
        Ok(())
    }
}
