//! DCQCN/ECN configuration of a RoCE netdev from `<sysfs_root>/class/net/<netdev>/ecn/`.
//!
//! That tree is created by the `mlx5_core` of MLNX_OFED (and vendor kernels carrying its
//! `en_sysfs.c`): `ecn/roce_rp/enable/<0..7>` and `ecn/roce_np/enable/<0..7>` (one file per
//! priority, `"%d\n"`), parameter files directly in `ecn/roce_rp/` and `ecn/roce_np/`, and
//! `settings/pfc_stall_prevention` (`default` or `auto`). An `enable` file reads empty when
//! the firmware query fails (`mlx5e_show_ecn_enable`); parameter files then fail with an
//! errno. The upstream driver keeps the parameters in debugfs (root only, no per-priority
//! switches) and creates no `ecn/`: a missing `ecn/` means "unknown", not "disabled".

use std::{fs, io, path::Path};

use fabricwatch_proto::report::DcqcnReport;

/// The two DCQCN roles, as directory names.
const ROLES: [&str; 2] = ["roce_rp", "roce_np"];
/// 802.1p priorities.
const PRIORITIES: std::ops::RangeInclusive<u8> = 0..=7;
/// Largest parameter directory read (the driver creates 16 and 3 files).
const MAX_PARAMETERS: usize = 64;

/// A file under `ecn/` that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcqcnFileError {
    /// Path of the file.
    pub path: String,
    /// Why (the OS error or the offending content).
    pub message: String,
}

/// Reads the configuration of `netdev`; `None` when there is no `ecn/` directory.
pub fn read(
    sysfs_root: &Path,
    netdev: &str,
    errors: &mut Vec<DcqcnFileError>,
) -> Option<DcqcnReport> {
    if netdev.contains('/') || netdev == ".." || netdev == "." {
        return None;
    }
    let dev = sysfs_root.join("class/net").join(netdev);
    let ecn = dev.join("ecn");
    if !ecn.is_dir() {
        return None;
    }
    let mut out = DcqcnReport::default();
    for prio in PRIORITIES {
        let mut unknown = false;
        for role in ROLES {
            let path = ecn.join(role).join("enable").join(prio.to_string());
            match read_int(&path) {
                Ok(Some(v)) => {
                    if v != 0 {
                        if role == "roce_rp" {
                            out.rp_enabled_priorities.push(prio);
                        } else {
                            out.np_enabled_priorities.push(prio);
                        }
                    }
                }
                // Empty: the firmware query failed; neither enabled nor disabled.
                Ok(None) => unknown = true,
                Err(message) => {
                    unknown = true;
                    errors.push(DcqcnFileError {
                        path: path.display().to_string(),
                        message,
                    });
                }
            }
        }
        if unknown {
            out.unknown_priorities.push(prio);
        }
    }
    for role in ROLES {
        let dir = ecn.join(role);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| !t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names.truncate(MAX_PARAMETERS);
        for name in names {
            let path = dir.join(&name);
            match read_int(&path) {
                Ok(Some(v)) => {
                    out.parameters.insert(format!("{role}/{name}"), v);
                }
                Ok(None) => {}
                Err(message) => errors.push(DcqcnFileError {
                    path: path.display().to_string(),
                    message,
                }),
            }
        }
    }
    let stall = dev.join("settings/pfc_stall_prevention");
    match fs::read_to_string(&stall) {
        Ok(s) if matches!(s.trim(), "default" | "auto") => {
            out.pfc_stall_prevention = Some(s.trim().to_string())
        }
        Ok(s) => errors.push(DcqcnFileError {
            path: stall.display().to_string(),
            message: format!("unexpected content {:?}", truncate(&s)),
        }),
        // EOPNOTSUPP without the pfcc_mask capability; absent on other drivers.
        Err(_) => {}
    }
    Some(out)
}

/// `Ok(None)` for an empty file, `Err` for unreadable or non-integer content.
fn read_int(path: &Path) -> Result<Option<i64>, String> {
    let mut f = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = io::Read::read(&mut f, &mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf[..n]);
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>()
        .map(Some)
        .map_err(|_| format!("unexpected content {:?}", truncate(t)))
}

fn truncate(s: &str) -> String {
    s.trim().chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netdev_without_ecn_is_unknown_not_disabled() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("class/net/eth0")).expect("mkdir");
        let mut errors = Vec::new();
        assert_eq!(read(dir.path(), "eth0", &mut errors), None);
        assert_eq!(read(dir.path(), "../../etc", &mut errors), None);
        assert!(errors.is_empty());
    }

    #[test]
    fn empty_and_bad_enable_files_make_the_priority_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ecn = dir.path().join("class/net/e/ecn");
        for role in ROLES {
            fs::create_dir_all(ecn.join(role).join("enable")).expect("mkdir");
            for p in PRIORITIES {
                fs::write(ecn.join(role).join("enable").join(p.to_string()), "0\n").expect("write");
            }
        }
        fs::write(ecn.join("roce_rp/enable/3"), "1\n").expect("write");
        fs::write(ecn.join("roce_np/enable/3"), "1\n").expect("write");
        fs::write(ecn.join("roce_np/enable/5"), "").expect("write");
        fs::write(ecn.join("roce_rp/enable/6"), "yes\n").expect("write");
        fs::write(ecn.join("roce_rp/rpg_gd"), "11\n").expect("write");
        fs::write(ecn.join("roce_rp/rpg_ai_rate"), "\u{0}\u{1}x").expect("write");
        let mut errors = Vec::new();
        let r = read(dir.path(), "e", &mut errors).expect("ecn present");
        assert_eq!(r.rp_enabled_priorities, [3]);
        assert_eq!(r.np_enabled_priorities, [3]);
        assert_eq!(r.unknown_priorities, [5, 6]);
        assert_eq!(r.parameters.get("roce_rp/rpg_gd"), Some(&11));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(r.pfc_stall_prevention, None);
    }
}
