//! Pure per-peer statistics over one interval's probe outcomes.

use fabricwatch_proto::report::{PeerReport, ProbeProtocol};

/// Outcome of one probe.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeOutcome {
    /// A reply arrived; round-trip time in seconds.
    Reply(f64),
    /// No reply within the timeout, or an error; the message says which.
    Lost(String),
}

/// RFC 3550 §6.4.1 interarrival jitter, applied to successive RTTs: for each received probe
/// `D = |rtt_i - rtt_{i-1}|` and `J += (D - J) / 16`. The estimator is kept across
/// intervals so that a peer's jitter is a smoothed, long-running value as in RTP.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jitter {
    last_rtt: Option<f64>,
    value: f64,
    samples: u64,
}

impl Jitter {
    /// Folds one RTT (seconds) into the estimate.
    pub fn push(&mut self, rtt: f64) {
        if let Some(prev) = self.last_rtt {
            let d = (rtt - prev).abs();
            self.value += (d - self.value) / 16.0;
        }
        self.last_rtt = Some(rtt);
        self.samples += 1;
    }

    /// Current estimate in seconds; `None` until two RTTs were seen.
    pub fn value(&self) -> Option<f64> {
        (self.samples >= 2).then_some(self.value)
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of an ascending slice; `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Identity of the peer a summary is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey {
    /// Node name or the configured external target.
    pub name: String,
    /// Address probed (IP, or `IP:port` for TCP).
    pub address: String,
    /// Whether it is an `externalTargets` entry.
    pub external: bool,
}

/// Summarises one interval's outcomes (in send order) for a peer, folding the RTTs into the
/// peer's long-running `jitter`.
pub fn summarize(
    key: &PeerKey,
    protocol: ProbeProtocol,
    outcomes: &[ProbeOutcome],
    jitter: &mut Jitter,
) -> PeerReport {
    let mut rtts = Vec::with_capacity(outcomes.len());
    let mut last_error = None;
    for o in outcomes {
        match o {
            ProbeOutcome::Reply(r) => {
                jitter.push(*r);
                rtts.push(*r);
            }
            ProbeOutcome::Lost(e) => last_error = Some(e.clone()),
        }
    }
    let sent = u32::try_from(outcomes.len()).unwrap_or(u32::MAX);
    let received = u32::try_from(rtts.len()).unwrap_or(u32::MAX);
    let loss_percent = if sent == 0 {
        0.0
    } else {
        f64::from(sent - received) * 100.0 / f64::from(sent)
    };
    let avg = (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64);
    rtts.sort_by(f64::total_cmp);
    PeerReport {
        peer: key.name.clone(),
        address: key.address.clone(),
        external: key.external,
        protocol,
        sent,
        received,
        loss_percent,
        rtt_min_seconds: rtts.first().copied(),
        rtt_avg_seconds: avg,
        rtt_max_seconds: rtts.last().copied(),
        rtt_p50_seconds: percentile(&rtts, 50.0),
        rtt_p99_seconds: percentile(&rtts, 99.0),
        jitter_seconds: if received > 0 { jitter.value() } else { None },
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut j = Jitter::default();
        assert_eq!(j.value(), None);
        j.push(0.010);
        j.push(0.026);
        // J = 0 + (0.016 - 0) / 16
        assert!((j.value().expect("value") - 0.001).abs() < 1e-12);
        j.push(0.026);
        assert!((j.value().expect("value") - 0.001 * 15.0 / 16.0).abs() < 1e-12);
    }

    #[test]
    fn summary_counts_loss_and_orders_stats() {
        let key = PeerKey {
            name: "n2".into(),
            address: "10.0.0.2".into(),
            external: false,
        };
        let outcomes = vec![
            ProbeOutcome::Reply(0.003),
            ProbeOutcome::Lost("timeout".into()),
            ProbeOutcome::Reply(0.001),
            ProbeOutcome::Reply(0.002),
            ProbeOutcome::Lost("host unreachable".into()),
        ];
        let mut j = Jitter::default();
        let r = summarize(&key, ProbeProtocol::Icmp, &outcomes, &mut j);
        assert_eq!((r.sent, r.received), (5, 3));
        assert!((r.loss_percent - 40.0).abs() < 1e-9);
        assert_eq!(r.rtt_min_seconds, Some(0.001));
        assert_eq!(r.rtt_max_seconds, Some(0.003));
        assert_eq!(r.rtt_p50_seconds, Some(0.002));
        assert!((r.rtt_avg_seconds.expect("avg") - 0.002).abs() < 1e-12);
        assert_eq!(r.last_error.as_deref(), Some("host unreachable"));
        assert!(r.jitter_seconds.expect("jitter") > 0.0);
        let all_lost = summarize(
            &key,
            ProbeProtocol::Icmp,
            &[ProbeOutcome::Lost("timeout".into())],
            &mut Jitter::default(),
        );
        assert_eq!(all_lost.loss_percent, 100.0);
        assert_eq!(all_lost.rtt_p99_seconds, None);
        assert_eq!(all_lost.jitter_seconds, None);
    }
}
