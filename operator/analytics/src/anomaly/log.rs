//! Bounded log of anomaly episodes per MonitorTarget (what `GET /api/v1/anomalies` lists):
//! one record per onset of a node series, closed when the series stops being flagged.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Records kept per target; older ones are dropped first.
pub const MAX_RECORDS: usize = 256;

/// One anomaly episode of a node series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnomalyRecord {
    /// Node name.
    pub node: String,
    /// Series name (e.g. `cpu_usage_percent`, `multivariate`).
    pub series: String,
    /// Largest score during the episode, σ-equivalents (3 = alarm).
    pub score: f64,
    /// Onset (the agent's collection time of the first flagged report).
    pub since: DateTime<Utc>,
    /// First report no longer flagged; absent while it goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<DateTime<Utc>>,
}

/// Episodes of one target, oldest first, bounded by [`MAX_RECORDS`].
#[derive(Clone, Debug, Default)]
pub struct AnomalyLog {
    records: VecDeque<AnomalyRecord>,
}

impl AnomalyLog {
    /// Applies one report of `node`: series newly flagged open a record, series no longer
    /// flagged close theirs, open ones keep their largest score. `flagged` pairs series and
    /// score; `was` is the series flagged after the previous report.
    pub fn update(
        &mut self,
        node: &str,
        was: &[String],
        flagged: &[(String, f64)],
        at: DateTime<Utc>,
    ) {
        for r in self
            .records
            .iter_mut()
            .filter(|r| r.node == node && r.ended.is_none())
        {
            match flagged.iter().find(|(s, _)| *s == r.series) {
                Some((_, score)) => r.score = r.score.max(*score),
                None => r.ended = Some(at),
            }
        }
        for (series, score) in flagged.iter().filter(|(s, _)| !was.contains(s)) {
            if self.records.len() == MAX_RECORDS {
                self.records.pop_front();
            }
            self.records.push_back(AnomalyRecord {
                node: node.to_string(),
                series: series.clone(),
                score: *score,
                since: at,
                ended: None,
            });
        }
    }

    /// Closes the open records of a node that is gone.
    pub fn close_node(&mut self, node: &str, at: DateTime<Utc>) {
        for r in self
            .records
            .iter_mut()
            .filter(|r| r.node == node && r.ended.is_none())
        {
            r.ended = Some(at);
        }
    }

    /// Up to `limit` records, newest first.
    pub fn latest(&self, limit: usize) -> impl Iterator<Item = &AnomalyRecord> {
        self.records.iter().rev().take(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid")
    }

    #[test]
    fn onset_then_end_one_record_each_and_bounded() {
        let mut log = AnomalyLog::default();
        log.update("a", &[], &[("cpu".into(), 4.0)], t(0));
        log.update("a", &["cpu".into()], &[("cpu".into(), 9.0)], t(10));
        log.update("a", &["cpu".into()], &[], t(20));
        let v: Vec<_> = log.latest(10).cloned().collect();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].score, v[0].since, v[0].ended),
            (9.0, t(0), Some(t(20)))
        );
        for i in 0..(MAX_RECORDS as i64 + 10) {
            log.update("b", &[], &[("mem".into(), 3.5)], t(100 + i));
        }
        assert_eq!(log.latest(usize::MAX).count(), MAX_RECORDS);
        assert_eq!(
            log.latest(1).next().map(|r| r.since),
            Some(t(100 + MAX_RECORDS as i64 + 9))
        );
    }
}
