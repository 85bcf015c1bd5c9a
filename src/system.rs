//! What the operating system says: the memory this process may still use. Just above the
//! lowest floor of the crate (see docs/design.md), so errors and data readers can use
//! it without the memory estimator above them.
//!
//! [`available`] reads the memory this process may still use: `MemAvailable` from
//! `/proc/meminfo`, lowered by a cgroup v2 `memory.max` (or v1 `memory.limit_in_bytes`) minus
//! current usage, and by `RLIMIT_AS` (from `/proc/self/limits`) minus the current virtual size.
//! `SEQGRAD_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix) replaces it, for tests and for
//! people who want to keep memory for other work.

use std::path::Path;

use crate::error::{Error, Result};

/// Memory this process may still use, and where that figure comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    pub bytes: u64,
    /// `MemAvailable`, `cgroup memory.max`, `RLIMIT_AS`, or `SEQGRAD_MEMORY_LIMIT`.
    pub source: String,
}

/// The environment variable that replaces the measured available memory.
pub const LIMIT_ENV: &str = "SEQGRAD_MEMORY_LIMIT";

/// Parses `123`, `512K`, `1.5G`, `2GiB`, `64MB` (powers of 1024) into bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = v * mult as f64;
    (bytes.is_finite() && bytes >= 0.0).then(|| to_u64(bytes))
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A `Key:   123 kB` field of a `/proc` status-like file, in bytes.
fn proc_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
}

/// The cgroup limit minus current usage (v2, then v1), if this process is in a limited cgroup.
fn cgroup_room() -> Option<u64> {
    let cg = read("/proc/self/cgroup")?;
    // v2: "0::/path"
    if let Some(rel) = cg.lines().find_map(|l| l.strip_prefix("0::")) {
        let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
        if let Some(max) = read(dir.join("memory.max")).and_then(|m| m.trim().parse::<u64>().ok()) {
            let used = read(dir.join("memory.current"))
                .and_then(|m| m.trim().parse::<u64>().ok())
                .unwrap_or(0);
            return Some(max.saturating_sub(used));
        }
    }
    // v1: "N:memory:/path"
    let rel = cg.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',').any(|c| c == "memory").then_some(path)
    })?;
    for base in ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory,cpu"] {
        let dir = Path::new(base).join(rel.trim_start_matches('/'));
        let Some(max) =
            read(dir.join("memory.limit_in_bytes")).and_then(|m| m.trim().parse::<u64>().ok())
        else {
            continue;
        };
        // v1 reports "no limit" as a huge page-rounded number.
        if max >= 1 << 60 {
            return None;
        }
        let used = read(dir.join("memory.usage_in_bytes"))
            .and_then(|m| m.trim().parse::<u64>().ok())
            .unwrap_or(0);
        return Some(max.saturating_sub(used));
    }
    None
}

/// `RLIMIT_AS` (soft) minus the current virtual size, when an address-space limit is set.
fn rlimit_room() -> Option<u64> {
    let limits = read("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    let soft = line
        .trim_start_matches("Max address space")
        .split_whitespace()
        .next()?;
    let limit: u64 = soft.parse().ok()?; // "unlimited" → None
    let vm = read("/proc/self/status")
        .and_then(|s| proc_kb(&s, "VmSize"))
        .unwrap_or(0);
    Some(limit.saturating_sub(vm))
}

/// The memory this process may still use (see the module docs), or `None` when nothing can be
/// read (not Linux): then no run is refused.
pub fn available() -> Result<Option<Available>> {
    if let Ok(v) = std::env::var(LIMIT_ENV) {
        let bytes = parse_bytes(&v).ok_or_else(|| {
            Error::Usage(format!(
                "{LIMIT_ENV}={v:?} is not a size (give bytes, or a number with K, M, G or T)"
            ))
        })?;
        return Ok(Some(Available {
            bytes,
            source: LIMIT_ENV.into(),
        }));
    }
    let mut best: Option<Available> = read("/proc/meminfo")
        .and_then(|m| proc_kb(&m, "MemAvailable"))
        .map(|bytes| Available {
            bytes,
            source: "MemAvailable in /proc/meminfo".into(),
        });
    for (room, source) in [
        (cgroup_room(), "the cgroup memory limit"),
        (rlimit_room(), "the address-space limit (ulimit -v)"),
    ] {
        if let Some(bytes) = room {
            if best.as_ref().is_none_or(|b| bytes < b.bytes) {
                best = Some(Available {
                    bytes,
                    source: source.into(),
                });
            }
        }
    }
    Ok(best)
}

/// Bytes as a whole number, rounded up and saturating.
pub(crate) fn to_u64(x: f64) -> u64 {
    if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x.max(0.0).ceil() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::fmt_bytes;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("2K"), Some(2048));
        assert_eq!(parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(parse_bytes("64 MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("5X"), None);
    }

    #[test]
    fn formats_bytes() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(3 << 29), "1.5 GiB");
        assert_eq!(fmt_bytes(340 << 20), "340 MiB");
    }

    #[test]
    fn proc_fields() {
        let t = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(proc_kb(t, "MemAvailable"), Some(1_024_000));
        assert_eq!(proc_kb(t, "VmHWM"), None);
    }
}
