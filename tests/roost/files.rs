//! Attachments as clients see them (upload, download, ranges, headers, who may read) and what
//! is left on disk, against the real binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every file under the attachment store, `tmp/` included.
fn stored_files(data: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("attachments"), &mut out);
    out
}

fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend((0..len).map(|i| (i % 251) as u8));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_stored_once_and_served_safely_to_those_who_may_see_them() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let picture = png(5000);

    let (s, first) = api
        .upload(&alice, "..%2F..%2Fetc%2Fcat.png", picture.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["content_type"], "image/png");
    assert_eq!(first["size"], picture.len());
    assert_eq!(first["name"], "cat.png", "a client's path is never a path");
    let (s, second) = api.upload(&alice, "again.png", picture.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(first["id"], second["id"]);
    assert_eq!(first["sha256"], second["sha256"]);
    let data = api.roost.setup.data_dir();
    assert_eq!(stored_files(&data).len(), 1, "one copy per content");

    let get = |who: &User, id: &Value, range: Option<&str>| {
        let mut req = api
            .http
            .get(api.roost.https_url(&format!("/api/v1/attachments/{id}")))
            .bearer_auth(&who.token);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send()
    };
    let r = get(&alice, &first["id"], None).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline;"));
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(r.bytes().await.unwrap().as_ref(), picture.as_slice());

    let r = get(&alice, &first["id"], Some("bytes=0-7")).await.unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-7/{}", picture.len()).as_str()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &picture[..8]);
    let r = get(&alice, &first["id"], Some("bytes=-4")).await.unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &picture[picture.len() - 4..]
    );
    let r = get(
        &alice,
        &first["id"],
        Some(&format!("bytes={}-", picture.len())),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Bob sees it only once a message in a room he is in shows it.
    assert_eq!(
        get(&bob, &first["id"], None).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let room = api.room(&alice, "pets", true).await;
    api.add(&alice, room, &bob).await;
    let (s, msg) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice,
            json!({ "body": "", "attachment_ids": [first["id"]] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["attachments"][0]["name"], "cat.png");
    assert_eq!(
        get(&bob, &first["id"], None).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&bob, &second["id"], None).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "the other upload of the same bytes is not shown anywhere"
    );
    // Bob cannot attach Alice's upload to his own message.
    let (s, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &bob,
            json!({ "body": "mine", "attachment_ids": [second["id"]] }),
        )
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "unknown_attachment");

    // Anything but a safe image is a download, with its type but never inline.
    let (s, text) = api
        .upload(&alice, "notes.txt", b"<script>alert(1)</script>\n".to_vec())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{text}");
    let r = get(&alice, &text["id"], None).await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
}

