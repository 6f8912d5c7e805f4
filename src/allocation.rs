//! Grant allocation (pure Rust, no PostgreSQL).
//!
//! A debit consumes the wallet's spendable grants in *consumption order*: priority ascending,
//! then `expires_at` ascending with never-expiring grants last, then oldest (lowest id) first.
//! The SQL walk returns grants in that order; [`consumption_order`] is the same rule in Rust,
//! used by tests and by callers that merge lots.
//!
//! Returns (releases and refunds) go back to the exact grants that paid, in *reverse*
//! consumption order, never more than a grant gave.

use rust_decimal::Decimal;
use std::cmp::Ordering;

/// One spendable lot as seen by a debit.
#[derive(Debug, Clone, PartialEq)]
pub struct Lot {
    pub grant_id: i64,
    pub wallet_id: i64,
    pub priority: i32,
    /// Microseconds since the epoch; `None` never expires.
    pub expires_at: Option<i64>,
    pub available: Decimal,
}

/// A part of a debit taken from one grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Take {
    pub grant_id: i64,
    pub wallet_id: i64,
    pub amount: Decimal,
}

/// Compare two lots by consumption order.
pub fn consumption_order(a: &Lot, b: &Lot) -> Ordering {
    a.priority
        .cmp(&b.priority)
        .then_with(|| match (a.expires_at, b.expires_at) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.grant_id.cmp(&b.grant_id))
}

/// Take `need` from `lots` (already in consumption order). Returns the takes and the shortfall
/// (zero when fully covered). Lots with nothing available are skipped.
pub fn allocate(lots: &[Lot], need: Decimal) -> (Vec<Take>, Decimal) {
    let mut left = need;
    let mut takes = Vec::new();
    for lot in lots {
        if left <= Decimal::ZERO {
            break;
        }
        if lot.available <= Decimal::ZERO {
            continue;
        }
        let amount = lot.available.min(left);
        takes.push(Take {
            grant_id: lot.grant_id,
            wallet_id: lot.wallet_id,
            amount,
        });
        left -= amount;
    }
    (takes, left.max(Decimal::ZERO))
}

