//! The web client's own tests under `cargo test`: its unit tests (vitest), its end-to-end tests
//! (`web/e2e/`, Debian's chromium driving the `roost` binary this cargo run built, with the
//! client `build.rs` embedded in it), and a check that the API types in
//! `web/src/api/schema.d.ts` are what this binary's OpenAPI document makes.
//!
//! They need node and npm (which building Roost needs anyway) and `/usr/bin/chromium` (or
//! `$CHROMIUM`); without them they fail and say what to install, they are never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::BIN;

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web")
}

/// Fails with what to install when `program --version` does not run.
fn require(program: &str, install: &str) {
    let works = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        works,
        "the web client's tests need `{program}`, which did not run: {install}"
    );
}

fn require_tools() {
    require(
        "node",
        "install Node.js 20 or later (Debian 13: `apt install nodejs npm`)",
    );
    require("npm", "install npm (Debian 13: `apt install npm`)");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "the web client's end-to-end tests drive Debian's chromium, and {chromium} is missing: \
         `apt install chromium` (or set CHROMIUM to a chromium binary)"
    );
    // build.rs installed the packages when it built the client for this binary.
    assert!(
        web_dir().join("node_modules").is_dir(),
        "web/node_modules is missing: run `cd web && npm ci`"
    );
}

/// Runs `program args` in `web/` against this build's roost and fails with its exit status;
/// its output goes straight to the test's output (shown when the test fails).
fn run_in_web(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .current_dir(web_dir())
        .env("ROOST_BIN", BIN)
        // The tests must meet the client embedded in this binary, not a web/dist of another build.
        .env_remove("ROOST_E2E_ROUTE_DIST")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        status.success(),
        "`{program} {}` in web/ failed ({status}); its output is above",
        args.join(" ")
    );
}

#[test]
fn the_web_clients_unit_and_end_to_end_tests_pass() {
    require_tools();
    run_in_web("npm", &["test", "--silent"]);
    run_in_web("node", &["--test", "--test-concurrency=1", "e2e/"]);
}

#[test]
fn the_web_clients_api_types_match_the_openapi_document() {
    require_tools();
    run_in_web("node", &["scripts/gen-api.mjs", "--check"]);
}
