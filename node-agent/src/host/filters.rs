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

/// Whether a `/proc/diskstats` name is a whole disk worth reporting: not a loop, ram, zram
/// or floppy device and not a partition (`sda1`, `vdb2`, `nvme0n1p1`, `mmcblk0p1`).
pub fn is_whole_disk(name: &str) -> bool {
    const SKIP: &[&str] = &["loop", "ram", "zram", "fd", "sr"];
    if SKIP.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    let ends_digit = name.chars().last().is_some_and(|c| c.is_ascii_digit());
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let classic = ["sd", "hd", "vd", "xvd"]
        .iter()
        .any(|p| stem.starts_with(p) && stem[p.len()..].chars().all(|c| c.is_ascii_lowercase()));
    if classic && ends_digit {
        return false;
    }
    if (name.starts_with("nvme") || name.starts_with("mmcblk")) && stem.ends_with('p') {
        return false;
    }
    true
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
    fn whole_disks_only() {
        for d in ["sda", "vdb", "nvme0n1", "mmcblk0", "dm-0", "md0", "xvda"] {
            assert!(is_whole_disk(d), "{d}");
        }
        for d in [
            "sda1",
            "vdb12",
            "nvme0n1p1",
            "mmcblk0p2",
            "loop0",
            "ram1",
            "zram0",
            "sr0",
        ] {
            assert!(!is_whole_disk(d), "{d}");
        }
    }
}
