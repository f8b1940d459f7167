//! `[backup]`: where `roost backup` writes and how many complete backups it keeps.
//!
//! Only the value and its validation live here; the backup itself is `ops::backup`. Nothing
//! here touches the file system.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

/// The most backups `keep` may ask for; a bigger number is almost certainly a typo.
const MAX_KEEP: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backup {
    /// Where `roost backup` creates `roost-<UTC time>/`. Empty: `<data_dir>/backups`.
    pub dir: String,
    /// Complete backups kept in `dir` after a successful backup; older ones are deleted.
    /// 0 keeps every backup. Pre-migration snapshots are never counted or deleted.
    pub keep: usize,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            dir: String::new(),
            keep: 7,
        }
    }
}

impl Config {
    /// Where `roost backup` writes by default (`[backup] dir`, else `<data_dir>/backups`).
    /// Pre-migration snapshots always go to [`Config::backups_dir`], whatever this says.
    pub fn backup_dir(&self) -> PathBuf {
        if self.backup.dir.is_empty() {
            self.backups_dir()
        } else {
            PathBuf::from(&self.backup.dir)
        }
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    if !c.backup.dir.is_empty() && !PathBuf::from(&c.backup.dir).is_absolute() {
        problems.push(Problem::key(
            "backup.dir",
            &format!("{:?} is relative", c.backup.dir),
            "use an absolute path such as /var/lib/roost/backups, or \"\" for that default",
        ));
    }
    if c.backup.keep > MAX_KEEP {
        problems.push(Problem::key(
            "backup.keep",
            &format!("must be at most {MAX_KEEP}"),
            "the default is 7; 0 keeps every backup",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dir_means_the_data_dirs_backups_folder() {
        let mut c = Config::default();
        assert_eq!(c.backup_dir(), PathBuf::from("/var/lib/roost/backups"));
        c.backup.dir = "/mnt/usb/roost".into();
        assert_eq!(c.backup_dir(), PathBuf::from("/mnt/usb/roost"));
    }

    #[test]
    fn relative_dir_and_huge_keep_are_problems() {
        let mut c = Config::default();
        c.backup.dir = "backups".into();
        c.backup.keep = MAX_KEEP + 1;
        let mut problems = Vec::new();
        check(&c, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(keys, ["backup.dir", "backup.keep"]);
    }
}
