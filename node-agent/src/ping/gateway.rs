//! The default IPv4 gateway from `<procfs_root>/net/route` (standalone mode's default
//! external target).

use std::{io::BufRead, net::Ipv4Addr, path::Path};

use procfs::FromBufRead;

/// `RTF_UP | RTF_GATEWAY` from `include/uapi/linux/route.h`.
const RTF_UP_GATEWAY: u16 = 0x0001 | 0x0002;

/// The gateway of the lowest-metric default route (destination and mask 0.0.0.0, flags
/// `UG`), from the text of `/proc/net/route`; `None` when there is none or the text does
/// not parse.
pub fn parse_default_gateway(route: impl BufRead) -> Option<Ipv4Addr> {
    let entries = procfs::net::RouteEntries::from_buf_read(route).ok()?;
    entries
        .0
        .into_iter()
        .filter(|e| {
            e.destination.is_unspecified()
                && e.mask.is_unspecified()
                && e.flags & RTF_UP_GATEWAY == RTF_UP_GATEWAY
        })
        .min_by_key(|e| e.metrics)
        .map(|e| e.gateway)
}

/// Reads `<procfs_root>/net/route` and returns the default gateway.
pub fn default_gateway(procfs_root: &Path) -> Option<Ipv4Addr> {
    let f = std::fs::File::open(procfs_root.join("net/route")).ok()?;
    parse_default_gateway(std::io::BufReader::new(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth1\t00000000\t0202A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n\
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    #[test]
    fn lowest_metric_default_route_wins() {
        assert_eq!(
            parse_default_gateway(ROUTE.as_bytes()),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
    }

    #[test]
    fn no_default_route_or_garbage() {
        let only_local =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_default_gateway(only_local.as_bytes()), None);
        assert_eq!(parse_default_gateway("garbage\nzz\n".as_bytes()), None);
    }
}
