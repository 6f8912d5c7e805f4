//! Period arithmetic in UTC: allowance boundaries, spend-cap and pool-limit periods. Pure Rust.
//!
//! Times are PostgreSQL's representation of a `timestamptz`: microseconds since
//! 2000-01-01 00:00:00 UTC (`i64`), so the SQL boundary converts with no arithmetic. A period is
//! PostgreSQL's interval triple (months, days, microseconds).
//!
//! The rule: boundary k of a period `p` anchored at `anchor` is `anchor + k × p`, always computed
//! **from the anchor** (never by stepping from the previous boundary), exactly as PostgreSQL
//! computes `anchor + p * k` with `TimeZone = 'UTC'`: first add k × months (a day past the end
//! of the target month clamps to its last day), then k × days, then k × microseconds. So a
//! monthly period anchored on Jan 31 has boundaries Jan 31, Feb 28 (29 in a leap year), Mar 31,
//! Apr 30, ... and never drifts to the 28th; days are 24 hours (UTC has no DST), whatever the
//! session's TimeZone. k may be negative (instants before the anchor).
//!
//! Invariants (property-tested below): for a positive period, boundaries strictly increase with k;
//! `period_start(at) <= at < next(period_start(at))`; every boundary's start is itself; stepping
//! N times with [`next`] lands on boundary N.
//!
//! A NULL period means calendar months in UTC: the same rule with a one-month period anchored
//! at 2000-01-01 00:00 UTC. A NULL anchor is the Unix epoch (1970-01-01 00:00 UTC).

/// Microseconds per day.
pub const DAY: i64 = 86_400_000_000;
/// 1970-01-01 00:00 UTC in PostgreSQL's microseconds since 2000-01-01.
pub const UNIX_EPOCH: i64 = -10_957 * DAY;
/// PostgreSQL's timestamp range: [4714-11-24 00:00 BC, 294277-01-01 00:00) (MIN_TIMESTAMP,
/// END_TIMESTAMP).
const MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

/// An interval as PostgreSQL stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// Why a boundary cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodError {
    /// The period has a negative part or is zero.
    NotPositive,
    /// A timestamp is infinite or the result is outside PostgreSQL's range.
    OutOfRange,
}

impl Period {
    /// One calendar month (the period of a wallet without its own).
    pub const MONTH: Period = Period {
        months: 1,
        days: 0,
        micros: 0,
    };

    /// No part negative and not zero: the only periods with strictly increasing boundaries.
    pub fn is_positive(&self) -> bool {
        self.months >= 0
            && self.days >= 0
            && self.micros >= 0
            && (self.months > 0 || self.days > 0 || self.micros > 0)
    }

    /// A lower bound-free estimate of the length in microseconds (a month = 30.436875 days,
    /// the Gregorian average), used only to guess k before correcting it exactly.
    fn approx_micros(&self) -> i128 {
        i128::from(self.months) * 2_629_746_000_000
            + i128::from(self.days) * i128::from(DAY)
            + i128::from(self.micros)
    }
}

fn in_range(t: i64) -> bool {
    (MIN_TIMESTAMP..END_TIMESTAMP).contains(&t)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1-12) of year `y` (proleptic Gregorian).
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 2000-01-01 of a civil date (H. Hinnant's algorithm, proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - 10_957
}

/// The civil date of a day number (days since 2000-01-01).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A timestamp from a civil date and time of day in UTC.
pub fn utc(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> i64 {
    days_from_civil(y, m, d) * DAY
        + (i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss)) * 1_000_000
}

/// `t + (months, days, micros)` as PostgreSQL's `timestamptz + interval` computes it in UTC:
/// months first (clamping the day to the target month's length), then days, then microseconds.
/// The parts are i64 so that k × p never overflows before the range check.
pub fn add(t: i64, months: i64, days: i64, micros: i64) -> Result<i64, PeriodError> {
    if !in_range(t) {
        return Err(PeriodError::OutOfRange);
    }
    let mut day = t.div_euclid(DAY);
    let tod = t.rem_euclid(DAY);
    if months != 0 {
        let (y, m, d) = civil_from_days(day);
        let total = y
            .checked_mul(12)
            .and_then(|v| v.checked_add(i64::from(m) - 1))
            .and_then(|v| v.checked_add(months))
            .ok_or(PeriodError::OutOfRange)?;
        let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        // far outside the timestamp range: stop before the day arithmetic could overflow
        if !(-5_000..=300_000).contains(&ny) {
            return Err(PeriodError::OutOfRange);
        }
        day = days_from_civil(ny, nm, d.min(days_in_month(ny, nm)));
    }
    let out = day
        .checked_add(days)
        .and_then(|d| d.checked_mul(DAY))
        .and_then(|v| v.checked_add(tod))
        .and_then(|v| v.checked_add(micros))
        .ok_or(PeriodError::OutOfRange)?;
    if in_range(out) {
        Ok(out)
    } else {
        Err(PeriodError::OutOfRange)
    }
}

