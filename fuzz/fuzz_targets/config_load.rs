//! `config::load_with_env` on arbitrary text: the TOML file, then (after a NUL byte) environment
//! lines `NAME=value` that the loader sees as its environment. Loading must return a `Config` or
//! a list of problems; it must never panic, hang or read without bound.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use roost::config::{load_with_env, LoadOptions};

fn config_file() -> &'static std::path::Path {
    static PATH: OnceLock<std::path::PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("roost-fuzz-config-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let (toml, env) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let env = String::from_utf8_lossy(env);
    let vars: Vec<(&str, &str)> = env.lines().filter_map(|l| l.split_once('=')).collect();
    let getenv = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let path = config_file();
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(toml))
        .expect("the fuzzer's temp file is writable");
    let opts = LoadOptions {
        path: Some(path.to_path_buf()),
        dev: flags & 1 == 1,
    };
    match load_with_env(&opts, &getenv) {
        // A config that loaded is a config the daemon can use: these are `expect`ed on later.
        Ok(config) => {
            let _ = config.https_addr();
            let _ = config.http_addr();
            let _ = config.internal_addr();
            let _ = config.trusted_proxies();
            let _ = config.rate_limits.exempt_networks();
            let _ = roost::edge::policy::EdgePolicy::public(&config, 443, &[]);
        }
        Err(problems) => assert!(!problems.0.is_empty()),
    }
});
