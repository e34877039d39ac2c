//! The demo's numbers: parsing the client's delivery lines, medians, and the table.

use std::collections::HashMap;

/// The three ways of sending, in the order the demo runs them.
pub const MODES: [&str; 3] = ["classic", "early", "oneflight"];

/// One `delivery ...` line of the C client.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub mode: String,
    pub early: bool,
    pub waits: u32,
    pub ms: f64,
    pub result: String,
    pub reconnected: bool,
}

/// Reads `delivery n=1 mode=early early=1 waits=2 ms=101.3 result=ok reconnected=0`.
pub fn parse_line(line: &str) -> Option<Delivery> {
    let rest = line.strip_prefix("delivery ")?;
    let fields: HashMap<&str, &str> = rest
        .split_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect();
    Some(Delivery {
        mode: fields.get("mode")?.to_string(),
        early: *fields.get("early")? == "1",
        waits: fields.get("waits")?.parse().ok()?,
        ms: fields.get("ms")?.parse().ok()?,
        result: fields.get("result")?.to_string(),
        reconnected: *fields.get("reconnected")? == "1",
    })
}

/// The median (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What one mode did over its timed deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeResult {
    pub mode: &'static str,
    pub deliveries: Vec<Delivery>,
}

impl ModeResult {
    pub fn median_ms(&self) -> f64 {
        median(&self.deliveries.iter().map(|d| d.ms).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    }

    pub fn min_ms(&self) -> f64 {
        self.deliveries
            .iter()
            .map(|d| d.ms)
            .fold(f64::INFINITY, f64::min)
    }

    pub fn max_ms(&self) -> f64 {
        self.deliveries.iter().map(|d| d.ms).fold(0.0, f64::max)
    }

    /// The waits per delivery as text: `4`, or `2-3` when they varied.
    pub fn waits(&self) -> String {
        let min = self.deliveries.iter().map(|d| d.waits).min().unwrap_or(0);
        let max = self.deliveries.iter().map(|d| d.waits).max().unwrap_or(0);
        if min == max {
            min.to_string()
        } else {
            format!("{min}-{max}")
        }
    }

    /// How many deliveries sent an early flight.
    pub fn early_count(&self) -> usize {
        self.deliveries.iter().filter(|d| d.early).count()
    }
}

/// The table, one line per mode, and the summary line last.
pub fn render(results: &[ModeResult], rtt_ms: u64) -> String {
    let classic = results
        .iter()
        .find(|r| r.mode == "classic")
        .map_or(f64::NAN, ModeResult::median_ms);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<10} {:>6} {:>6} {:>10} {:>8} {:>8} {:>11}\n",
        "mode", "early", "waits", "median ms", "min ms", "max ms", "vs classic"
    ));
    for r in results {
        let m = r.median_ms();
        out.push_str(&format!(
            "{:<10} {:>6} {:>6} {:>10.1} {:>8.1} {:>8.1} {:>10.2}x\n",
            r.mode,
            format!("{}/{}", r.early_count(), r.deliveries.len()),
            r.waits(),
            m,
            r.min_ms(),
            r.max_ms(),
            classic / m,
        ));
    }
    let median_of = |mode: &str| {
        results
            .iter()
            .find(|r| r.mode == mode)
            .map_or(f64::NAN, ModeResult::median_ms)
    };
    out.push_str(&format!(
        "summary: rtt_ms={rtt_ms} classic_ms={:.1} early_ms={:.1} oneflight_ms={:.1}\n",
        median_of("classic"),
        median_of("early"),
        median_of("oneflight"),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_client_line() {
        let d = parse_line(
            "delivery n=3 mode=oneflight early=1 waits=1 ms=50.25 result=ok reconnected=0",
        )
        .unwrap();
        assert_eq!(d.mode, "oneflight");
        assert!(d.early && !d.reconnected);
        assert_eq!(d.waits, 1);
        assert!((d.ms - 50.25).abs() < 1e-9);
        assert!(parse_line("delivery n=1 mode=x").is_none());
        assert!(parse_line("hello").is_none());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn table_ends_with_the_summary() {
        let d = |mode: &str, ms: f64, waits: u32| Delivery {
            mode: mode.into(),
            early: mode != "classic",
            waits,
            ms,
            result: "ok".into(),
            reconnected: false,
        };
        let results = vec![
            ModeResult {
                mode: "classic",
                deliveries: vec![d("classic", 200.0, 4), d("classic", 202.0, 4)],
            },
            ModeResult {
                mode: "early",
                deliveries: vec![d("early", 100.0, 2)],
            },
            ModeResult {
                mode: "oneflight",
                deliveries: vec![d("oneflight", 50.0, 1)],
            },
        ];
        let t = render(&results, 50);
        let last = t.lines().last().unwrap();
        assert_eq!(
            last,
            "summary: rtt_ms=50 classic_ms=201.0 early_ms=100.0 oneflight_ms=50.0"
        );
        assert!(t.contains("4.02x"), "{t}");
    }
}