/// Boundary k: `anchor + k × p`, from the anchor.
pub fn boundary(p: Period, anchor: i64, k: i64) -> Result<i64, PeriodError> {
    let mul = |x: i64| x.checked_mul(k).ok_or(PeriodError::OutOfRange);
    add(
        anchor,
        mul(i64::from(p.months))?,
        mul(i64::from(p.days))?,
        mul(p.micros)?,
    )
}

/// The index k of the period containing `at`: boundary(k) <= at < boundary(k + 1).
pub fn index(p: Period, anchor: i64, at: i64) -> Result<i64, PeriodError> {
    if !p.is_positive() {
        return Err(PeriodError::NotPositive);
    }
    if !in_range(at) || !in_range(anchor) {
        return Err(PeriodError::OutOfRange);
    }
    // a guess within a few days of the truth (calendar months deviate from their average by
    // at most a few days over any span), then exact correction steps, each computed from the anchor
    let guess = (i128::from(at) - i128::from(anchor)).div_euclid(p.approx_micros());
    let mut k = i64::try_from(guess).map_err(|_| PeriodError::OutOfRange)?;
    while boundary(p, anchor, k)? > at {
        k -= 1;
    }
    while boundary(p, anchor, k + 1)? <= at {
        k += 1;
    }
    Ok(k)
}

/// Start of the period containing `at`. `None` period: calendar months in UTC.
pub fn period_start(p: Option<Period>, anchor: Option<i64>, at: i64) -> Result<i64, PeriodError> {
    let (p, anchor) = resolve(p, anchor);
    boundary(p, anchor, index(p, anchor, at)?)
}

/// The first boundary strictly after `at` (the end of the period containing `at`; for a
/// boundary, the next one).
pub fn next(p: Option<Period>, anchor: Option<i64>, at: i64) -> Result<i64, PeriodError> {
    let (p, anchor) = resolve(p, anchor);
    boundary(p, anchor, index(p, anchor, at)? + 1)
}

