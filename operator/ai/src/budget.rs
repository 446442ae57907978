//! Prices, the per-run and per-day budget, and the usage ledger the caller persists.
//!
//! Enforcement happens before every provider call (the first request, and the repair request
//! if one is needed; retries of a failed attempt are the same call): the call's worst-case
//! cost (estimated input tokens plus the full `max_output_tokens`, at the model's price) must
//! fit into what is left of `daily_usd` today (UTC), and the tokens already used in this run
//! plus the call's input and maximum output must fit `max_tokens_per_run`.
//! Spend is charged on the token counts the provider reports.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// USD per 1,000 tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// USD per 1,000 input (prompt) tokens.
    pub input_per_1k: f64,
    /// USD per 1,000 output (completion) tokens.
    pub output_per_1k: f64,
}

impl Price {
    /// Cost in USD of `input` and `output` tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input_per_1k + output as f64 * self.output_per_1k) / 1000.0
    }
}

/// A price for the models whose id contains `model` (e.g. `claude-3-5-haiku` matches
/// `us.anthropic.claude-3-5-haiku-20241022-v1:0`); maps to `spec.budget.prices[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    /// Substring of the model id.
    pub model: String,
    /// Its price.
    #[serde(flatten)]
    pub price: Price,
}

/// Built-in on-demand prices, first match wins (so more specific ids come first).
///
/// Sources, as published in November 2026:
/// - Amazon Bedrock pricing, <https://aws.amazon.com/bedrock/pricing/> (on-demand, US East):
///   Claude 3.5 Haiku $0.0008 / $0.004, Claude 3 Haiku $0.00025 / $0.00125,
///   Claude Haiku 4.5 $0.001 / $0.005, Claude 3.5/3.7 Sonnet and Sonnet 4/4.5 $0.003 / $0.015,
///   Amazon Nova Micro $0.000035 / $0.00014, Nova Lite $0.00006 / $0.00024,
///   Nova Pro $0.0008 / $0.0032 per 1k input / output tokens.
/// - OpenAI API pricing, <https://openai.com/api/pricing/>: gpt-4o-mini $0.00015 / $0.0006,
///   gpt-4o $0.0025 / $0.01 per 1k tokens.
///
/// Prices change: override them in the spec rather than relying on these.
pub fn default_prices() -> Vec<ModelPrice> {
    let p = |model: &str, input_per_1k: f64, output_per_1k: f64| ModelPrice {
        model: model.to_string(),
        price: Price {
            input_per_1k,
            output_per_1k,
        },
    };
    vec![
        p("claude-3-5-haiku", 0.0008, 0.004),
        p("claude-3-haiku", 0.00025, 0.00125),
        p("claude-haiku-4-5", 0.001, 0.005),
        p("claude-3-5-sonnet", 0.003, 0.015),
        p("claude-3-7-sonnet", 0.003, 0.015),
        p("claude-sonnet-4", 0.003, 0.015),
        p("nova-micro", 0.000035, 0.00014),
        p("nova-lite", 0.00006, 0.00024),
        p("nova-pro", 0.0008, 0.0032),
        p("gpt-4o-mini", 0.00015, 0.0006),
        p("gpt-4o", 0.0025, 0.01),
    ]
}

/// The price used for a model none of the tables knows: Sonnet-class, so an unknown model
/// is over- rather than under-charged.
pub const FALLBACK_PRICE: Price = Price {
    input_per_1k: 0.003,
    output_per_1k: 0.015,
};

/// Where a price came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceSource {
    /// `spec.budget.prices`.
    Spec,
    /// [`default_prices`].
    Default,
    /// A local provider (`ollama`) costs nothing.
    Local,
    /// [`FALLBACK_PRICE`].
    Fallback,
}

/// `spec.budget`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Most USD to spend per UTC day; `None` for no daily limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// Most tokens (input + output, all calls of one run together).
    pub max_tokens_per_run: u64,
    /// Price overrides, checked before the defaults.
    #[serde(default)]
    pub prices: Vec<ModelPrice>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            daily_usd: Some(1.0),
            max_tokens_per_run: 8000,
            prices: Vec::new(),
        }
    }
}

impl Budget {
    /// The price of `model`: spec override, then local (`is_local`), then the default
    /// table, then [`FALLBACK_PRICE`].
    pub fn price_for(&self, model: &str, is_local: bool) -> (Price, PriceSource) {
        if let Some(p) = self.prices.iter().find(|p| model.contains(&p.model)) {
            return (p.price, PriceSource::Spec);
        }
        if is_local {
            return (
                Price {
                    input_per_1k: 0.0,
                    output_per_1k: 0.0,
                },
                PriceSource::Local,
            );
        }
        match default_prices()
            .into_iter()
            .find(|p| model.contains(&p.model))
        {
            Some(p) => (p.price, PriceSource::Default),
            None => (FALLBACK_PRICE, PriceSource::Fallback),
        }
    }
}

