//! Which filesystems and block devices count as "real", following node_exporter's defaults
//! (`collector/filesystem_linux.go`, `collector/diskstats_linux.go`).

/// Filesystem types that hold no user data (node_exporter's `fs-types-exclude`).
pub const VIRTUAL_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
    "ramfs",
    "efivarfs",
    "tmpfs",
];

/// Filesystem types whose `statvfs` is answered from local memory (block-device and
/// in-memory filesystems). Everything else (NFS, CIFS/SMB, Ceph, GlusterFS, Lustre, GPFS,
/// 9p, FUSE and any type not listed) may wait on a server or a daemon and hang, so it is
/// statted on a worker thread with a timeout.
pub const LOCAL_FS_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "bcachefs", "f2fs", "jfs", "reiserfs", "nilfs2", "zfs",
    "vfat", "msdos", "exfat", "ntfs", "ntfs3", "hfs", "hfsplus", "udf", "tmpfs", "ramfs",
];

/// Whether `fs_type` is in [`LOCAL_FS_TYPES`] (its `statvfs` cannot hang on a server).
pub fn is_local_fs(fs_type: &str) -> bool {
    LOCAL_FS_TYPES.contains(&fs_type)
}

/// Mount point prefixes that are never watched by default (node_exporter's
/// `mount-points-exclude`).
const EXCLUDED_PREFIXES: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials/",
    "/var/lib/docker/",
    "/var/lib/containers/storage/",
    "/var/lib/kubelet/pods/",
];

fn excluded_mountpoint(mp: &str) -> bool {
    EXCLUDED_PREFIXES.iter().any(|p| {
        if p.ends_with('/') {
            mp.starts_with(p)
        } else {
            mp == *p || mp.starts_with(&format!("{p}/"))
        }
    })
}

/// Picks mount points from `(mountpoint, fstype)` pairs: the configured ones when
/// `configured` is non-empty (in its order), else every real one; duplicates removed.
pub fn choose_mounts<'a>(
    mounts: impl Iterator<Item = (&'a str, &'a str)>,
    configured: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all: Vec<(&str, &str)> = mounts.collect();
    if !configured.is_empty() {
        for c in configured {
            if all.iter().any(|(mp, _)| mp == c) && !out.contains(c) {
                out.push(c.clone());
            }
        }
        return out;
    }
    for (mp, ty) in all {
        if VIRTUAL_FS_TYPES.contains(&ty) || excluded_mountpoint(mp) {
            continue;
        }
        if !out.iter().any(|o| o == mp) {
            out.push(mp.to_string());
        }
    }
    out
}

/// Whether a `/proc/diskstats` name is reported: node_exporter's default
/// `--collector.diskstats.device-exclude`, `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`
/// (`collector/diskstats_linux.go`): RAM disks, loop and floppy devices and the partitions
/// of `sd`/`hd`/`vd`/`xvd` and NVMe disks are left out; everything else (whole disks,
/// `mmcblk0p1`, `sr0`, `dm-0`, `md0`) is kept.
pub fn is_reported_disk(name: &str) -> bool {
    !excluded_disk(name)
}

fn excluded_disk(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == name.len() {
        return false; // the pattern ends in \d+
    }
    let is_letter = |s: &str| s.len() == 1 && s.bytes().all(|b| b.is_ascii_lowercase());
    if matches!(stem, "ram" | "zram" | "loop" | "fd") {
        return true;
    }
    if ["hd", "sd", "vd", "xvd"]
        .iter()
        .any(|p| stem.strip_prefix(p).is_some_and(is_letter))
    {
        return true;
    }
    // nvme\d+n\d+p
    stem.strip_prefix("nvme")
        .and_then(|r| r.strip_suffix('p'))
        .and_then(|r| r.split_once('n'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_mounts_only() {
        let m = vec![
            ("/", "ext4"),
            ("/proc", "proc"),
            ("/dev/shm", "tmpfs"),
            ("/boot", "vfat"),
            ("/var/lib/docker/overlay2/x/merged", "xfs"),
            ("/", "ext4"),
            ("/data", "xfs"),
        ];
        assert_eq!(
            choose_mounts(m.clone().into_iter(), &[]),
            ["/", "/boot", "/data"]
        );
        assert_eq!(
            choose_mounts(m.into_iter(), &["/data".into(), "/nope".into()]),
            ["/data"]
        );
    }

    #[test]
    fn only_known_local_types_are_statted_inline() {
        for t in ["ext4", "xfs", "btrfs", "vfat", "zfs", "tmpfs"] {
            assert!(is_local_fs(t), "{t}");
        }
        for t in [
            "nfs",
            "nfs4",
            "cifs",
            "smb3",
            "ceph",
            "glusterfs",
            "fuse.sshfs",
            "fuseblk",
            "lustre",
            "9p",
            "unknownfs",
        ] {
            assert!(!is_local_fs(t), "{t}");
        }
    }

    #[test]
    fn disks_follow_node_exporters_default_exclude() {
        for d in [
            "sda",
            "vdb",
            "nvme0n1",
            "mmcblk0",
            "mmcblk0p1",
            "mmcblk0p2",
            "sr0",
            "dm-0",
            "md0",
            "xvda",
            "sdaa1",
            "nvme0n1p",
        ] {
            assert!(is_reported_disk(d), "{d}");
        }
        for d in [
            "sda1",
            "vdb12",
            "xvda1",
            "hdc3",
            "nvme0n1p1",
            "nvme10n2p3",
            "loop0",
            "ram1",
            "zram0",
            "fd0",
        ] {
            assert!(!is_reported_disk(d), "{d}");
        }
    }
}