fn resolve(p: Option<Period>, anchor: Option<i64>) -> (Period, i64) {
    match p {
        None => (Period::MONTH, 0),
        Some(p) => (p, anchor.unwrap_or(UNIX_EPOCH)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MONTH: Period = Period::MONTH;
    fn p(months: i32, days: i32, micros: i64) -> Period {
        Period {
            months,
            days,
            micros,
        }
    }
    const HOUR: i64 = 3_600_000_000;

    fn show(t: i64) -> String {
        let (y, m, d) = civil_from_days(t.div_euclid(DAY));
        let s = t.rem_euclid(DAY) / 1_000_000;
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    fn bounds(p: Period, anchor: i64, ks: std::ops::RangeInclusive<i64>) -> Vec<String> {
        ks.map(|k| show(boundary(p, anchor, k).unwrap())).collect()
    }

    #[test]
    fn civil_round_trip_and_epochs() {
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 1) * DAY, UNIX_EPOCH);
        assert_eq!(civil_from_days(-1), (1999, 12, 31));
        assert_eq!(civil_from_days(59), (2000, 2, 29)); // 2000 is leap (divisible by 400)
        assert_eq!(days_in_month(2100, 2), 28); // 2100 is not (divisible by 100)
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn jan_31_anchor_clamps_and_never_drifts() {
        let a = utc(2024, 1, 31, 0, 0, 0);
        assert_eq!(
            bounds(MONTH, a, -2..=4),
            [
                "2023-11-30 00:00:00",
                "2023-12-31 00:00:00",
                "2024-01-31 00:00:00",
                "2024-02-29 00:00:00",
                "2024-03-31 00:00:00",
                "2024-04-30 00:00:00",
                "2024-05-31 00:00:00",
            ]
        );
        // the old stepping bug: from Feb 29 one more month is Mar 29; from the anchor it is Mar 31
        assert_eq!(
            show(add(utc(2024, 2, 29, 0, 0, 0), 1, 0, 0).unwrap()),
            "2024-03-29 00:00:00"
        );
        assert_eq!(
            show(next(Some(MONTH), Some(a), utc(2024, 2, 29, 0, 0, 0)).unwrap()),
            "2024-03-31 00:00:00"
        );
        // a non-leap year
        let a = utc(2023, 1, 31, 9, 30, 0);
        assert_eq!(
            bounds(MONTH, a, 0..=2),
            [
                "2023-01-31 09:30:00",
                "2023-02-28 09:30:00",
                "2023-03-31 09:30:00"
            ]
        );
        // centuries: 2100 not leap, 2000 leap
        assert_eq!(
            bounds(MONTH, utc(2100, 1, 31, 0, 0, 0), 1..=2),
            ["2100-02-28 00:00:00", "2100-03-31 00:00:00"]
        );
        assert_eq!(
            bounds(MONTH, utc(2000, 1, 31, 0, 0, 0), 1..=2),
            ["2000-02-29 00:00:00", "2000-03-31 00:00:00"]
        );
    }

    #[test]
    fn feb_29_and_30th_anchors() {
        // Feb 29 anchor: yearly boundaries fall on Feb 28 in common years, Feb 29 in leap years
        let a = utc(2024, 2, 29, 0, 0, 0);
        assert_eq!(
            bounds(p(12, 0, 0), a, 0..=4),
            [
                "2024-02-29 00:00:00",
                "2025-02-28 00:00:00",
                "2026-02-28 00:00:00",
                "2027-02-28 00:00:00",
                "2028-02-29 00:00:00",
            ]
        );
        // monthly from Feb 29: the 29th every month after (never the 28th again until Feb)
        assert_eq!(
            bounds(MONTH, a, 1..=3),
            [
                "2024-03-29 00:00:00",
                "2024-04-29 00:00:00",
                "2024-05-29 00:00:00"
            ]
        );
        assert_eq!(show(boundary(MONTH, a, 12).unwrap()), "2025-02-28 00:00:00");
        // 30th anchor: Feb clamps, March is the 30th again
        let a = utc(2023, 1, 30, 12, 0, 0);
        assert_eq!(
            bounds(MONTH, a, 0..=3),
            [
                "2023-01-30 12:00:00",
                "2023-02-28 12:00:00",
                "2023-03-30 12:00:00",
                "2023-04-30 12:00:00",
            ]
        );
        // quarterly from Nov 30: Feb 28/29, May 30
        assert_eq!(
            bounds(p(3, 0, 0), utc(2023, 11, 30, 0, 0, 0), 1..=2),
            ["2024-02-29 00:00:00", "2024-05-30 00:00:00"]
        );
    }

    #[test]
    fn days_hours_and_mixed() {
        let a = utc(2024, 3, 30, 22, 0, 0);
        // days are 24 hours in UTC (no DST): across the European DST change of 2024-03-31
        assert_eq!(
            bounds(p(0, 1, 0), a, 0..=2),
            [
                "2024-03-30 22:00:00",
                "2024-03-31 22:00:00",
                "2024-04-01 22:00:00"
            ]
        );
        assert_eq!(
            bounds(p(0, 0, HOUR), a, 1..=3),
            [
                "2024-03-30 23:00:00",
                "2024-03-31 00:00:00",
                "2024-03-31 01:00:00"
            ]
        );
        // '1 month 1 day' from Jan 31: k=1 is Feb 29 + 1 day, k=2 is Mar 31 + 2 days
        let a = utc(2024, 1, 31, 0, 0, 0);
        assert_eq!(
            bounds(p(1, 1, 0), a, 1..=2),
            ["2024-03-01 00:00:00", "2024-04-02 00:00:00"]
        );
        // '1 week'
        assert_eq!(
            bounds(p(0, 7, 0), utc(2024, 2, 26, 0, 0, 0), 1..=1),
            ["2024-03-04 00:00:00"]
        );
    }

    #[test]
    fn before_the_anchor_and_calendar_months() {
        let a = utc(2024, 1, 31, 0, 0, 0);
        let at = utc(2023, 3, 15, 0, 0, 0);
        assert_eq!(
            show(period_start(Some(MONTH), Some(a), at).unwrap()),
            "2023-02-28 00:00:00"
        );
        assert_eq!(
            show(next(Some(MONTH), Some(a), at).unwrap()),
            "2023-03-31 00:00:00"
        );
        assert_eq!(index(MONTH, a, at).unwrap(), -11);
        // NULL period: calendar months in UTC, whatever the anchor
        let at = utc(2024, 2, 29, 23, 59, 59);
        assert_eq!(
            show(period_start(None, Some(a), at).unwrap()),
            "2024-02-01 00:00:00"
        );
        assert_eq!(show(next(None, None, at).unwrap()), "2024-03-01 00:00:00");
        assert_eq!(
            show(period_start(None, None, utc(1999, 12, 31, 23, 0, 0)).unwrap()),
            "1999-12-01 00:00:00"
        );
        // NULL anchor: the Unix epoch
        assert_eq!(
            show(period_start(Some(p(0, 1, 0)), None, utc(2024, 5, 5, 5, 0, 0)).unwrap()),
            "2024-05-05 00:00:00"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            period_start(Some(p(0, 0, 0)), Some(0), 0),
            Err(PeriodError::NotPositive)
        );
        assert_eq!(
            period_start(Some(p(1, -1, 0)), Some(0), 0),
            Err(PeriodError::NotPositive)
        );
        assert_eq!(
            period_start(Some(MONTH), Some(0), i64::MAX),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(
            next(Some(MONTH), Some(0), END_TIMESTAMP - 1),
            Err(PeriodError::OutOfRange)
        );
        assert_eq!(boundary(MONTH, 0, i64::MAX), Err(PeriodError::OutOfRange));
    }

    /// Checked by hand with psql (`SET TimeZone = 'UTC'; SELECT anchor + p * k`) on
    /// PostgreSQL 15: the same boundaries, to the microsecond.
    #[test]
    fn agrees_with_postgresql() {
        // (anchor, (months, days, micros), k, PostgreSQL's anchor + p * k)
        type Case = (
            (i64, u32, u32, u32, u32, u32),
            (i32, i32, i64),
            i64,
            &'static str,
        );
        let cases: &[Case] = &[
            ((2024, 1, 31, 0, 0, 0), (1, 0, 0), 1, "2024-02-29 00:00:00"),
            ((2024, 1, 31, 0, 0, 0), (1, 0, 0), 2, "2024-03-31 00:00:00"),
            ((2023, 1, 31, 0, 0, 0), (1, 0, 0), 1, "2023-02-28 00:00:00"),
            ((2024, 1, 31, 0, 0, 0), (1, 0, 0), -1, "2023-12-31 00:00:00"),
            ((2024, 3, 31, 0, 0, 0), (1, 0, 0), -1, "2024-02-29 00:00:00"),
            ((2024, 2, 29, 0, 0, 0), (12, 0, 0), 1, "2025-02-28 00:00:00"),
            ((2024, 2, 29, 0, 0, 0), (12, 0, 0), 4, "2028-02-29 00:00:00"),
            ((2100, 1, 31, 0, 0, 0), (1, 0, 0), 1, "2100-02-28 00:00:00"),
            ((2000, 1, 31, 0, 0, 0), (1, 0, 0), 1, "2000-02-29 00:00:00"),
            ((2024, 1, 31, 0, 0, 0), (1, 1, 0), 1, "2024-03-01 00:00:00"),
            ((2024, 1, 31, 0, 0, 0), (1, 1, 0), 2, "2024-04-02 00:00:00"),
            (
                (2024, 1, 31, 10, 0, 0),
                (1, 0, 3_600_000_000),
                1,
                "2024-02-29 11:00:00",
            ),
            (
                (2024, 1, 31, 10, 0, 0),
                (0, 0, 90 * 60_000_000),
                3,
                "2024-01-31 14:30:00",
            ),
            ((2023, 11, 30, 0, 0, 0), (3, 0, 0), 1, "2024-02-29 00:00:00"),
            (
                (2026, 8, 31, 23, 59, 59),
                (1, 0, 0),
                6,
                "2027-02-28 23:59:59",
            ),
            ((1999, 12, 31, 0, 0, 0), (2, 0, 0), 1, "2000-02-29 00:00:00"),
            (
                (1970, 1, 1, 0, 0, 0),
                (0, 1, 0),
                19_723,
                "2024-01-01 00:00:00",
            ),
        ];
        for &((y, m, d, hh, mi, ss), (months, days, micros), k, want) in cases {
            let got = boundary(p(months, days, micros), utc(y, m, d, hh, mi, ss), k).unwrap();
            assert_eq!(
                show(got),
                want,
                "{y}-{m}-{d} + {k} x ({months}, {days}, {micros})"
            );
        }
    }

    fn arb_period() -> impl Strategy<Value = Period> {
        prop_oneof![
            (1i32..=24).prop_map(|m| p(m, 0, 0)),
            (1i32..=40).prop_map(|d| p(0, d, 0)),
            (HOUR..=200 * HOUR).prop_map(|us| p(0, 0, us)),
            (0i32..=13, 0i32..=31, 0i64..=30 * HOUR)
                .prop_filter("positive", |(m, d, us)| *m > 0 || *d > 0 || *us > 0)
                .prop_map(|(m, d, us)| p(m, d, us)),
        ]
    }

    /// Instants between 1900 and 2200, on whole minutes half of the time (to hit boundaries).
    fn arb_time() -> impl Strategy<Value = i64> {
        let lo = utc(1900, 1, 1, 0, 0, 0);
        let hi = utc(2200, 1, 1, 0, 0, 0);
        prop_oneof![
            (lo..hi),
            (lo / 60_000_000..hi / 60_000_000).prop_map(|m| m * 60_000_000),
            (1900i64..2200, 1u32..=12, 28u32..=31).prop_map(|(y, m, d)| utc(
                y,
                m,
                d.min(days_in_month(y, m)),
                0,
                0,
                0
            )),
        ]
    }

    proptest! {
        #[test]
        fn boundaries_strictly_increase(pp in arb_period(), anchor in arb_time(), k in -400i64..400) {
            prop_assert!(boundary(pp, anchor, k).unwrap() < boundary(pp, anchor, k + 1).unwrap());
            prop_assert_eq!(boundary(pp, anchor, 0).unwrap(), anchor);
        }

        #[test]
        fn start_contains_at(pp in arb_period(), anchor in arb_time(), at in arb_time()) {
            let s = period_start(Some(pp), Some(anchor), at).unwrap();
            let n = next(Some(pp), Some(anchor), at).unwrap();
            prop_assert!(s <= at && at < n);
            // both are boundaries: a boundary is its own period's start
            prop_assert_eq!(period_start(Some(pp), Some(anchor), s).unwrap(), s);
            prop_assert_eq!(period_start(Some(pp), Some(anchor), n).unwrap(), n);
            prop_assert_eq!(next(Some(pp), Some(anchor), s).unwrap(), n);
            // and nothing in between is one
            let k = index(pp, anchor, at).unwrap();
            prop_assert_eq!(boundary(pp, anchor, k).unwrap(), s);
            prop_assert_eq!(boundary(pp, anchor, k + 1).unwrap(), n);
        }

        #[test]
        fn catch_up_equals_single_steps(pp in arb_period(), anchor in arb_time(), n in 0i64..60) {
            // N single steps with next() (what credit_tick does one boundary at a time) land on
            // boundary N, and period_start of any instant after them finds the same boundary
            let mut b = anchor;
            for _ in 0..n {
                b = next(Some(pp), Some(anchor), b).unwrap();
            }
            prop_assert_eq!(b, boundary(pp, anchor, n).unwrap());
            let later = next(Some(pp), Some(anchor), b).unwrap() - 1;
            prop_assert_eq!(period_start(Some(pp), Some(anchor), later).unwrap(), b);
        }

        #[test]
        fn months_clamp_to_month_end(y in 1900i64..2200, m in 1u32..=12, d in 1u32..=31, k in -50i64..50) {
            let d = d.min(days_in_month(y, m));
            let got = boundary(MONTH, utc(y, m, d, 0, 0, 0), k).unwrap();
            let (gy, gm, gd) = civil_from_days(got.div_euclid(DAY));
            let total = y * 12 + i64::from(m) - 1 + k;
            prop_assert_eq!((gy, gm), (total.div_euclid(12), total.rem_euclid(12) as u32 + 1));
            prop_assert_eq!(gd, d.min(days_in_month(gy, gm)));
        }

        #[test]
        fn calendar_months(at in arb_time()) {
            let s = period_start(None, None, at).unwrap();
            let (y, m, d) = civil_from_days(s.div_euclid(DAY));
            let (ay, am, _) = civil_from_days(at.div_euclid(DAY));
            prop_assert_eq!((y, m, d, s.rem_euclid(DAY)), (ay, am, 1, 0));
        }
    }
}
