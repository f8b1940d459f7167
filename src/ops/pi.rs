//! Machine health as a Raspberry Pi owner cares about it: CPU temperature, the firmware's
//! throttling and under-voltage flags, memory, load and free disk.
//!
//! Read from sysfs/procfs (through `sysinfo` for memory and load) and nothing else: no
//! firmware tools (`vcgencmd`), no network. Every reading is optional, because most of these
//! files exist only on a Pi (or only on some kernels); a missing file is "not available", never
//! an error. The paths are rooted at [`SysRoot`] so tests can hand in a fake `/sys`.
//! Readings are blocking file reads: callers run [`measure`] off the async threads.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where `/sys` lives (`/` in production, a temp dir in tests).
#[derive(Debug, Clone)]
pub struct SysRoot(pub PathBuf);

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot(PathBuf::from("/"))
    }
}

impl SysRoot {
    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }
}

/// The thermal zone preferred when several exist: the Pi's SoC sensor.
const PREFERRED_ZONE: &str = "cpu-thermal";
/// Thermal zones looked at, at most (a Pi has one, a PC a handful).
const MAX_ZONES: usize = 32;
/// The Raspberry Pi firmware driver's throttling word (a hex number).
const GET_THROTTLED: &str = "sys/devices/platform/soc/soc:firmware/get_throttled";

/// One set of readings. `None` means the machine does not expose that value.
/// A reading the machine does not give is left out of the JSON (not 0, not null).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PiHealth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_temperature_celsius: Option<f64>,
    /// The thermal zone the temperature came from (e.g. `cpu-thermal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thermal_zone: Option<String>,
    /// Only on a Raspberry Pi whose firmware exposes `get_throttled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<Throttled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_available_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load15: Option<f64>,
}

/// The firmware's `get_throttled` bits, decoded. "now" bits describe this moment; "occurred"
/// bits stay set since boot, so a past under-voltage is still visible.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Throttled {
    pub raw: u32,
    pub under_voltage_now: bool,
    pub freq_capped_now: bool,
    pub throttled_now: bool,
    pub soft_temp_limit_now: bool,
    pub under_voltage_occurred: bool,
    pub freq_capped_occurred: bool,
    pub throttled_occurred: bool,
    pub soft_temp_limit_occurred: bool,
}

impl Throttled {
    pub fn decode(raw: u32) -> Throttled {
        let bit = |n: u32| raw & (1 << n) != 0;
        Throttled {
            raw,
            under_voltage_now: bit(0),
            freq_capped_now: bit(1),
            throttled_now: bit(2),
            soft_temp_limit_now: bit(3),
            under_voltage_occurred: bit(16),
            freq_capped_occurred: bit(17),
            throttled_occurred: bit(18),
            soft_temp_limit_occurred: bit(19),
        }
    }

