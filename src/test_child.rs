//! For unit tests that must run alone in a process of their own (to change the umask, to read
//! the process's RSS without other tests allocating beside them): the test runs its own test
//! binary again, filtered to itself, with a variable set.

/// In the test process: runs `test` (its full path, `module::tests::name`) once per value of
/// `values` in a child process of this test binary with `var` set to it, asserts each passed,
/// and returns `None`. In such a child: returns `Some(value)`, for the test to go on with.
pub fn alone(test: &str, var: &str, values: &[&str]) -> Option<String> {
    if let Some(value) = std::env::var_os(var) {
        return Some(value.to_string_lossy().into_owned());
    }
    for value in values {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--test-threads=1", "--nocapture"])
            .env(var, value)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{var}={value}: {stdout}");
        // The filter matched: the child ran this test and not zero tests.
        assert!(stdout.contains("1 passed"), "{var}={value}: {stdout}");
    }
    None
}
