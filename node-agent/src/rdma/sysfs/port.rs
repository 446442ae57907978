//! One device's attributes and one port's state, rate, identity (LID, SM, GIDs), RoCE
//! netdev and counters.

use std::{collections::BTreeMap, io, path::Path};

use super::{
    counters::read_counter_dir, io_error, parse, truncate, DeviceInfo, FileError, FileErrorKind,
    ListKind, PortIdentity, PortSample, SysfsReader, MAX_GIDS,
};

fn read_text(
    reader: &mut SysfsReader,
    path: &Path,
    errors: &mut Vec<FileError>,
    optional: bool,
) -> Option<String> {
    match reader.read_with(path, |s| s.trim().to_string()) {
        Ok(s) => Some(s),
        Err(e) if optional && e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            errors.push(io_error(path, &e));
            None
        }
    }
}

pub(super) fn read_info(
    reader: &mut SysfsReader,
    dev: &Path,
    errors: &mut Vec<FileError>,
) -> DeviceInfo {
    let mut get =
        |name: &str| read_text(reader, &dev.join(name), errors, true).filter(|s| !s.is_empty());
    DeviceInfo {
        fw_ver: get("fw_ver"),
        board_id: get("board_id"),
        node_guid: get("node_guid"),
        hca_type: get("hca_type"),
        node_type: get("node_type"),
    }
}

pub(super) fn read_port(
    reader: &mut SysfsReader,
    device: &str,
    port: u32,
    dir: &Path,
    info: &DeviceInfo,
    hw_counters: bool,
) -> PortSample {
    let mut errors = Vec::new();
    let link_layer =
        read_text(reader, &dir.join("link_layer"), &mut errors, true).unwrap_or_default();
    let mut numbered = |name: &str, errors: &mut Vec<FileError>| {
        let path = dir.join(name);
        let text = read_text(reader, &path, errors, false)?;
        let parsed = parse::parse_numbered_state(&text);
        if parsed.is_none() {
            errors.push(FileError {
                path,
                kind: FileErrorKind::Malformed,
                message: format!("unexpected content {:?}", truncate(&text)),
            });
        }
        parsed
    };
    let state = numbered("state", &mut errors);
    let phys_state = numbered("phys_state", &mut errors);
    let mut identity = PortIdentity::default();
    let rate_gbps = {
        let path = dir.join("rate");
        read_text(reader, &path, &mut errors, true).and_then(|t| {
            if let Some((w, sp)) = parse::parse_rate_parts(&t) {
                identity.link_width = Some(w);
                identity.link_speed = sp;
            }
            let r = parse::parse_rate_gbps(&t);
            if r.is_none() {
                errors.push(FileError {
                    path,
                    kind: FileErrorKind::Malformed,
                    message: format!("unexpected content {:?}", truncate(&t)),
                });
            }
            r
        })
    };
    let netdev = read_netdev(reader, &dir.join("gid_attrs/ndevs"));
    {
        let mut num = |name: &str, parse: fn(&str) -> Option<u32>| {
            let path = dir.join(name);
            let text = read_text(reader, &path, &mut errors, true)?;
            let v = parse(&text);
            if v.is_none() {
                errors.push(FileError {
                    path,
                    kind: FileErrorKind::Malformed,
                    message: format!("unexpected content {:?}", truncate(&text)),
                });
            }
            v
        };
        identity.lid = num("lid", parse::parse_hex_u32);
        identity.sm_lid = num("sm_lid", parse::parse_hex_u32);
        identity.sm_sl = num("sm_sl", parse::parse_dec_u8).and_then(|v| u8::try_from(v).ok());
        identity.lmc =
            num("lid_mask_count", parse::parse_dec_u8).and_then(|v| u8::try_from(v).ok());
    }
    identity.gids = read_gids(reader, dir);
    let mut counters = read_counter_dir(reader, &dir.join("counters"), &mut errors);
    // mlx4's 64-bit `counters_ext/` count the same events as `counters/`, which saturate or
    // wrap at 32 bits: the larger value is the 64-bit one whenever it counts, and a
    // `counters_ext` file that reads 0 (no extended PMA counters) does not hide the 32-bit
    // value. The maximum of two non-decreasing counters is non-decreasing, so rates hold.
    for (name, v) in read_counter_dir(reader, &dir.join("counters_ext"), &mut errors) {
        let base = parse::counters_ext_name(&name).unwrap_or(&name).to_string();
        let e = counters.entry(base).or_insert(v);
        *e = (*e).max(v);
    }
    let hw = if hw_counters {
        read_counter_dir(reader, &dir.join("hw_counters"), &mut errors)
    } else {
        BTreeMap::new()
    };
    PortSample {
        device: device.to_string(),
        port,
        transport: parse::classify_transport(device, info.node_type.as_deref(), &link_layer),
        link_layer,
        state,
        phys_state,
        rate_gbps,
        netdev,
        info: info.clone(),
        identity,
        counters,
        hw_counters: hw,
        errors,
    }
}

/// `gid_attrs/ndevs/<i>`: unpopulated GID slots fail with EINVAL; that is normal and not
/// an error worth reporting, so failures here are silent.
fn read_netdev(reader: &mut SysfsReader, dir: &Path) -> Option<String> {
    let (entries, _) = reader.list(dir, ListKind::All).ok()?;
    let mut found = Vec::new();
    // Slot 0 and 1 are the link-local GIDs present on every RoCE port; stop early.
    for name in entries.iter() {
        let Ok(idx) = name.parse::<u32>() else {
            continue;
        };
        let text = reader.read_with(&dir.join(name), |t| {
            (!t.trim().is_empty()).then(|| t.to_string())
        });
        if let Ok(Some(text)) = text {
            found.push((idx, text));
            break;
        }
    }
    parse::pick_netdev(found)
}

/// `gids/<i>` with `gid_attrs/types/<i>` and `gid_attrs/ndevs/<i>`, in index order, up to
/// the first unpopulated entry after index 0 and at most [`MAX_GIDS`]. Failures are
/// silent: unpopulated entries fail with EINVAL, which is normal.
fn read_gids(reader: &mut SysfsReader, dir: &Path) -> Vec<fabricwatch_proto::report::GidEntry> {
    let mut out = Vec::new();
    let gids = dir.join("gids");
    if reader.list(&gids, ListKind::Files).is_err() {
        return out;
    }
    for i in 0..MAX_GIDS {
        let idx = i.to_string();
        let gid = reader
            .read_with(&gids.join(&idx), |t| t.trim().to_string())
            .ok()
            .filter(|g| parse::gid_is_populated(g));
        let Some(gid) = gid else {
            if i == 0 {
                continue;
            }
            break;
        };
        let attr = |reader: &mut SysfsReader, kind: &str| {
            reader
                .read_with(&dir.join("gid_attrs").join(kind).join(&idx), |t| {
                    t.trim().to_string()
                })
                .ok()
                .filter(|s| !s.is_empty())
        };
        out.push(fabricwatch_proto::report::GidEntry {
            index: i,
            gid_type: attr(reader, "types"),
            netdev: attr(reader, "ndevs"),
            gid,
        });
    }
    out
}
