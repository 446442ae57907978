//! Pure parsers for the text files under `/sys/class/infiniband/<dev>/ports/<n>/`.
//!
//! Formats are those of the kernel's `drivers/infiniband/core/sysfs.c`: `state` and
//! `phys_state` read `<number>: <NAME>`, `rate` reads `<Gb/s> Gb/sec (<width> <speed>)`,
//! counters read a decimal integer followed by a newline.

/// Why a counter file's content is not a number. Used as the bounded `kind` label of
/// `fabricwatch_agent_collector_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadValue {
    /// The file was empty (or whitespace only).
    Empty,
    /// The kernel's `N/A (no PMA)` (the device has no Performance Management Agent).
    NotAvailable,
    /// Anything else that is not a non-negative decimal integer.
    NonNumeric,
}

impl BadValue {
    /// The label value used in metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotAvailable => "not_available",
            Self::NonNumeric => "non_numeric",
        }
    }
}

/// Parses a counter file's content: a decimal `u64`, surrounding whitespace ignored.
///
/// # Errors
/// [`BadValue`] naming why the content is not a counter.
pub fn parse_counter(text: &str) -> Result<u64, BadValue> {
    let t = text.trim();
    if t.is_empty() {
        return Err(BadValue::Empty);
    }
    if t.starts_with("N/A") {
        return Err(BadValue::NotAvailable);
    }
    t.parse::<u64>().map_err(|_| BadValue::NonNumeric)
}

/// Parses `state` / `phys_state` (`"4: ACTIVE"`, `"5: LinkUp"`) into its number and name.
///
/// Returns `None` for text without the `<number>: <name>` shape.
pub fn parse_numbered_state(text: &str) -> Option<(u8, String)> {
    let (num, name) = text.trim().split_once(':')?;
    let num = num.trim().parse::<u8>().ok()?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((num, name.to_string()))
}

/// Parses `rate` (`"100 Gb/sec (2X HDR)"`, `"2.5 Gb/sec (1X SDR)"`) into Gb/s.
///
/// Returns `None` when the first token is not a number or the unit is not `Gb/sec`.
pub fn parse_rate_gbps(text: &str) -> Option<f64> {
    let mut it = text.split_whitespace();
    let value = it.next()?.parse::<f64>().ok()?;
    if it.next()? != "Gb/sec" || !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(value)
}

/// The width and speed name of `rate` (`"100 Gb/sec (2X HDR)"` → (`2X`, `HDR`); `"10
/// Gb/sec (4X)"` → (`4X`, none), as older kernels print SDR). Format: `rate_show` in
/// `drivers/infiniband/core/sysfs.c` (`"%d%s Gb/sec (%dX%s)\n"`).
pub fn parse_rate_parts(text: &str) -> Option<(String, Option<String>)> {
    let inner = text.trim().split_once('(')?.1.strip_suffix(')')?;
    let mut it = inner.split_whitespace();
    let width = it.next()?;
    let digits = width.strip_suffix('X')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let speed = it.next().map(str::to_string);
    if it.next().is_some() {
        return None;
    }
    Some((width.to_string(), speed))
}

/// `lid` / `sm_lid` (`"0x%x\n"`).
pub fn parse_hex_u32(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim().strip_prefix("0x")?, 16).ok()
}

/// `sm_sl` / `lid_mask_count` (`"%d\n"`), up to 255.
pub fn parse_dec_u8(text: &str) -> Option<u32> {
    text.trim().parse::<u8>().ok().map(u32::from)
}

/// Whether a `gids/<i>` text (`%pI6`) is a populated entry: eight groups of hex digits,
/// not all zero.
pub fn gid_is_populated(text: &str) -> bool {
    let groups: Vec<&str> = text.trim().split(':').collect();
    groups.len() == 8
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.len() <= 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
        && groups.iter().any(|g| g.bytes().any(|b| b != b'0'))
}

