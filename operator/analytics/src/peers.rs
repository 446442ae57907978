//! Ping peer assignment: everyone, or a stable subset by rendezvous hashing.

use fabricwatch_proto::report::Peer;

/// A reporting agent that can be assigned as a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Node name.
    pub node: String,
    /// Address to probe.
    pub address: String,
    /// Value of the topology label (`topologyKey`) on the node, when known.
    pub domain: Option<String>,
}

/// 64-bit FNV-1a (Fowler–Noll–Vo, IETF draft-eastlake-fnv) finished with the SplitMix64
/// mixer (G. L. Steele et al., "Fast splittable pseudorandom number generators", OOPSLA 2014)
/// so close inputs give independent-looking weights. Stable across processes and versions,
/// unlike `std`'s `DefaultHasher`, which the assignment must be.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Candidates other than `me`, ordered by rendezvous weight `hash(me, candidate)`, highest
/// first: highest random weight hashing (D. G. Thaler and C. V. Ravishankar, "Using name-based
/// mappings to increase hit rates", IEEE/ACM ToN 6(1), 1998). When a node joins, each agent's
/// top-`k` changes only if the newcomer outranks one of them (probability `k/N`), so about `k`
/// of the `N·k` assignments move, plus the newcomer's own `k`.
fn ranked<'a>(me: &str, candidates: &'a [Candidate]) -> Vec<&'a Candidate> {
    let mut v: Vec<(u64, &Candidate)> = candidates
        .iter()
        .filter(|c| c.node != me)
        .map(|c| (stable_hash(&[me, &c.node]), c))
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.node.cmp(&b.1.node)));
    v.into_iter().map(|(_, c)| c).collect()
}

/// The peers `me` should probe.
///
/// * `max_peers` `None` (or ≥ the other agents): every other candidate.
/// * Otherwise `k = max_peers` chosen by rendezvous hashing. With `my_domain` set (the
///   MonitorTarget has a `topologyKey`), `⌈k/2⌉` come from `me`'s own domain and the rest from
///   other domains, each side by rendezvous order; a side with too few candidates is topped up
///   from the other side, so the answer always has `min(k, others)` peers.
///
/// Deterministic: the same inputs give the same peers, sorted by node name.
pub fn assign(
    me: &str,
    my_domain: Option<&str>,
    candidates: &[Candidate],
    max_peers: Option<usize>,
) -> Vec<Peer> {
    let order = ranked(me, candidates);
    let k = max_peers.unwrap_or(usize::MAX).min(order.len());
    let chosen: Vec<&Candidate> = match my_domain {
        Some(dom) if k < order.len() => {
            let (same, other): (Vec<&Candidate>, Vec<&Candidate>) =
                order.iter().partition(|c| c.domain.as_deref() == Some(dom));
            let want_same = k.div_ceil(2).min(same.len());
            let want_other = (k - want_same).min(other.len());
            let want_same = (k - want_other).min(same.len());
            same.into_iter()
                .take(want_same)
                .chain(other.into_iter().take(want_other))
                .collect()
        }
        _ => order.into_iter().take(k).collect(),
    };
    let mut peers: Vec<Peer> = chosen
        .into_iter()
        .map(|c| Peer {
            node: c.node.clone(),
            address: c.address.clone(),
        })
        .collect();
    peers.sort();
    peers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    const PINNED: u64 = 13_179_733_338_164_111_305;

    fn nodes(n: usize, domains: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                node: format!("node-{i:03}"),
                address: format!("10.0.{}.{}", i / 250, i % 250),
                domain: (domains > 0).then(|| format!("rack-{}", i % domains)),
            })
            .collect()
    }

    fn pairs(c: &[Candidate], k: usize, topo: bool) -> BTreeSet<(String, String)> {
        c.iter()
            .flat_map(|me| {
                assign(
                    &me.node,
                    if topo { me.domain.as_deref() } else { None },
                    c,
                    Some(k),
                )
                .into_iter()
                .map(move |p| (me.node.clone(), p.node))
            })
            .collect()
    }

    #[test]
    fn hash_is_stable_across_versions() {
        // Pinned: changing the hash would reshuffle every mesh on upgrade.
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        assert_eq!(stable_hash(&["node-a", "node-b"]), PINNED);
    }

    #[test]
    fn everyone_without_max_peers_and_never_self() {
        let c = nodes(5, 0);
        let p = assign("node-002", None, &c, None);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|p| p.node != "node-002"));
        assert_eq!(assign("node-002", None, &c, Some(10)).len(), 4);
        assert!(assign("x", None, &[], Some(3)).is_empty());
    }

    #[test]
    fn adding_one_node_to_100_moves_few_assignments() {
        let k = 8;
        let before = nodes(100, 0);
        let mut after = before.clone();
        after.push(Candidate {
            node: "node-new".into(),
            address: "10.9.9.9".into(),
            domain: None,
        });
        let a = pairs(&before, k, false);
        let b = pairs(&after, k, false);
        let moved = a.difference(&b).count();
        // Expected ≈ k (each of N agents swaps one peer with probability k/N); allow 2k.
        assert!(moved <= 2 * k, "moved {moved} of {} assignments", a.len());
        assert!(moved > 0, "the newcomer must be picked by someone");
        // Removing it again restores the original exactly.
        assert_eq!(pairs(&before, k, false), a);
    }

    #[test]
    fn topology_aware_mixes_domains_and_stays_stable() {
        let c = nodes(100, 4);
        for me in &c[..10] {
            let p = assign(&me.node, me.domain.as_deref(), &c, Some(6));
            assert_eq!(p.len(), 6);
            let same = p
                .iter()
                .filter(|p| c.iter().any(|x| x.node == p.node && x.domain == me.domain))
                .count();
            assert_eq!(same, 3, "half the peers in {:?}", me.domain);
        }
        let mut after = c.clone();
        after.push(Candidate {
            node: "node-new".into(),
            address: "10.9.9.9".into(),
            domain: Some("rack-1".into()),
        });
        let moved = pairs(&c, 6, true)
            .difference(&pairs(&after, 6, true))
            .count();
        assert!(moved <= 2 * 6, "moved {moved}");
    }

    #[test]
    fn small_domain_is_topped_up_from_the_other_side() {
        let mut c = nodes(10, 0);
        c.iter_mut().for_each(|n| n.domain = Some("big".into()));
        c[0].domain = Some("lonely".into());
        let p = assign("node-000", Some("lonely"), &c, Some(4));
        assert_eq!(p.len(), 4, "all from other domains since none share mine");
    }
}
