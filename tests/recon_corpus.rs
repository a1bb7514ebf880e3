//! The matching engine against a labelled corpus of bank notifications
//! (`fixtures/recon/corpus.rs`, described in `fixtures/recon/README.md`).
//!
//! The bar: no automatic allocation differs from what a careful person would allocate, and at
//! least 95 % of the notifications a careful person could match from the memo alone are matched
//! automatically. `cargo test --test recon_corpus -- --nocapture` prints the figures.

#[path = "../fixtures/recon/corpus.rs"]
mod corpus;

use corpus::{generate, Kind, SEED};
use feerecon::domain::code::PaymentCode;
use feerecon::recon::{decide, Decision, Incoming, Index};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Generated once for all tests of this binary.
fn shared() -> &'static corpus::Corpus {
    static CORPUS: OnceLock<corpus::Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| generate(SEED))
}

/// Share of memo-matchable notifications that must be allocated automatically.
const MIN_AUTO_RATE: f64 = 0.95;
const MIN_ITEMS: usize = 5_000;

#[derive(Default, Clone, Copy)]
struct Tally {
    items: usize,
    matchable: usize,
    auto: usize,
    auto_matchable: usize,
    wrong: usize,
    /// Reviews of a payment with a known answer whose first suggestion is that answer.
    review_known: usize,
    review_top1: usize,
    review_top5: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.items += o.items;
        self.matchable += o.matchable;
        self.auto += o.auto;
        self.auto_matchable += o.auto_matchable;
        self.wrong += o.wrong;
        self.review_known += o.review_known;
        self.review_top1 += o.review_top1;
        self.review_top5 += o.review_top5;
    }
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".to_string()
    } else {
        format!("{:.1} %", 100.0 * a as f64 / b as f64)
    }
}

#[test]
fn engine_against_labelled_corpus() {
    let started = Instant::now();
    let corpus = shared();
    let generated = started.elapsed();

    let mut by_kind: BTreeMap<Kind, Tally> = BTreeMap::new();
    let mut truncated = Tally::default();
    let mut diacritics = Tally::default();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrong_examples: Vec<String> = Vec::new();
    let mut missed_examples: Vec<String> = Vec::new();
    let mut build_time = Duration::ZERO;
    let mut decide_time = Duration::ZERO;
    let mut largest_index = 0;

    for batch in &corpus.batches {
        let t = Instant::now();
        let mut index = Index::build(&corpus.prefix, batch.open.clone());
        build_time += t.elapsed();
        largest_index = largest_index.max(batch.open.len());
        for item in &batch.items {
            let incoming = Incoming {
                amount: item.amount,
                memo: &item.memo,
                order_ref: item.order_ref.as_deref(),
                payer_name: item.payer_name.as_deref(),
            };
            let t = Instant::now();
            let decision = decide(&index, &incoming, &|_| false);
            decide_time += t.elapsed();

            let mut tally = Tally {
                items: 1,
                matchable: usize::from(item.matchable_from_memo),
                ..Tally::default()
            };
            match &decision {
                Decision::Auto { allocations, .. } => {
                    tally.auto = 1;
                    tally.auto_matchable = usize::from(item.matchable_from_memo);
                    if *allocations != item.expected {
                        tally.wrong = 1;
                        let who = |list: &[(i64, feerecon::domain::money::Vnd)]| -> Vec<String> {
                            list.iter()
                                .map(|(id, _)| {
                                    let inv = &corpus.invoices[(*id - 1) as usize];
                                    let st = &corpus.students[inv.student];
                                    format!("{} {} {}", st.name, st.class, inv.period)
                                })
                                .collect()
                        };
                        wrong_examples.push(format!(
                            "{:?} {} {:?} {:?}: got {:?} {:?}, expected {:?} {:?}",
                            item.kind,
                            item.amount,
                            item.memo,
                            item.payer_name,
                            allocations,
                            who(allocations),
                            item.expected,
                            who(&item.expected),
                        ));
                    }
                }
                Decision::Review {
                    reason,
                    suggestions,
                    ..
                } => {
                    *reasons.entry(format!("{reason:?}")).or_default() += 1;
                    if !item.expected.is_empty() {
                        tally.review_known = 1;
                        let hit = |k: usize| {
                            suggestions
                                .iter()
                                .take(k)
                                .any(|s| s.allocations == item.expected)
                        };
                        tally.review_top1 = usize::from(hit(1));
                        tally.review_top5 = usize::from(hit(5));
                    }
                    if item.matchable_from_memo && missed_examples.len() < 15 {
                        missed_examples.push(format!(
                            "{:?} {reason:?} {} {:?} payer {:?}",
                            item.kind, item.amount, item.memo, item.payer_name
                        ));
                    }
                }
            }
            by_kind.entry(item.kind).or_default().add(&tally);
            if item.truncated {
                truncated.add(&tally);
            }
            if item.diacritics {
                diacritics.add(&tally);
            }
            // The accountant's final answer, so later notifications of the batch see it.
            for (id, amount) in &item.expected {
                index.settle_by(*id, *amount, Some(item.id));
            }
        }
    }

    let mut all = Tally::default();
    for t in by_kind.values() {
        all.add(t);
    }
    println!(
        "\nrecon corpus: {} notifications in {} monthly batches ({} to {}), {} students, {} invoices, up to {} open at once",
        all.items,
        corpus.batches.len(),
        corpus.batches.first().map_or("", |b| b.period.as_str()),
        corpus.batches.last().map_or("", |b| b.period.as_str()),
        corpus.students.len(),
        corpus.invoices.len(),
        largest_index
    );
    println!(
        "{:<16} {:>6} {:>9} {:>6} {:>6} {:>10} {:>6} {:>9} {:>9}",
        "kind", "items", "matchable", "auto", "wrong", "auto rate", "auto%", "rev top1", "rev top5"
    );
    let row = |name: &str, t: &Tally| {
        println!(
            "{:<16} {:>6} {:>9} {:>6} {:>6} {:>10} {:>6} {:>9} {:>9}",
            name,
            t.items,
            t.matchable,
            t.auto,
            t.wrong,
            pct(t.auto_matchable, t.matchable),
            pct(t.auto, t.items),
            pct(t.review_top1, t.review_known),
            pct(t.review_top5, t.review_known),
        );
    };
    for (kind, t) in &by_kind {
        row(&format!("{kind:?}"), t);
    }
    row("(truncated)", &truncated);
    row("(diacritics)", &diacritics);
    row("ALL", &all);
    println!(
        "precision {} ({} of {} automatic allocations right); auto rate {} of memo-matchable; {} of all",
        pct(all.auto - all.wrong, all.auto),
        all.auto - all.wrong,
        all.auto,
        pct(all.auto_matchable, all.matchable),
        pct(all.auto, all.items),
    );
    println!("review reasons: {reasons:?}");
    println!(
        "generate {generated:?}; index builds {build_time:?} for {} batches; decide {:?} per notification (this build profile)",
        corpus.batches.len(),
        decide_time / all.items.max(1) as u32
    );
    for m in &missed_examples {
        println!("  matchable, reviewed: {m}");
    }
    for w in &wrong_examples {
        println!("  WRONG: {w}");
    }

    assert!(all.items >= MIN_ITEMS, "only {} notifications", all.items);
    assert_eq!(
        all.wrong,
        0,
        "wrong automatic allocations:\n{}",
        wrong_examples.join("\n")
    );
    let rate = all.auto_matchable as f64 / all.matchable.max(1) as f64;
    assert!(
        rate >= MIN_AUTO_RATE,
        "automatic rate {:.3} of memo-matchable notifications is below {MIN_AUTO_RATE}",
        rate
    );
}