    /// `(label, set)` for every flag, in a fixed order: the `flag` label of `roost_throttled`.
    pub fn flags(&self) -> [(&'static str, bool); 8] {
        [
            ("under_voltage_now", self.under_voltage_now),
            ("freq_capped_now", self.freq_capped_now),
            ("throttled_now", self.throttled_now),
            ("soft_temp_limit_now", self.soft_temp_limit_now),
            ("under_voltage_occurred", self.under_voltage_occurred),
            ("freq_capped_occurred", self.freq_capped_occurred),
            ("throttled_occurred", self.throttled_occurred),
            ("soft_temp_limit_occurred", self.soft_temp_limit_occurred),
        ]
    }

    /// The flags that are set, for humans (`status`).
    pub fn describe(&self) -> String {
        let set: Vec<&str> = self
            .flags()
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        if set.is_empty() {
            "none".into()
        } else {
            set.join(", ").replace('_', " ")
        }
    }
}

/// Takes one set of readings (blocking: file reads and `sysinfo`).
pub fn measure(root: &SysRoot) -> PiHealth {
    let (temp, zone) = match cpu_temperature(root) {
        Some((t, z)) => (Some(t), Some(z)),
        None => (None, None),
    };
    let (available, total) = memory();
    let load = sysinfo::System::load_average();
    // sysinfo reports zeros where the platform has no load average; Linux always has one.
    let has_load = Path::new("/proc/loadavg").exists();
    PiHealth {
        cpu_temperature_celsius: temp,
        thermal_zone: zone,
        throttled: throttled(root),
        memory_available_bytes: available,
        memory_total_bytes: total,
        load1: has_load.then_some(load.one),
        load5: has_load.then_some(load.five),
        load15: has_load.then_some(load.fifteen),
    }
}

/// Degrees Celsius from `/sys/class/thermal/thermal_zone*/temp` (millidegrees), preferring the
/// zone whose `type` is `cpu-thermal`, else the first zone with a reading.
pub fn cpu_temperature(root: &SysRoot) -> Option<(f64, String)> {
    let dir = std::fs::read_dir(root.join("sys/class/thermal")).ok()?;
    let mut zones: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("thermal_zone"))
        })
        .take(MAX_ZONES)
        .collect();
    // thermal_zone0 before thermal_zone1, so "the first zone" is stable.
    zones.sort();
    let mut first = None;
    for zone in zones {
        let kind = std::fs::read_to_string(zone.join("type"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let Some(milli) = std::fs::read_to_string(zone.join("temp"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        else {
            continue;
        };
        let celsius = milli as f64 / 1000.0;
        if kind == PREFERRED_ZONE {
            return Some((celsius, kind));
        }
        first.get_or_insert((celsius, kind));
    }
    first
}

/// The firmware's throttling word, if this is a Pi whose kernel exposes it.
pub fn throttled(root: &SysRoot) -> Option<Throttled> {
    let text = std::fs::read_to_string(root.join(GET_THROTTLED)).ok()?;
    let hex = text.trim().trim_start_matches("0x");
    u32::from_str_radix(hex, 16).ok().map(Throttled::decode)
}

/// `(available, total)` memory in bytes.
fn memory() -> (Option<u64>, Option<u64>) {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let total = sys.total_memory();
    if total == 0 {
        return (None, None);
    }
    (Some(sys.available_memory()), Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, n: u32, kind: &str, milli: &str) {
        let dir = root.join(format!("sys/class/thermal/thermal_zone{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
        std::fs::write(dir.join("temp"), format!("{milli}\n")).unwrap();
    }

    #[test]
    fn prefers_the_cpu_thermal_zone() {
        let dir = tempfile::tempdir().unwrap();
        zone(dir.path(), 0, "acpitz", "30000");
        zone(dir.path(), 1, "cpu-thermal", "48312");
        let root = SysRoot(dir.path().to_owned());
        assert_eq!(cpu_temperature(&root), Some((48.312, "cpu-thermal".into())));
    }

    #[test]
    fn falls_back_to_the_first_zone_and_to_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot(dir.path().to_owned());
        assert_eq!(cpu_temperature(&root), None);
        zone(dir.path(), 1, "x86_pkg_temp", "61000");
        zone(dir.path(), 0, "acpitz", "not a number");
        assert_eq!(cpu_temperature(&root), Some((61.0, "x86_pkg_temp".into())));
    }

    #[test]
    fn decodes_the_firmware_throttling_word() {
        let dir = tempfile::tempdir().unwrap();
        let root = SysRoot(dir.path().to_owned());
        assert_eq!(throttled(&root), None, "not a Pi");

        let file = dir.path().join(GET_THROTTLED);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "50005\n").unwrap();
        let t = throttled(&root).unwrap();
        assert!(t.under_voltage_now && t.throttled_now);
        assert!(t.under_voltage_occurred && t.throttled_occurred);
        assert!(!t.freq_capped_now && !t.soft_temp_limit_occurred);
        assert_eq!(
            t.describe(),
            "under voltage now, throttled now, under voltage occurred, throttled occurred"
        );
        assert_eq!(Throttled::decode(0).describe(), "none");
    }

    #[test]
    fn measures_memory_and_load_on_this_machine() {
        let h = measure(&SysRoot::default());
        let (avail, total) = (
            h.memory_available_bytes.unwrap(),
            h.memory_total_bytes.unwrap(),
        );
        assert!(avail > 0 && avail <= total);
        assert!(h.load1.unwrap() >= 0.0);
    }
}
