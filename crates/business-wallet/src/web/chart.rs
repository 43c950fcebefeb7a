//! The deliveries chart: attempt outcomes per hour over the last 24 hours as stacked bars,
//! computed here and drawn as inline SVG by `templates/chart.html`.
//!
//! The SVG has a `viewBox` and no fixed size, so it scales to the width of its box (a 390 px
//! phone as well as a desktop) without widening the page; colours come from classes of
//! `assets/app.css` and sizes from presentation attributes, so that it needs no inline style
//! and no script under the UI's `default-src 'self'` policy. It is an image to assistive
//! technology (`role="img"` with a `<title>` that gives the totals), and the numbers of every
//! hour are in a table under a `<details>` beside it.

use crate::domain::channel::health::Activity;

/// The drawing's coordinate system (the `viewBox`).
const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 160.0;
/// The plot area inside it: room on the left for the scale, below for the hours.
const LEFT: f64 = 30.0;
const RIGHT: f64 = 474.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 130.0;
/// The share of its slot that a bar covers.
const BAR_SHARE: f64 = 0.75;

/// One rectangle of a stacked bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Top edge.
    pub y: String,
    /// Height.
    pub height: String,
    /// Its CSS class (`bar-delivered`, `bar-retrying`, `bar-failed`).
    pub class: &'static str,
}

/// One hour's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Left edge.
    pub x: String,
    /// Width.
    pub width: String,
    /// From bottom to top: delivered, retrying, failed; empty ones left out.
    pub segments: Vec<Segment>,
    /// The hour and its counts, shown on hover.
    pub tooltip: String,
}

/// A label under the bars.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Its centre.
    pub x: String,
    /// `HH:00` (UTC).
    pub label: String,
}

/// One row of the table of numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `YYYY-MM-DD HH:00` (UTC).
    pub hour: String,
    /// Delivered attempts.
    pub delivered: i64,
    /// Attempts to be retried.
    pub retrying: i64,
    /// Attempts after which the delivery failed.
    pub failed: i64,
}

/// Everything `templates/chart.html` draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Unique on the page, for the `aria-labelledby` of the image.
    pub id: &'static str,
    /// The heading above the chart.
    pub heading: String,
    /// The summary of the totals: the image's accessible name.
    pub label: String,
    /// The viewBox width and height.
    pub width: String,
    /// The viewBox height.
    pub height: String,
    /// Plot area edges, for the axis lines.
    pub left: String,
    /// Right edge.
    pub right: String,
    /// Top edge.
    pub top: String,
    /// Bottom edge (the baseline).
    pub bottom: String,
    /// The largest hour's total, shown at the top of the scale.
    pub max: i64,
    /// Where the hour labels go, vertically.
    pub tick_y: String,
    /// The bars, oldest hour first.
    pub bars: Vec<Bar>,
    /// Hour labels, every six hours.
    pub ticks: Vec<Tick>,
    /// The numbers of every hour, oldest first.
    pub rows: Vec<Row>,
}

