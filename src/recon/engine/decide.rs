//! The rules in their order: codes first (rules 1 to 4), then student codes and names.

use super::candidates::Ctx;
use super::reading::{read_people, Mention, People};
use super::siblings::{shares_written, sibling_readings};
use super::student::given_name_and_class;
use super::suggestions::{auto, review, review_earlier, suggestion};
use super::{Decision, Evidence, Incoming, Index, ReviewReason, Rule, Suggestion};
use crate::recon::codes::{self, Found};
use crate::recon::memo::{self, Memo};
use crate::recon::period;

/// [`decide`](super::decide) on a memo and order reference already cut to [`MAX_MEMO_CHARS`].
pub(super) fn decide_read(
    index: &Index,
    incoming: &Incoming,
    dismissed: &dyn Fn(i64) -> bool,
) -> Decision {
    let memo = memo::normalise(incoming.memo);
    let people = read_people(index, &memo, incoming.payer_name, incoming.memo);
    let ctx = Ctx {
        index,
        amount: incoming.amount,
        dismissed,
        classes: people.classes.clone(),
        stated: period::read(incoming.memo),
    };
    let decision = rules(index, incoming, &memo, &people, &ctx);
    ctx.render_notes(decision)
}

/// The rules on a transfer read: its memo, the people it names and its context.
fn rules(
    index: &Index,
    incoming: &Incoming,
    memo: &Memo,
    people: &People,
    ctx: &Ctx<'_>,
) -> Decision {
    // Codes: the order reference first (the payer's app put it there), then memo order.
    let mut found: Vec<(codes::Hit, bool)> = Vec::new();
    if let Some(r) = incoming.order_ref {
        found.extend(codes::find(r, &index.prefix).into_iter().map(|h| (h, true)));
    }
    found.extend(
        codes::find(&memo.folded, &index.prefix)
            .into_iter()
            .map(|h| (h, false)),
    );
    let mut coded: Vec<(usize, bool)> = Vec::new();
    let mut dismissed_codes = 0;
    let mut closed_codes = 0;
    let mut earlier: Option<i64> = None;
    // Per mistyped code: the issued codes it may be (any state), and those still open.
    let mut mistyped: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (hit, from_ref) in &found {
        match &hit.found {
            Found::Valid(code) => match index.get(&index.by_code, code.as_str()) {
                Some(&i) if index.invoices[i].is_open() => {
                    if (ctx.dismissed)(index.invoices[i].id) {
                        dismissed_codes += 1;
                    } else if !coded.iter().any(|(c, _)| *c == i) {
                        coded.push((i, *from_ref));
                    }
                }
                known if hit.aligned || *from_ref => {
                    closed_codes += 1;
                    if let Some(&i) = known {
                        earlier = earlier.or(index.invoices[i].paid_by);
                    }
                }
                _ => {}
            },
            Found::WrongCheck { text, corrected } => {
                let issued: Vec<usize> = corrected
                    .iter()
                    .filter_map(|c| index.get(&index.by_code, c.as_str()).copied())
                    .collect();
                let open: Vec<usize> = issued.iter().copied().filter(|&i| ctx.usable(i)).collect();
                // Letters only and no open invoice nearby: a word, not a mistyped code.
                if !open.is_empty() || text.bytes().any(|b| b.is_ascii_digit()) {
                    mistyped.push((issued, open));
                }
            }
        }
    }
    let coded_students: Vec<usize> = coded
        .iter()
        .map(|&(i, _)| index.invoices[i].student)
        .collect();

    // Suggestions from everything read, for any review: built only when one is opened, since
    // most transfers are decided without one.
    let suggest = || -> Vec<Suggestion> {
        let mut suggestions: Vec<Suggestion> = Vec::new();
        for &(i, from_ref) in &coded {
            let mut ev = vec![Evidence::CodeValid];
            if from_ref {
                ev.push(Evidence::OrderRef);
            }
            suggestions.push(ctx.invoice_suggestion(i, ev));
        }
        for (_, open) in &mistyped {
            for &i in open {
                let mut ev = vec![Evidence::CodeWrongCheck];
                let s = index.invoices[i].student;
                if let Some(m) = people.mentions.iter().find(|m| m.students.contains(&s)) {
                    ev.push(m.evidence);
                }
                suggestions.push(ctx.invoice_suggestion(i, ev));
            }
        }
        let mut mentioned: Vec<usize> = Vec::new();
        for m in &people.mentions {
            for &s in &m.students {
                suggestions.extend(ctx.student_suggestions(s, vec![m.evidence]));
                if !mentioned.contains(&s) {
                    mentioned.push(s);
                }
            }
        }
        // The siblings' reading rests on their names as much as each one's does: it carries the
        // weakest of them, so that it ranks beside (and, fitting the amount, above) them. Names
        // that several pupils carry are read as the siblings among them: one family with a pupil
        // under every name.
        let weakest = people
            .mentions
            .iter()
            .map(|m| m.evidence)
            .min_by_key(|e| e.score())
            .unwrap_or(Evidence::SiblingsNamed);
        for group in sibling_readings(index, &people.mentions, &mentioned) {
            suggestions
                .extend(ctx.students_suggestion(&group, vec![Evidence::SiblingsNamed, weakest]));
        }
        for &s in &mentioned {
            if let Some(f) = &index.students[s].family {
                let family: Vec<usize> =
                    index.get(&index.by_family, f).cloned().unwrap_or_default();
                let total: i64 = family.iter().map(|&m| index.total(m)).sum();
                if family.len() > 1 && total == incoming.amount.dong() {
                    suggestions.extend(ctx.students_suggestion(&family, vec![]));
                }
            }
        }
        for &(s, e) in &people.weak {
            suggestions.extend(ctx.student_suggestions(s, vec![e]));
        }
        suggestions
    };

    // Rule 7: a mistyped code with one correction, confirmed by the amount or the name.
    if !mistyped.is_empty() {
        if let [(issued, open)] = mistyped.as_slice() {
            if let ([i], [o], true) = (
                issued.as_slice(),
                open.as_slice(),
                coded.is_empty() && closed_codes == 0 && dismissed_codes == 0,
            ) {
                let inv = &index.invoices[*o];
                let s = inv.student;
                let named = people.mentions.iter().find(|m| m.students == [s]);
                let conflict = people.mentions.iter().any(|m| !m.students.contains(&s));
                let amount_fits = inv.open == incoming.amount;
                if i == o && !conflict && (amount_fits || named.is_some()) {
                    let mut evidence = vec![Evidence::CodeWrongCheck, Evidence::CodeCorrected];
                    if let Some(m) = named {
                        evidence.push(m.evidence);
                    }
                    evidence.push(ctx.amount_evidence(inv.open.dong()));
                    return auto(
                        Rule::MistypedCodeOneCorrection,
                        ctx.fill(&[*o]),
                        evidence,
                        Some(inv.period.clone()),
                    );
                }
            }
        }
        return review(ReviewReason::WrongCheckCharacter, suggest());
    }

    // Rules 1 to 3 of codes: valid codes decide, whatever month the memo also names (the code
    // was printed on one invoice; parents write the month they pay in).
    if !coded.is_empty() {
        if dismissed_codes > 0 || closed_codes > 0 {
            return review(ReviewReason::Ambiguous, suggest());
        }
        let conflict = people
            .mentions
            .iter()
            .any(|m| !m.students.iter().any(|s| coded_students.contains(s)));
        if conflict {
            return review(ReviewReason::CodeNameConflict, suggest());
        }
        let mut evidence = vec![Evidence::CodeValid];
        if coded.iter().any(|&(_, r)| r) {
            evidence.push(Evidence::OrderRef);
        }
        let invoices: Vec<usize> = coded.iter().map(|&(i, _)| i).collect();
        let total = ctx.owed(&invoices);
        let words = Some(ctx.periods(&invoices));
        if invoices.len() == 1 {
            evidence.push(ctx.amount_evidence(total));
            return auto(
                Rule::CodeNamesOneInvoice,
                ctx.fill(&invoices),
                evidence,
                words,
            );
        }
        if index.same_family(&coded_students) && incoming.amount.dong() >= total {
            evidence.push(if incoming.amount.dong() == total {
                Evidence::AmountEqualsSiblingsTotal
            } else {
                Evidence::AmountAboveBalance
            });
            return auto(Rule::CodesOfOneFamily, ctx.fill(&invoices), evidence, words);
        }
        let mut suggestions = suggest();
        suggestions.push(ctx.fitted(suggestion(ctx.fill(&invoices), evidence), total));
        return review(ReviewReason::Ambiguous, suggestions);
    }
    if dismissed_codes > 0 {
        return review(ReviewReason::Dismissed, suggest());
    }
    if closed_codes > 0 {
        return review_earlier(ReviewReason::CodeNotOpen, suggest(), earlier);
    }

    // Rules 5, 6 and 8: student codes and names.
    if people.mentions.is_empty() {
        let suggestions = suggest();
        if let Some(d) = given_name_and_class(ctx, people, &suggestions) {
            return d;
        }
        let reason = if people.weak.is_empty() {
            ReviewReason::Unmatched
        } else {
            ReviewReason::OnlyWeakEvidence
        };
        return review(reason, suggestions);
    }
    if people.maybe_cut {
        return review(ReviewReason::MaybeTruncated, suggest());
    }
    let mut students: Vec<usize> = Vec::new();
    // Where each mention stands, with the student it names: siblings' shares are read beside.
    let mut named_at: Vec<(usize, &Mention)> = Vec::new();
    let mut evidence: Vec<Evidence> = Vec::new();
    for (k, m) in people.mentions.iter().enumerate() {
        let chosen: Vec<usize> = if m.students.len() == 1 {
            m.students.clone()
        } else {
            // Namesakes: only the class written next to the name tells them apart.
            let near = people.classes_near(k);
            m.students
                .iter()
                .copied()
                .filter(|&s| near.contains(&index.students[s].class.as_str()))
                .collect()
        };
        let [s] = chosen.as_slice() else {
            return review(ReviewReason::Ambiguous, suggest());
        };
        if !students.contains(s) {
            students.push(*s);
        }
        named_at.push((*s, m));
        evidence.push(m.evidence);
    }
    evidence.sort();
    if students.len() > 1 && !index.same_family(&students) {
        return review(ReviewReason::Ambiguous, suggest());
    }
    let foreign_class = ctx
        .classes
        .iter()
        .any(|c| !students.iter().any(|&s| index.students[s].class == *c));
    if foreign_class {
        return review(ReviewReason::ClassMismatch, suggest());
    }
    if !ctx.classes.is_empty() {
        evidence.push(Evidence::ClassMatches);
    }
    match students.as_slice() {
        [s] => ctx.decide_student(*s, evidence, &suggest),
        _ => {
            let shares = shares_written(memo, incoming, &named_at, &students);
            ctx.decide_siblings(&students, &shares, evidence, &suggest)
        }
    }
}
