//! Rate limits and security alerts as a client and an operator meet them, on the real binary:
//! 429s with their headers, recovery, metrics, SIGHUP reload and the alert webhook.
//!
//! Families are configured tiny and fast (10 tokens per second) so recovery takes ~100 ms;
//! nothing sleeps: every wait polls a condition against a deadline.

use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

const TINY_READ: &str = "[rate_limits.read]\nburst = 2\nper_minute = 600\nper_ip_multiplier = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_family_refuses_with_429_and_headers_then_recovers() {
    let roost = Setup::new()
        .toml(TINY_READ)
        // The environment reaches nested families too.
        .env("ROOST_RATE_LIMITS_WRITE_BURST", "1")
        .env("ROOST_RATE_LIMITS_WRITE_PER_IP_MULTIPLIER", "1")
        .start();
    let client = roost.client();
    let url = roost.https_url("/api/v1/no-such-endpoint");

    for remaining in ["1", "0"] {
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(resp.headers(), "ratelimit-limit"), "2");
        assert_eq!(header(resp.headers(), "ratelimit-remaining"), remaining);
    }
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(resp.headers(), "retry-after").parse().unwrap();
    assert_eq!(retry_after, 1, "a token is back within 100 ms, rounded up");
    assert_eq!(header(resp.headers(), "ratelimit-limit"), "2");
    assert_eq!(header(resp.headers(), "ratelimit-remaining"), "0");
    assert_eq!(header(resp.headers(), "ratelimit-reset"), "1");
    assert_eq!(header(resp.headers(), "cache-control"), "no-store");
    assert!(resp.headers().contains_key("strict-transport-security"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    // Health checks and the CA are never limited.
    for path in ["/health", "/ca.crt"] {
        for _ in 0..5 {
            let resp = client.get(roost.https_url(path)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            assert!(!resp.headers().contains_key("ratelimit-limit"), "{path}");
        }
    }

    // Recovery after the refill interval: poll (each refusal costs nothing).
    eventually(
        Duration::from_secs(10),
        "the read bucket to refill",
        || async {
            let resp = client.get(&url).send().await.unwrap();
            (resp.status() == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;

    // Writes: one at a time (from the environment).
    let post = || {
        client
            .post(roost.https_url("/api/v1/no-such-endpoint"))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), StatusCode::NOT_FOUND);
    let resp = post().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(resp.headers(), "ratelimit-limit"), "1");

    let metrics = roost.metrics().await;
    for line in [
        "roost_rate_limit_hits_total{surface=\"read\",reason=\"ip\"} ",
        "roost_rate_limit_hits_total{surface=\"write\",reason=\"ip\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_changed_rate_limits_and_keeps_them_on_a_bad_file() {
    let mut roost = Setup::new()
        .toml("[rate_limits.read]\nburst = 1\nper_minute = 1\nper_ip_multiplier = 1\n")
        .start();
    let client = roost.client();
    let url = roost.https_url("/api/v1/no-such-endpoint");
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(resp.headers(), "retry-after").parse().unwrap();
    assert!(
        (55..=60).contains(&retry_after),
        "one per minute: {retry_after}"
    );

    // A broken file: logged, and the old limits stay.
    roost.setup.extra_toml = "[rate_limits.read]\nburst = 0\n".into();
    roost.setup.write_config("");
    roost.signal(nix::sys::signal::Signal::SIGHUP);
    let problem = roost.wait_for_log(
        |v| v["message"] == "configuration reload: problem",
        Duration::from_secs(10),
    );
    assert!(
        problem["problem"]
            .as_str()
            .unwrap()
            .contains("rate_limits.read.burst"),
        "{problem}"
    );
    roost.wait_for_log(
        |v| v["message"] == "configuration reload failed; keeping the previous rate limits",
        Duration::from_secs(10),
    );
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    // A good file with a bigger limit applies at once.
    roost.setup.extra_toml =
        "[rate_limits.read]\nburst = 5\nper_minute = 600\nper_ip_multiplier = 1\n".into();
    roost.setup.write_config("");
    roost.signal(nix::sys::signal::Signal::SIGHUP);
    let reloaded = roost.wait_for_log(
        |v| v["message"] == "rate limits reloaded",
        Duration::from_secs(10),
    );
    assert_eq!(reloaded["changed"], "read", "{reloaded}");
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(resp.headers(), "ratelimit-limit"), "5");
    assert_eq!(header(resp.headers(), "ratelimit-remaining"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_refusals_send_one_security_alert_to_the_webhook() {
    let receiver = Receiver::start().await;

    let roost = Setup::new()
        .toml("[rate_limits.read]\nburst = 1\nper_minute = 1\nper_ip_multiplier = 1\n")
        .toml(&format!(
            "[alerts]\nwebhook_url = \"{}\"\nrate_limit_hits_threshold = 3\nwindow_secs = 60\nmin_interval_secs = 3600\n",
            receiver.url("/hook")
        ))
        .start();
    let client = roost.client();
    for _ in 0..4 {
        client
            .get(roost.https_url("/api/v1/no-such-endpoint"))
            .send()
            .await
            .unwrap();
    }
    let alert = receiver.wait_for(1).await[0].json();
    assert_eq!(alert["event"], "roost.security_alert", "{alert}");
    assert_eq!(alert["kind"], "rate_limit_hits", "{alert}");
    assert_eq!(alert["count"], 3, "{alert}");
    assert_eq!(alert["window_secs"], 60, "{alert}");
    assert_eq!(alert["host"], "localhost", "{alert}");
    assert!(
        alert["at"].as_str().is_some_and(|s| s.len() >= 20),
        "{alert}"
    );
    assert!(
        !roost.raw_logs().contains(&receiver.url("")),
        "the webhook URL is never logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_account_is_limited_on_its_own_bucket() {
    // Per account: 2 reads at once, slow refill; per IP: 4x that, so the account runs out first.
    let setup =
        Setup::new().toml("[rate_limits.read]\nburst = 2\nper_minute = 1\nper_ip_multiplier = 4\n");
    setup.write_config("");
    let added = run_with_stdin(&setup, &["user", "add", "ada"], b"correct-horse-battery\n");
    assert_exit_0(&added);
    let roost = setup.start();
    let client = roost.client();
    let token = roost.login("ada", "correct-horse-battery").await;
    let me = || {
        client
            .get(roost.https_url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(me().await.unwrap().status(), StatusCode::OK);
    }
    let refused = me().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same IP without the account still has its own (larger) allowance.
    let anonymous = client
        .get(roost.https_url("/api/v1/no-such-endpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
    let metrics = roost.metrics().await;
    assert!(
        metrics.contains("roost_rate_limit_hits_total{surface=\"read\",reason=\"account\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_raise_an_auth_failure_alert() {
    let receiver = Receiver::start().await;
    let roost = Setup::new()
        .toml(&format!(
            "[alerts]\nwebhook_url = \"{}\"\nauth_failures_threshold = 3\nwindow_secs = 60\nmin_interval_secs = 3600\n",
            receiver.url("/hook")
        ))
        .start();
    let client = roost.client();
    for _ in 0..3 {
        let resp = client
            .get(roost.https_url("/api/v1/me"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let alert = receiver.wait_for(1).await[0].json();
    assert_eq!(alert["kind"], "auth_failures", "{alert}");
    assert_eq!(alert["count"], 3, "{alert}");
}