/// The usage ledger; maps onto `AIAnalysis.status.usage` and must be persisted by the caller
/// (with `day`) so a restart does not reset today's spend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Input tokens of the last run (all calls in it).
    pub input_tokens: u64,
    /// Output tokens of the last run.
    pub output_tokens: u64,
    /// USD of the last run.
    pub cost_usd: f64,
    /// USD spent on `day`.
    pub today_cost_usd: f64,
    /// The UTC day `today_cost_usd` belongs to; `None` before the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
}

impl Usage {
    /// Starts a new day's ledger when `today` is after `day`.
    pub fn roll_over(&mut self, today: NaiveDate) {
        if self.day != Some(today) {
            self.day = Some(today);
            self.today_cost_usd = 0.0;
        }
    }
}

/// Why a call was not made.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum BudgetExceeded {
    /// Spent plus the call's worst case would pass `daily_usd`.
    #[error("daily budget exhausted: spent {spent_usd:.4} USD of {daily_usd:.4}, next call may cost up to {call_usd:.4}")]
    Daily {
        /// Today's spend.
        spent_usd: f64,
        /// The daily limit.
        daily_usd: f64,
        /// The call's worst case.
        call_usd: f64,
    },
    /// The run's tokens so far plus the call's input and `max_output_tokens` pass
    /// `max_tokens_per_run`.
    #[error("maxTokensPerRun {limit} is too small: the call needs at least {needed}")]
    PerRun {
        /// Tokens needed.
        needed: u64,
        /// `max_tokens_per_run`.
        limit: u64,
    },
}

/// Checks a call of `input_tokens` (estimated) and up to `max_output_tokens` against the
/// budget and today's spend, `run_tokens` being what earlier calls of this run used.
pub fn check(
    budget: &Budget,
    usage: &Usage,
    price: Price,
    run_tokens: u64,
    input_tokens: u64,
    max_output_tokens: u64,
) -> Result<(), BudgetExceeded> {
    let needed = run_tokens
        .saturating_add(input_tokens)
        .saturating_add(max_output_tokens);
    if needed > budget.max_tokens_per_run {
        return Err(BudgetExceeded::PerRun {
            needed,
            limit: budget.max_tokens_per_run,
        });
    }
    if let Some(daily) = budget.daily_usd {
        let call = price.cost(input_tokens, max_output_tokens);
        if usage.today_cost_usd + call > daily {
            return Err(BudgetExceeded::Daily {
                spent_usd: usage.today_cost_usd,
                daily_usd: daily,
                call_usd: call,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_resolve_by_substring_with_overrides_first() {
        let mut b = Budget::default();
        let (p, src) = b.price_for("us.anthropic.claude-3-5-haiku-20241022-v1:0", false);
        assert_eq!(src, PriceSource::Default);
        assert_eq!(p.input_per_1k, 0.0008);
        assert!((p.cost(1000, 1000) - 0.0048).abs() < 1e-12);
        assert_eq!(
            b.price_for("gpt-4o-mini-2024", false).0.input_per_1k,
            0.00015
        );
        assert_eq!(b.price_for("llama3.1:8b", true).1, PriceSource::Local);
        assert_eq!(
            b.price_for("mystery", false),
            (FALLBACK_PRICE, PriceSource::Fallback)
        );
        b.prices.push(ModelPrice {
            model: "haiku".into(),
            price: Price {
                input_per_1k: 1.0,
                output_per_1k: 2.0,
            },
        });
        assert_eq!(b.price_for("claude-3-5-haiku", false).1, PriceSource::Spec);
    }

    #[test]
    fn check_enforces_tokens_and_daily_spend() {
        let b = Budget {
            daily_usd: Some(0.01),
            max_tokens_per_run: 5000,
            prices: vec![],
        };
        let price = b.price_for("claude-3-5-haiku", false).0;
        let mut u = Usage::default();
        assert_eq!(check(&b, &u, price, 0, 3000, 1000), Ok(()));
        assert!(check(&b, &u, price, 1500, 3000, 1000).is_err());
        assert!(matches!(
            check(&b, &u, price, 0, 4500, 1000),
            Err(BudgetExceeded::PerRun {
                needed: 5500,
                limit: 5000
            })
        ));
        // A provider-reported count near u64::MAX is over budget, not an overflow.
        assert!(matches!(
            check(&b, &u, price, u64::MAX, 3000, 1000),
            Err(BudgetExceeded::PerRun {
                needed: u64::MAX,
                ..
            })
        ));
        u.today_cost_usd = 0.005;
        assert!(matches!(
            check(&b, &u, price, 0, 3000, 1000),
            Err(BudgetExceeded::Daily { .. })
        ));
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
        let d2 = d1.succ_opt().expect("date");
        u.day = Some(d1);
        u.roll_over(d1);
        assert_eq!(u.today_cost_usd, 0.005);
        u.roll_over(d2);
        assert_eq!((u.today_cost_usd, u.day), (0.0, Some(d2)));
    }
}