/// The `counters/` name a `counters_ext/` (mlx4, 64-bit) file stands for, as node_exporter
/// and procfs pair them (`port_rcv_data_64` → `port_rcv_data`,
/// `port_unicast_rcv_packets` → `unicast_rcv_packets`, ...).
pub fn counters_ext_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "port_rcv_data_64" => "port_rcv_data",
        "port_xmit_data_64" => "port_xmit_data",
        "port_rcv_packets_64" => "port_rcv_packets",
        "port_xmit_packets_64" => "port_xmit_packets",
        "port_unicast_rcv_packets" => "unicast_rcv_packets",
        "port_unicast_xmit_packets" => "unicast_xmit_packets",
        "port_multicast_rcv_packets" => "multicast_rcv_packets",
        "port_multicast_xmit_packets" => "multicast_xmit_packets",
        _ => return None,
    })
}

/// What kind of RDMA transport a device speaks. The kernel's `link_layer` says only
/// `InfiniBand` or `Ethernet`; iWARP and Omni-Path devices also report `InfiniBand`
/// (see the `i40iw` and `hfi1` fixtures), so the driver name and `node_type` decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Native InfiniBand.
    Infiniband,
    /// RDMA over Converged Ethernet (`link_layer` `Ethernet`).
    Roce,
    /// iWARP (RDMA over TCP): `node_type` `4: RNIC` or an iWARP-only driver.
    Iwarp,
    /// Intel Omni-Path (`hfi1`, `qib` drivers).
    OmniPath,
    /// Nothing above matched.
    Unknown,
}

impl Transport {
    /// Lower-case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Infiniband => "infiniband",
            Self::Roce => "roce",
            Self::Iwarp => "iwarp",
            Self::OmniPath => "omnipath",
            Self::Unknown => "unknown",
        }
    }
}

/// Drivers that only ever speak iWARP (`drivers/infiniband/hw/`: i40iw, cxgb3/4, nes).
const IWARP_DRIVERS: &[&str] = &["i40iw", "cxgb3_", "cxgb4_", "nes"];
/// Omni-Path / TrueScale drivers.
const OPA_DRIVERS: &[&str] = &["hfi1_", "qib"];

/// Classifies a port from the device name (`mlx5_0`, `hfi1_0`), the device's `node_type`
/// (`"1: CA"`, `"4: RNIC"`; absent on some trees) and the port's `link_layer`.
pub fn classify_transport(device: &str, node_type: Option<&str>, link_layer: &str) -> Transport {
    if node_type.and_then(parse_numbered_state).map(|(n, _)| n) == Some(4) {
        return Transport::Iwarp;
    }
    if IWARP_DRIVERS.iter().any(|p| device.starts_with(p)) {
        return Transport::Iwarp;
    }
    if OPA_DRIVERS.iter().any(|p| device.starts_with(p)) {
        return Transport::OmniPath;
    }
    match link_layer {
        "Ethernet" => Transport::Roce,
        "InfiniBand" => Transport::Infiniband,
        _ => Transport::Unknown,
    }
}