/// Give back `amount` to the grants in `paid` (in the consumption order they paid), in reverse
/// order, never more than each grant paid minus what was already returned to it
/// (`returned`, same length as `paid`). Returns the parts and whatever could not be returned.
pub fn give_back(paid: &[Take], returned: &[Decimal], amount: Decimal) -> (Vec<Take>, Decimal) {
    let mut left = amount;
    let mut parts = Vec::new();
    for (take, already) in paid.iter().zip(returned.iter()).rev() {
        if left <= Decimal::ZERO {
            break;
        }
        let room = take.amount - *already;
        if room <= Decimal::ZERO {
            continue;
        }
        let part = room.min(left);
        parts.push(Take {
            grant_id: take.grant_id,
            wallet_id: take.wallet_id,
            amount: part,
        });
        left -= part;
    }
    (parts, left.max(Decimal::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lot(id: i64, priority: i32, exp: Option<i64>, avail: i64) -> Lot {
        Lot {
            grant_id: id,
            wallet_id: 1,
            priority,
            expires_at: exp,
            available: Decimal::from(avail),
        }
    }

    #[test]
    fn order_priority_then_expiry_then_age() {
        let mut lots = [
            lot(1, 50, None, 1),
            lot(2, 10, None, 1),
            lot(3, 10, Some(100), 1),
            lot(4, 10, Some(50), 1),
            lot(5, 10, Some(50), 1),
        ];
        lots.sort_by(consumption_order);
        let ids: Vec<i64> = lots.iter().map(|l| l.grant_id).collect();
        assert_eq!(ids, vec![4, 5, 3, 2, 1]);
    }

    #[test]
    fn allocate_spans_grants() {
        let lots = vec![lot(1, 1, None, 5), lot(2, 2, None, 0), lot(3, 3, None, 10)];
        let (takes, short) = allocate(&lots, Decimal::from(8));
        assert_eq!(short, Decimal::ZERO);
        assert_eq!(takes.len(), 2);
        assert_eq!(takes[0].amount, Decimal::from(5));
        assert_eq!(takes[1].grant_id, 3);
        assert_eq!(takes[1].amount, Decimal::from(3));
        let (_, short) = allocate(&lots, Decimal::from(20));
        assert_eq!(short, Decimal::from(5));
    }

    #[test]
    fn give_back_reverse_order() {
        let paid = vec![
            Take {
                grant_id: 1,
                wallet_id: 1,
                amount: Decimal::from(5),
            },
            Take {
                grant_id: 2,
                wallet_id: 1,
                amount: Decimal::from(3),
            },
        ];
        let (parts, left) = give_back(&paid, &[Decimal::ZERO, Decimal::ZERO], Decimal::from(4));
        assert_eq!(left, Decimal::ZERO);
        assert_eq!(parts[0].grant_id, 2);
        assert_eq!(parts[0].amount, Decimal::from(3));
        assert_eq!(parts[1].grant_id, 1);
        assert_eq!(parts[1].amount, Decimal::from(1));
        let (_, left) = give_back(
            &paid,
            &[Decimal::from(5), Decimal::from(2)],
            Decimal::from(4),
        );
        assert_eq!(left, Decimal::from(3));
    }

    fn arb_lots() -> impl Strategy<Value = Vec<Lot>> {
        prop::collection::vec(
            (0i32..5, prop::option::of(0i64..10), 0i64..1000, 0u32..3),
            0..20,
        )
        .prop_map(|v| {
            let mut lots: Vec<Lot> = v
                .into_iter()
                .enumerate()
                .map(|(i, (p, e, a, s))| Lot {
                    grant_id: i as i64 + 1,
                    wallet_id: 1,
                    priority: p,
                    expires_at: e,
                    available: Decimal::new(a, s),
                })
                .collect();
            lots.sort_by(consumption_order);
            lots
        })
    }

    proptest! {
        #[test]
        fn allocation_invariants(lots in arb_lots(), need_m in 1i64..5000, need_s in 0u32..3) {
            let need = Decimal::new(need_m, need_s);
            let (takes, short) = allocate(&lots, need);
            let total: Decimal = takes.iter().map(|t| t.amount).sum();
            let avail: Decimal = lots.iter().map(|l| l.available).sum();
            // total allocated + shortfall = cost, and never more than available
            prop_assert_eq!(total + short, need);
            prop_assert!(total <= avail);
            for t in &takes {
                let l = lots.iter().find(|l| l.grant_id == t.grant_id).unwrap();
                prop_assert!(t.amount > Decimal::ZERO && t.amount <= l.available);
            }
            // order respected: every lot before the last one used is exhausted
            if let Some(last) = takes.last() {
                let pos = lots.iter().position(|l| l.grant_id == last.grant_id).unwrap();
                for l in &lots[..pos] {
                    let used: Decimal = takes.iter().filter(|t| t.grant_id == l.grant_id).map(|t| t.amount).sum();
                    prop_assert_eq!(used, l.available);
                }
            }
        }

        #[test]
        fn give_back_conserves(lots in arb_lots(), need in 1i64..3000, refunds in prop::collection::vec(1i64..800, 0..6)) {
            let (paid, _) = allocate(&lots, Decimal::from(need));
            let spent: Decimal = paid.iter().map(|t| t.amount).sum();
            let mut returned = vec![Decimal::ZERO; paid.len()];
            let mut total_back = Decimal::ZERO;
            for r in refunds {
                let (parts, left) = give_back(&paid, &returned, Decimal::from(r));
                let back: Decimal = parts.iter().map(|p| p.amount).sum();
                prop_assert_eq!(back + left, Decimal::from(r));
                for p in parts {
                    let i = paid.iter().position(|t| t.grant_id == p.grant_id).unwrap();
                    returned[i] += p.amount;
                    prop_assert!(returned[i] <= paid[i].amount);
                }
                total_back += back;
            }
            prop_assert!(total_back <= spent);
        }
    }
}
