//! When an AIAnalysis runs: triggers are collected per analysis, coalesced for a short
//! window (an alert storm arrives as many triggers within seconds) and spaced by
//! `spec.trigger.minInterval`. Pure: the caller passes the time.
//!
//! Rules, per analysis:
//! - the first trigger opens a coalescing window of [`Debounce::coalesce`]; every trigger
//!   arriving before it closes joins the same run;
//! - `onAlert` / `onAnomaly` triggers arriving less than `minInterval` after the start of the
//!   last run are dropped (counted as debounced): the run that just happened covers them;
//! - `schedule` and manual (`fabricwatch.io/run-now`) triggers are exempt from `minInterval`,
//!   as the CRD documents, but still coalesce;
//! - a run is never started while the previous one of the same analysis is in progress.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

/// Why a run happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// `spec.trigger.schedule` fired.
    Schedule,
    /// An AlertRule naming this analysis started firing.
    Alert,
    /// A new anomaly on a referenced MonitorTarget.
    Anomaly,
    /// The `fabricwatch.io/run-now` annotation got a new value.
    Manual,
}

impl Reason {
    /// Lower-case name, used as a metric label and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Schedule => "schedule",
            Reason::Alert => "alert",
            Reason::Anomaly => "anomaly",
            Reason::Manual => "manual",
        }
    }

    /// Whether `minInterval` applies.
    pub fn spaced(self) -> bool {
        matches!(self, Reason::Alert | Reason::Anomaly)
    }
}

/// Timing of the debouncer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Debounce {
    /// How long triggers are gathered into one run after the first (default 5 s).
    pub coalesce: Duration,
    /// Least time between the starts of two alert/anomaly-triggered runs
    /// (`spec.trigger.minInterval`, default 10 min).
    pub min_interval: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Self {
            coalesce: Duration::seconds(5),
            min_interval: Duration::minutes(10),
        }
    }
}

/// What [`TriggerState::offer`] did with a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// It opened a new pending run.
    Opened,
    /// It joined the pending run.
    Coalesced,
    /// It came within `minInterval` of the last run and was dropped.
    Dropped,
}

/// The trigger state of one analysis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerState {
    pending: Option<(DateTime<Utc>, BTreeSet<Reason>)>,
    last_run: Option<DateTime<Utc>>,
    running: bool,
}

impl TriggerState {
    /// A state whose last run started at `last_run` (read back from `status.lastRunTime`, so
    /// a restart does not re-run a storm's analysis at once).
    pub fn with_last_run(last_run: Option<DateTime<Utc>>) -> Self {
        Self {
            last_run,
            ..Self::default()
        }
    }

    /// Records a trigger at `now`.
    pub fn offer(&mut self, reason: Reason, now: DateTime<Utc>, d: &Debounce) -> Offer {
        if reason.spaced() && self.last_run.is_some_and(|l| now < l + d.min_interval) {
            return Offer::Dropped;
        }
        match &mut self.pending {
            Some((_, reasons)) => {
                reasons.insert(reason);
                Offer::Coalesced
            }
            None => {
                self.pending = Some((now, BTreeSet::from([reason])));
                Offer::Opened
            }
        }
    }

    /// Whether a run should start at `now`.
    pub fn due(&self, now: DateTime<Utc>, d: &Debounce) -> bool {
        !self.running
            && self
                .pending
                .as_ref()
                .is_some_and(|(at, _)| now >= *at + d.coalesce)
    }

    /// Starts the run: returns its reasons (sorted) and marks it running. Empty when nothing
    /// was pending.
    pub fn start(&mut self, now: DateTime<Utc>) -> Vec<Reason> {
        let Some((_, reasons)) = self.pending.take() else {
            return Vec::new();
        };
        self.running = true;
        self.last_run = Some(now);
        reasons.into_iter().collect()
    }

    /// The run ended.
    pub fn finish(&mut self) {
        self.running = false;
    }

    /// Whether a run is in progress.
    pub fn running(&self) -> bool {
        self.running
    }

    /// Start of the last run.
    pub fn last_run(&self) -> Option<DateTime<Utc>> {
        self.last_run
    }
}

/// The first time strictly after `after` that `cron` (UTC) matches; `None` when it never
/// matches again or the expression is invalid.
pub fn next_run(
    cron: &fabricwatch_crds::CronSchedule,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    cron.parse().ok()?.find_next_occurrence(&after, false).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    #[test]
    fn an_alert_storm_causes_one_run() {
        let d = Debounce::default();
        let mut st = TriggerState::default();
        assert_eq!(st.offer(Reason::Alert, t(0), &d), Offer::Opened);
        for i in 1..50 {
            assert_eq!(st.offer(Reason::Alert, t(i / 10), &d), Offer::Coalesced);
        }
        assert!(!st.due(t(4), &d), "still coalescing");
        assert!(st.due(t(5), &d));
        assert_eq!(st.start(t(5)), vec![Reason::Alert]);
        assert!(!st.due(t(6), &d), "nothing pending while running");
        // The storm goes on during and after the run: all dropped until minInterval.
        for i in 6..600 {
            assert_eq!(st.offer(Reason::Alert, t(i), &d), Offer::Dropped, "at {i}");
        }
        st.finish();
        assert!(!st.due(t(604), &d));
        assert_eq!(st.offer(Reason::Anomaly, t(605), &d), Offer::Opened);
        assert!(st.due(t(610), &d));
    }

    #[test]
    fn schedule_and_manual_are_exempt_from_min_interval_but_not_from_running() {
        let d = Debounce::default();
        let mut st = TriggerState::with_last_run(Some(t(0)));
        assert_eq!(st.offer(Reason::Alert, t(10), &d), Offer::Dropped);
        assert_eq!(st.offer(Reason::Manual, t(10), &d), Offer::Opened);
        assert_eq!(st.offer(Reason::Schedule, t(12), &d), Offer::Coalesced);
        assert_eq!(st.start(t(15)), vec![Reason::Schedule, Reason::Manual]);
        assert_eq!(st.offer(Reason::Manual, t(16), &d), Offer::Opened);
        assert!(!st.due(t(30), &d), "previous run still in progress");
        st.finish();
        assert!(st.due(t(30), &d));
        assert_eq!(st.last_run(), Some(t(15)));
    }

    #[test]
    fn start_without_pending_is_empty() {
        let mut st = TriggerState::default();
        assert!(st.start(t(0)).is_empty());
        assert!(!st.running());
    }

    #[test]
    fn cron_next_run() {
        let every6h = fabricwatch_crds::CronSchedule::new("0 */6 * * *");
        let at = DateTime::parse_from_rfc3339("2026-11-20T13:05:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let next = next_run(&every6h, at).expect("next");
        assert_eq!(next.to_rfc3339(), "2026-11-20T18:00:00+00:00");
        // Strictly after: on the boundary the next one is 6 h later.
        let again = next_run(&every6h, next).expect("next");
        assert_eq!(again.to_rfc3339(), "2026-11-21T00:00:00+00:00");
        let daily = fabricwatch_crds::CronSchedule::new("30 2 * * *");
        assert_eq!(
            next_run(&daily, at).expect("next").to_rfc3339(),
            "2026-11-21T02:30:00+00:00"
        );
        assert_eq!(
            next_run(&fabricwatch_crds::CronSchedule::new("not cron"), at),
            None
        );
    }
}