/// Picks the RoCE netdev from the `gid_attrs/ndevs/<index>` file contents (index, text):
/// the first non-empty name in index order. Unpopulated GID entries read empty or fail
/// with EINVAL, so callers pass only what they could read.
pub fn pick_netdev(mut entries: Vec<(u32, String)>) -> Option<String> {
    entries.sort_by_key(|(i, _)| *i);
    entries
        .into_iter()
        .map(|(_, n)| n.trim().to_string())
        .find(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_or_say_why_not() {
        assert_eq!(parse_counter("4294967295\n"), Ok(4_294_967_295));
        assert_eq!(parse_counter("0"), Ok(0));
        assert_eq!(parse_counter("N/A (no PMA)\n"), Err(BadValue::NotAvailable));
        assert_eq!(parse_counter(""), Err(BadValue::Empty));
        assert_eq!(parse_counter(" \n"), Err(BadValue::Empty));
        assert_eq!(parse_counter("12abc"), Err(BadValue::NonNumeric));
        assert_eq!(parse_counter("-1"), Err(BadValue::NonNumeric));
        assert_eq!(
            parse_counter("99999999999999999999999"),
            Err(BadValue::NonNumeric)
        );
    }

    #[test]
    fn states_parse() {
        assert_eq!(
            parse_numbered_state("4: ACTIVE\n"),
            Some((4, "ACTIVE".into()))
        );
        assert_eq!(
            parse_numbered_state("3: Disabled"),
            Some((3, "Disabled".into()))
        );
        assert_eq!(parse_numbered_state("ACTIVE"), None);
        assert_eq!(parse_numbered_state("x: ACTIVE"), None);
        assert_eq!(parse_numbered_state("4:"), None);
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate_gbps("100 Gb/sec (2X HDR)\n"), Some(100.0));
        assert_eq!(parse_rate_gbps("2.5 Gb/sec (1X SDR)"), Some(2.5));
        assert_eq!(parse_rate_gbps("10 Gb/sec (4X)"), Some(10.0));
        assert_eq!(parse_rate_gbps("fast"), None);
        assert_eq!(parse_rate_gbps("10 Mb/sec"), None);
        assert_eq!(parse_rate_gbps(""), None);
    }

    #[test]
    fn identity_files_parse() {
        assert_eq!(
            parse_rate_parts("100 Gb/sec (2X HDR)\n"),
            Some(("2X".into(), Some("HDR".into())))
        );
        assert_eq!(
            parse_rate_parts("10 Gb/sec (4X)"),
            Some(("4X".into(), None))
        );
        assert_eq!(parse_rate_parts("10 Gb/sec"), None);
        assert_eq!(parse_rate_parts("10 Gb/sec (X HDR)"), None);
        assert_eq!(parse_hex_u32("0x1a\n"), Some(26));
        assert_eq!(parse_hex_u32("26"), None);
        assert_eq!(parse_hex_u32("0xzz"), None);
        assert_eq!(parse_dec_u8("15\n"), Some(15));
        assert_eq!(parse_dec_u8("256"), None);
        assert!(gid_is_populated(
            "fe80:0000:0000:0000:ba59:9fff:fed4:6e40\n"
        ));
        assert!(!gid_is_populated("0000:0000:0000:0000:0000:0000:0000:0000"));
        assert!(!gid_is_populated("fe80::1"));
        assert!(!gid_is_populated("fe80:0000:0000:0000:ba59:9fff:fed4:6e4g"));
        assert_eq!(counters_ext_name("port_rcv_data_64"), Some("port_rcv_data"));
        assert_eq!(counters_ext_name("port_rcv_data"), None);
    }

    #[test]
    fn transports_are_told_apart() {
        assert_eq!(
            classify_transport("mlx5_0", Some("1: CA"), "InfiniBand"),
            Transport::Infiniband
        );
        assert_eq!(
            classify_transport("mlx5_0", None, "Ethernet"),
            Transport::Roce
        );
        assert_eq!(
            classify_transport("i40iw0", None, "InfiniBand"),
            Transport::Iwarp
        );
        assert_eq!(
            classify_transport("irdma0", Some("4: RNIC"), "Ethernet"),
            Transport::Iwarp
        );
        assert_eq!(
            classify_transport("hfi1_0", None, "InfiniBand"),
            Transport::OmniPath
        );
        assert_eq!(classify_transport("rxe0", None, ""), Transport::Unknown);
    }

    #[test]
    fn netdev_is_the_first_populated_gid_entry() {
        assert_eq!(
            pick_netdev(vec![(1, "ens1f0\n".into()), (0, "".into())]),
            Some("ens1f0".into())
        );
        assert_eq!(pick_netdev(vec![]), None);
    }
}