#[test]
fn corpus_is_deterministic() {
    let (a, b) = (shared(), &generate(SEED));
    let memos = |c: &corpus::Corpus| -> Vec<String> {
        c.batches
            .iter()
            .flat_map(|b| {
                b.items
                    .iter()
                    .map(|i| format!("{}|{}|{:?}", i.memo, i.amount, i.expected))
            })
            .collect()
    };
    assert_eq!(memos(a), memos(b));
}

/// 10,000 open invoices: the index builds in well under 50 ms in a release build; in this
/// profile the figure is printed, not asserted, since debug builds are several times slower.
#[test]
fn index_for_ten_thousand_invoices() {
    let corpus = shared();
    let mut invoices = Vec::new();
    for batch in &corpus.batches {
        invoices.extend(batch.open.iter().cloned());
    }
    let mut seen = std::collections::BTreeSet::new();
    invoices.retain(|i| seen.insert(i.invoice_id));
    // A second school-year's worth of the same students under new ids, to pass 10,000.
    let copies: Vec<_> = invoices
        .iter()
        .map(|i| {
            let mut c = i.clone();
            c.invoice_id += 1_000_000;
            c.student_id += 1_000_000;
            c.student_code = format!("{}B", c.student_code);
            c.code = PaymentCode::generate(&corpus.prefix, c.invoice_id as u64).unwrap();
            c
        })
        .collect();
    invoices.extend(copies);
    invoices.truncate(10_000);
    let n = invoices.len();
    let t = Instant::now();
    let index = Index::build(&corpus.prefix, invoices);
    let built = t.elapsed();
    let memo = "MBVCB.3278126542.012345.HOC PHI THANG 9 CHO CON NGUYEN VAN AN LOP 6A1.CT tu 0071000123456 NGUYEN VAN BINH";
    let incoming = Incoming {
        amount: feerecon::domain::money::Vnd::new(935_000).unwrap(),
        memo,
        order_ref: None,
        payer_name: None,
    };
    let t = Instant::now();
    for _ in 0..100 {
        let _ = decide(&index, &incoming, &|_| false);
    }
    println!(
        "index of {n} invoices built in {built:?}; one decision in {:?} (this build profile)",
        t.elapsed() / 100
    );
    assert!(n >= 10_000);
}
