//! Writes the `roost(1)` man pages from the clap definition in `roost::cli`, so the pages say
//! exactly what `roost --help` says and cannot drift from it.
//!
//! ```sh
//! cargo run --example gen-man -- OUT_DIR [YYYY-MM-DD]
//! ```
//!
//! writes `OUT_DIR/roost.1` and one `OUT_DIR/roost-<subcommand>.1` per visible subcommand
//! (plain roff; scripts/build-deb.sh compresses them for the package). The date goes into the
//! page header; build-deb.sh passes the date of the newest debian/changelog entry so the same
//! source gives the same pages.
//!
//! An example rather than a `roost` subcommand or a build script on purpose: users never see
//! a man-page command in the binary, `clap_mangen` stays a dev-dependency (not in the Pi's
//! binary), and ordinary builds don't pay for it. It must not describe anything clap doesn't
//! know, except the fixed sections below (exit status, environment, files), which restate the
//! contract in docs/operate.md.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::Man;

/// Sections clap has no place for, appended to roost.1 (roff, hyphens escaped).
const ROOST_1_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
.B 0
success
.TP
.B 1
runtime failure (the message says what failed)
.TP
.B 64
bad usage or configuration; every problem is printed at once
.SH ENVIRONMENT
.TP
.BI ROOST_ SECTION _ KEY
overrides the configuration key
.I key
of
.RI [ section ],
e.g.
.BR ROOST_SERVER_HTTPS_ADDR="[::]:8443" .
.TP
.B CREDENTIALS_DIRECTORY
set by systemd for
.BR LoadCredential= ;
a secret key
.I x
of section
.I s
is read from the file
.IR s _ x
there when neither
.I x
nor
.IR x _file
is set.
.SH FILES
.TP
.I /etc/roost/roost.toml
the configuration; every key is listed, commented, at its default
.TP
.I /var/lib/roost/
database, attachments, TLS material (the local CA in
.IR tls/ca.crt ),
generated secrets and backups
.TP
.I /usr/lib/systemd/system/roost.service
the service; manage it with
.BR systemctl (1)
and read its log with
.BR "journalctl \-u roost" .
.SH "SEE ALSO"
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5)
"#;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(out_dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: gen-man OUT_DIR [YYYY-MM-DD]");
        std::process::exit(64);
    };
    let date = args
        .next()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = generate(&out_dir, &date) {
        eprintln!("gen-man: {}: {e}", out_dir.display());
        std::process::exit(1);
    }
}

/// One page with the common header: "roost <version>", the date, manual "Roost".
fn page(cmd: clap::Command, date: &str) -> Man {
    Man::new(cmd)
        .date(date)
        .source(format!("roost {}", roost::VERSION))
        .manual("Roost")
}

fn generate(out_dir: &Path, date: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    // build() gives subcommands their display names (roost-serve, ...) and the global options.
    let mut cmd = roost::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = page(sub.clone(), date);
        let path = out_dir.join(man.get_filename());
        let mut file = std::fs::File::create(&path)?;
        man.render(&mut file)?;
        writeln!(file, ".SH \"SEE ALSO\"\n.BR roost (1)")?;
        println!("{}", path.display());
    }
    let man = page(cmd, date);
    let path = out_dir.join(man.get_filename());
    let mut file = std::fs::File::create(&path)?;
    man.render(&mut file)?;
    file.write_all(ROOST_1_EXTRA.as_bytes())?;
    println!("{}", path.display());
    Ok(())
}