fn num(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn hour_label(ms: i64, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format(format)
        .to_string()
}

/// The chart of `activity` under `heading`; `id` must be unique on the page.
pub fn build(id: &'static str, heading: &str, activity: &Activity) -> Chart {
    let (delivered, retrying, failed) = activity.totals();
    let max = activity
        .hours
        .iter()
        .map(|h| h.delivered + h.retrying + h.failed)
        .max()
        .unwrap_or(0);
    let slot = (RIGHT - LEFT) / activity.hours.len().max(1) as f64;
    let scale = if max > 0 { (BOTTOM - TOP) / max as f64 } else { 0.0 };
    let bars = activity
        .hours
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut base = BOTTOM;
            let mut segments = Vec::new();
            for (count, class) in [
                (h.delivered, "bar-delivered"),
                (h.retrying, "bar-retrying"),
                (h.failed, "bar-failed"),
            ] {
                if count <= 0 {
                    continue;
                }
                let height = count as f64 * scale;
                base -= height;
                segments.push(Segment {
                    y: num(base),
                    height: num(height),
                    class,
                });
            }
            Bar {
                x: num(LEFT + i as f64 * slot + slot * (1.0 - BAR_SHARE) / 2.0),
                width: num(slot * BAR_SHARE),
                segments,
                tooltip: format!(
                    "{}: {} delivered, {} retrying, {} failed",
                    hour_label(h.start, "%H:00"),
                    h.delivered,
                    h.retrying,
                    h.failed
                ),
            }
        })
        .collect();
    let ticks = activity
        .hours
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 6 == 0)
        .map(|(i, h)| Tick {
            x: num(LEFT + (i as f64 + 0.5) * slot),
            label: hour_label(h.start, "%H:00"),
        })
        .collect();
    let rows = activity
        .hours
        .iter()
        .map(|h| Row {
            hour: hour_label(h.start, "%Y-%m-%d %H:00"),
            delivered: h.delivered,
            retrying: h.retrying,
            failed: h.failed,
        })
        .collect();
    Chart {
        id,
        heading: heading.to_string(),
        label: format!(
            "Delivery attempts per hour over the last 24 hours (UTC): {delivered} delivered, {retrying} retrying, {failed} failed"
        ),
        width: num(WIDTH),
        height: num(HEIGHT),
        left: num(LEFT),
        right: num(RIGHT),
        top: num(TOP),
        bottom: num(BOTTOM),
        max,
        tick_y: num(BOTTOM + 18.0),
        bars,
        ticks,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use askama::Template;

    use super::*;
    use crate::domain::channel::health::HourCount;

    const HOUR: i64 = 3_600_000;

    fn activity(counts: &[(i64, i64, i64)]) -> Activity {
        let start = 1_764_720_000_000; // 2025-12-03T00:00Z
        Activity {
            hours: (0..24)
                .map(|i| {
                    let (delivered, retrying, failed) = counts.get(i).copied().unwrap_or_default();
                    HourCount {
                        start: start + i as i64 * HOUR,
                        delivered,
                        retrying,
                        failed,
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn the_tallest_hour_fills_the_plot_and_segments_stack_upwards() {
        let chart = build("c", "Deliveries", &activity(&[(6, 2, 2), (5, 0, 0)]));
        assert_eq!(chart.max, 10);
        let first = &chart.bars[0];
        let classes: Vec<_> = first.segments.iter().map(|s| s.class).collect();
        assert_eq!(classes, ["bar-delivered", "bar-retrying", "bar-failed"]);
        // 120 units of plot height for 10 attempts: 72, 24 and 24, stacked from the baseline.
        assert_eq!(first.segments[0].y, "58");
        assert_eq!(first.segments[0].height, "72");
        assert_eq!(first.segments[1].y, "34");
        assert_eq!(first.segments[2].y, "10");
        assert_eq!(chart.bars[1].segments.len(), 1, "empty segments are left out");
        assert_eq!(chart.bars[1].segments[0].height, "60");
        assert!(chart.bars[2].segments.is_empty());
        assert_eq!(chart.bars.len(), 24);
    }

    #[test]
    fn bars_stay_inside_the_view_box() {
        let chart = build("c", "Deliveries", &activity(&[(1, 0, 0); 24]));
        let last = chart.bars.last().unwrap();
        let right = last.x.parse::<f64>().unwrap() + last.width.parse::<f64>().unwrap();
        assert!(right <= RIGHT && chart.bars[0].x.parse::<f64>().unwrap() >= LEFT);
    }

    #[test]
    fn the_label_sums_the_day_and_the_table_has_every_hour() {
        let chart = build("c", "Deliveries", &activity(&[(1, 2, 3), (0, 0, 4)]));
        assert_eq!(
            chart.label,
            "Delivery attempts per hour over the last 24 hours (UTC): 1 delivered, 2 retrying, 7 failed"
        );
        assert_eq!(chart.rows.len(), 24);
        assert_eq!(chart.rows[1].hour, "2025-12-03 01:00");
        assert_eq!(chart.rows[1].failed, 4);
        assert_eq!(
            chart.ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["00:00", "06:00", "12:00", "18:00"]
        );
        assert_eq!(chart.bars[1].tooltip, "01:00: 0 delivered, 0 retrying, 4 failed");
    }

    #[test]
    fn a_quiet_day_draws_no_bars_and_divides_by_nothing() {
        let chart = build("c", "Deliveries", &activity(&[]));
        assert_eq!(chart.max, 0);
        assert!(chart.bars.iter().all(|b| b.segments.is_empty()));
        let empty = build("c", "Deliveries", &Activity { hours: Vec::new() });
        assert!(empty.bars.is_empty() && empty.rows.is_empty());
    }

    #[derive(Template)]
    #[template(path = "chart.html")]
    struct Partial {
        chart: Chart,
    }

    #[test]
    fn the_partial_is_an_accessible_scalable_svg_without_inline_style() {
        let html = Partial {
            chart: build("chart-test", "Deliveries", &activity(&[(3, 1, 0)])),
        }
        .render()
        .unwrap();
        assert!(html.contains("role=\"img\""), "{html}");
        assert!(html.contains("aria-labelledby=\"chart-test-title\""), "{html}");
        assert!(html.contains("<title id=\"chart-test-title\">Delivery attempts per hour over the last 24 hours (UTC): 3 delivered, 1 retrying, 0 failed</title>"), "{html}");
        assert!(html.contains("viewBox=\"0 0 480 160\""), "{html}");
        assert!(!html.contains("style="), "no inline style: {html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<details"), "{html}");
        assert_eq!(html.matches("<tr").count(), 25, "a header and 24 hours: {html}");
        assert!(html.contains("class=\"bar-retrying\""), "{html}");
    }
}