/// A chunked upload (no Content-Length) of `total` bytes over raw HTTP/1.1; the status code.
async fn chunked_upload(api: &Api, who: &User, total: usize) -> u16 {
    let mut tls = tls_connect(&api.roost, None).await;
    let head = format!(
        "POST /api/v1/attachments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        who.token
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'a'; 16 * 1024];
    let mut sent = 0;
    while sent < total {
        let part = format!("{:x}\r\n", chunk.len());
        // The server may answer and stop reading early: later writes may fail.
        if tls.write_all(part.as_bytes()).await.is_err()
            || tls.write_all(&chunk).await.is_err()
            || tls.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let _ = tls.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_quota_and_type_rejections_leave_no_files() {
    let mut api =
        Api::start(Setup::new().toml("[attachments]\nmax_bytes = 65536\nuser_quota_mb = 1\n"));
    let admin = api.admin().await;
    let data = api.roost.setup.data_dir();

    // Too large, declared: refused at the edge with the upload's code.
    let (s, body) = api.upload(&admin, "big.png", png(70_000)).await;
    assert_error(&(s, body), StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    // Too large, streamed without a length: refused while streaming.
    assert_eq!(chunked_upload(&api, &admin, 100_000).await, 413);
    // Not an accepted type (a Windows executable), and empty.
    let (s, body) = api
        .upload(&admin, "setup.exe", b"MZ\x90\0\x03\0\0\0\x04\0".repeat(100))
        .await;
    assert_error(
        &(s, body),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_type",
    );
    let (s, _) = api.upload(&admin, "empty.txt", Vec::new()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(stored_files(&data).is_empty(), "{:?}", stored_files(&data));

    // The quota (1 MiB): 60,000-byte files fit 17 times, the 18th does not.
    let mut accepted = 0;
    loop {
        let (s, body) = api.upload(&admin, "chunk.txt", vec![b'q'; 60_000]).await;
        if s == StatusCode::CREATED {
            accepted += 1;
            assert!(accepted <= 17);
            continue;
        }
        assert_error(&(s, body), StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded");
        break;
    }
    assert_eq!(accepted, 17);
    // One stored file (all uploads were the same bytes), and nothing left in tmp.
    let files = stored_files(&data);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(!files[0].starts_with(data.join("attachments/tmp")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_refuses_uploads_with_507_leaving_nothing_and_reads_go_on() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let picture = png(5000);
    let (s, kept) = api.upload(&alice, "cat.png", picture.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{kept}");
    let room = api.room(&alice, "pets", true).await;
    let (s, shown) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice,
            json!({ "body": "look", "attachment_ids": [kept["id"]] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shown}");

    // Restart with a low-water mark no disk meets (`storage.min_free_disk_mb`, here from the
    // environment): from its first measurement the daemon sees the disk as nearly full.
    api.roost.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(api.roost.wait_exit(Duration::from_secs(20)).success());
    let Api { roost, .. } = api;
    let setup = roost
        .into_setup()
        .env("ROOST_STORAGE_MIN_FREE_DISK_MB", "1000000000");
    let api = Api::start(setup);
    let data = api.roost.setup.data_dir();
    let files_before = stored_files(&data);

    // The upload (a real body, declared and streamed) is refused with the JSON error...
    let (s, body) = api.upload(&alice, "dog.png", png(300_000)).await;
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (
            StatusCode::INSUFFICIENT_STORAGE,
            json!("insufficient_storage")
        ),
        "{body}"
    );
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(chunked_upload(&api, &alice, 200_000).await, 507);
    // ...and leaves nothing: no temp file, no new blob, no row.
    assert_eq!(stored_files(&data), files_before);
    assert!(std::fs::read_dir(data.join("attachments/tmp"))
        .unwrap()
        .next()
        .is_none());
    let db = rusqlite::Connection::open(data.join("roost.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM attachments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    // Posting is a write too.
    let (s, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice,
            json!({ "body": "refused" }),
        )
        .await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{body}");

    // Reads keep working: the message, and the attachment's bytes.
    let (s, page) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &alice)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["messages"][0]["attachments"][0]["id"], kept["id"]);
    let r = api
        .http
        .get(
            api.roost
                .https_url(&format!("/api/v1/attachments/{}", kept["id"])),
        )
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().as_ref(), picture.as_slice());
}

/// Found while writing the `attachment_meta` fuzz target: a file of exactly 512 bytes (the
/// sniffed window) was judged as if it went on, so one ending in half a UTF-8 character was
/// accepted as text while the same 511-byte file was not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_cut_mid_character_is_refused_whatever_its_length() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    for len in [511, 512] {
        let mut bytes = vec![b'a'; len - 1];
        bytes.push(0xc3); // the first byte of "é", and the end of the file
        let (s, body) = api.upload(&admin, "cut.txt", bytes).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{len} bytes: {body}");
    }
    // The window (not the file) cutting a character is fine.
    let mut bytes = vec![b'a'; 511];
    bytes.extend_from_slice("é and more".as_bytes());
    let (s, body) = api.upload(&admin, "long.txt", bytes).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["content_type"], "text/plain");
}

/// An upload from a slow client holds no thread while it waits for bytes: with more uploads
/// stalled mid-body than Roost has blocking threads (64), database reads and other uploads
/// still answer, and once the clients give up their temp files are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_do_not_hold_the_threads_reads_need() {
    const STALLED: usize = 72;
    let mut api = Api::start(Setup::new().toml("[rate_limits.upload]\nenabled = false\n"));
    let admin = api.admin().await;
    let tmp = api.roost.setup.data_dir().join("attachments/tmp");

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut tls = tls_connect(&api.roost, None).await;
        let head = format!(
            "POST /api/v1/attachments?name=slow.png HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: 1000000\r\n\r\n",
            admin.token
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(&png(1000)).await.unwrap();
        tls.flush().await.unwrap();
        stalled.push(tls);
    }
    let temp_files = || std::fs::read_dir(&tmp).map_or(0, |d| d.count());
    eventually(
        Duration::from_secs(30),
        "a temp file for every stalled upload",
        || async { (temp_files() == STALLED).then_some(()) },
    )
    .await;

    let (s, rooms) =
        tokio::time::timeout(Duration::from_secs(20), api.get("/api/v1/rooms", &admin))
            .await
            .expect("a database read answers while uploads stall");
    assert_eq!(s, StatusCode::OK, "{rooms}");
    let (s, body) = tokio::time::timeout(
        Duration::from_secs(20),
        api.upload(&admin, "quick.png", png(200_000)),
    )
    .await
    .expect("an upload that streams answers while others stall");
    assert_eq!(s, StatusCode::CREATED, "{body}");

    drop(stalled);
    eventually(
        Duration::from_secs(30),
        "the stalled uploads' temp files to go",
        || async { (temp_files() == 0).then_some(()) },
    )
    .await;
}
