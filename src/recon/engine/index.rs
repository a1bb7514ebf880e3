//! The per-school index: every invoice, arranged for lookups by code, student code, name, class
//! and family.

use super::{OpenInvoice, MAX_SQUEEZED_LEN};
use crate::domain::code::{PaymentCode, SchoolPrefix};
use crate::domain::money::Vnd;
use crate::recon::memo;
use crate::recon::names;
use crate::recon::period;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Clone)]
pub(super) struct Inv {
    pub(super) id: i64,
    code: PaymentCode,
    pub(super) student: usize,
    pub(super) open: Vnd,
    pub(super) period: String,
    pub(super) month: Option<period::Month>,
    pub(super) voided: bool,
    pub(super) paid_by: Option<i64>,
}

impl Inv {
    pub(super) fn is_open(&self) -> bool {
        self.open > Vnd::ZERO && !self.voided
    }

    pub(super) fn is_paid(&self) -> bool {
        self.open == Vnd::ZERO && !self.voided
    }
}

#[derive(Debug, Clone)]
pub(super) struct Student {
    pub(super) name: Vec<String>,
    pub(super) class: String,
    pub(super) family: Option<String>,
    /// Every invoice, whatever its state: oldest period first, then invoice id.
    pub(super) invoices: Vec<usize>,
}

/// A school's invoices (open, paid and voided), arranged for lookups by code, student code, name, class and
/// family, so that deciding a payment never scans all invoices.
#[derive(Debug, Clone)]
pub struct Index {
    pub(super) prefix: SchoolPrefix,
    pub(super) invoices: Vec<Inv>,
    pub(super) students: Vec<Student>,
    by_id: HashMap<i64, usize>,
    pub(super) by_code: HashMap<String, usize>,
    pub(super) by_student_code: HashMap<String, usize>,
    /// Order-free key of all syllables.
    pub(super) by_name: KeyMap,
    /// The same with one syllable (≥ 3 letters) missing one letter.
    pub(super) by_name_typo: KeyMap,
    /// The name run together, in written order.
    pub(super) by_squeezed: KeyMap,
    pub(super) by_squeezed_typo: KeyMap,
    /// Shortest and longest squeezed name.
    pub(super) squeezed_len: (usize, usize),
    /// Order-free key of middle and given name.
    pub(super) by_tail: KeyMap,
    /// Order-free key of all syllables but the given name, for names of three or more: a memo
    /// cut inside the given name still names its beginning.
    pub(super) by_head: KeyMap,
    pub(super) by_given: HashMap<String, Vec<usize>>,
    pub(super) by_class: HashMap<String, Vec<usize>>,
    pub(super) by_family: HashMap<String, Vec<usize>>,
    /// Every syllable of every name: a memo word outside it may be a typo, one inside is not.
    vocabulary: HashSet<String>,
    /// Every strict beginning of those syllables: a memo ending in one may have been cut inside
    /// a name.
    pub(super) beginnings: HashSet<String>,
    /// Invoices that an earlier payment still in review claims by its month written (rule
    /// `period_in_review`), with that payment (`None` when not known; the batch planner names
    /// one not recorded yet by a stand-in, see `plan::intake`). Set by whoever decides, from
    /// what the store loaded; not part of the book.
    pub(super) claims: HashMap<i64, Option<i64>>,
    pub(super) probes: Probes,
}

/// How many hash look-ups reading memos made, and typo keys it made from memo words (a key
/// costs as much to make as to look up, and a word of n letters gives n of them): what a memo
/// costs, counted rather than timed, so that tests can bound it. Always compiled: one relaxed
/// atomic add beside each look-up, which hashes its key anyway. Atomic rather than a `Cell` so
/// that an `Index` stays `Sync` (the store holds one across awaits).
#[derive(Debug, Default)]
pub(super) struct Probes(pub(super) AtomicU64);

impl Clone for Probes {
    fn clone(&self) -> Self {
        Probes(AtomicU64::new(self.0.load(Relaxed)))
    }
}

/// The name keys are already well-mixed 64-bit hashes: hashing them again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this hasher; any other input still hashes soundly.
        self.0 = fnv(bytes.iter().copied()) ^ self.0.rotate_left(5);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, Vec<usize>, std::hash::BuildHasherDefault<KeyHasher>>;

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Spreads a word's hash so that sums of word keys make a good order-free key.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn word_key(w: &str) -> u64 {
    mix(fnv(w.bytes()))
}

/// Key of `w` with the byte at `skip` left out.
pub(super) fn word_key_without(w: &str, skip: usize) -> u64 {
    mix(fnv(w
        .bytes()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .map(|(_, b)| b)))
}

pub(super) fn squeezed_key(w: &str) -> u64 {
    mix(fnv(w.bytes()))
}

pub(super) fn squeezed_key_without(w: &str, skip: usize) -> u64 {
    mix(fnv(w
        .bytes()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .map(|(_, b)| b)))
}

pub(super) fn bag_key(keys: impl Iterator<Item = u64>) -> u64 {
    keys.fold(0u64, u64::wrapping_add)
}

fn push_once(map: &mut KeyMap, key: u64, s: usize) {
    let list = map.entry(key).or_default();
    if list.last() != Some(&s) {
        list.push(s);
    }
}

fn canonical_class(class: &str) -> String {
    names::canonical_class(class).unwrap_or_else(|| memo::fold(class).replace(' ', ""))
}

fn squeeze_id(text: &str) -> String {
    memo::fold(text).replace(' ', "")
}

impl Index {
    /// Builds a school's index from all its invoices, whatever their state; a student's name,
    /// class and family are taken from their first invoice.
    pub fn build(prefix: &SchoolPrefix, invoices: Vec<OpenInvoice>) -> Index {
        let mut grouped: BTreeMap<i64, Vec<OpenInvoice>> = BTreeMap::new();
        for inv in invoices {
            grouped.entry(inv.student_id).or_default().push(inv);
        }
        let mut index = Index {
            prefix: prefix.clone(),
            invoices: Vec::new(),
            students: Vec::with_capacity(grouped.len()),
            by_id: HashMap::new(),
            by_code: HashMap::new(),
            by_student_code: HashMap::new(),
            by_name: KeyMap::default(),
            by_name_typo: KeyMap::default(),
            by_squeezed: KeyMap::default(),
            by_squeezed_typo: KeyMap::default(),
            squeezed_len: (usize::MAX, 0),
            by_tail: KeyMap::default(),
            by_head: KeyMap::default(),
            by_given: HashMap::new(),
            by_class: HashMap::new(),
            by_family: HashMap::new(),
            vocabulary: HashSet::new(),
            beginnings: HashSet::new(),
            claims: HashMap::new(),
            probes: Probes::default(),
        };
        for (_, mut invs) in grouped {
            invs.sort_by(|a, b| (&a.period, a.invoice_id).cmp(&(&b.period, b.invoice_id)));
            let s = index.students.len();
            let first = &invs[0];
            let name = names::name_tokens(&first.student_name);
            let class = canonical_class(&first.class_name);
            let family = first
                .family_key
                .as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string);
            let student_code = squeeze_id(&first.student_code);
            if !student_code.is_empty() {
                index.by_student_code.insert(student_code, s);
            }
            index.index_name(s, &name);
            index.by_class.entry(class.clone()).or_default().push(s);
            if let Some(f) = &family {
                index.by_family.entry(f.clone()).or_default().push(s);
            }
            let mut ids = Vec::with_capacity(invs.len());
            for inv in invs {
                let i = index.invoices.len();
                index.by_id.insert(inv.invoice_id, i);
                index.by_code.insert(inv.code.as_str().to_string(), i);
                index.invoices.push(Inv {
                    id: inv.invoice_id,
                    code: inv.code,
                    student: s,
                    open: if inv.voided { Vnd::ZERO } else { inv.open },
                    month: period::month_of(&inv.period),
                    period: inv.period,
                    voided: inv.voided,
                    paid_by: inv.paid_by,
                });
                ids.push(i);
            }
            index.students.push(Student {
                name,
                class,
                family,
                invoices: ids,
            });
        }
        index
    }

    fn index_name(&mut self, s: usize, name: &[String]) {
        let k = name.len();
        if k < 2 {
            return;
        }
        let keys: Vec<u64> = name.iter().map(|w| word_key(w)).collect();
        let bag = bag_key(keys.iter().copied());
        push_once(&mut self.by_name, bag, s);
        for (w, &key) in name.iter().zip(&keys) {
            self.vocabulary.insert(w.clone());
            for end in 1..w.len() {
                if let Some(b) = w.get(..end) {
                    self.beginnings.insert(b.to_string());
                }
            }
            if (names::MIN_TYPO_LEN..=names::MAX_TYPO_LEN).contains(&w.len()) {
                for skip in 0..w.len() {
                    let variant = bag
                        .wrapping_sub(key)
                        .wrapping_add(word_key_without(w, skip));
                    push_once(&mut self.by_name_typo, variant, s);
                }
            }
        }
        let squeezed = name.concat();
        if squeezed.len() <= MAX_SQUEEZED_LEN {
            push_once(&mut self.by_squeezed, squeezed_key(&squeezed), s);
            for skip in 0..squeezed.len() {
                push_once(
                    &mut self.by_squeezed_typo,
                    squeezed_key_without(&squeezed, skip),
                    s,
                );
            }
            self.squeezed_len = (
                self.squeezed_len.0.min(squeezed.len()),
                self.squeezed_len.1.max(squeezed.len()),
            );
        }
        push_once(&mut self.by_tail, keys[k - 2].wrapping_add(keys[k - 1]), s);
        if k >= 3 {
            push_once(&mut self.by_head, bag_key(keys[..k - 1].iter().copied()), s);
        }
        let given = self.by_given.entry(name[k - 1].clone()).or_default();
        if given.last() != Some(&s) {
            given.push(s);
        }
    }

    pub fn prefix(&self) -> &SchoolPrefix {
        &self.prefix
    }

    /// Hash look-ups and typo keys made so far reading memos against this index: what memos
    /// cost, counted rather than timed (see "Limits" in the module docs).
    pub fn probes(&self) -> u64 {
        self.probes.0.load(Relaxed)
    }

    /// `map.get(key)`, counted.
    pub(super) fn get<'m, K, Q, V, S>(&self, map: &'m HashMap<K, V, S>, key: &Q) -> Option<&'m V>
    where
        K: Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ?Sized,
        S: BuildHasher,
    {
        self.probes.0.fetch_add(1, Relaxed);
        map.get(key)
    }

    /// The students under a name key, counted.
    pub(super) fn keyed<'m>(&self, map: &'m KeyMap, key: u64) -> &'m [usize] {
        self.get(map, &key).map_or(&[], Vec::as_slice)
    }

    /// Counts `n` typo keys made from a memo word.
    pub(super) fn made_keys(&self, n: usize) {
        self.probes.0.fetch_add(n as u64, Relaxed);
    }

    /// `w` is a syllable of some name, counted.
    pub(super) fn known(&self, w: &str) -> bool {
        self.probes.0.fetch_add(1, Relaxed);
        self.vocabulary.contains(w)
    }

    /// How many invoices the index holds, whatever their state.
    pub fn len(&self) -> usize {
        self.invoices.len()
    }

    /// How many of them are open.
    pub fn open_count(&self) -> usize {
        self.invoices.iter().filter(|i| i.is_open()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An invoice's payment code (`None` if the index never held it).
    pub fn code(&self, invoice_id: i64) -> Option<&PaymentCode> {
        self.by_id.get(&invoice_id).map(|&i| &self.invoices[i].code)
    }

    /// What is still owed on an invoice (`None` if the index never held it).
    pub fn open(&self, invoice_id: i64) -> Option<Vnd> {
        self.by_id.get(&invoice_id).map(|&i| self.invoices[i].open)
    }

    /// Records an allocation made since the index was built, so that later payments of the same
    /// batch see the new balance; an invoice owed nothing more is paid from then on.
    pub fn settle(&mut self, invoice_id: i64, amount: Vnd) -> bool {
        self.settle_by(invoice_id, amount, None)
    }

    /// [`Index::settle`], naming the payment when it is known, so that a later memo naming the
    /// same month can name it. A negative amount (a reversal) opens the invoice again.
    pub fn settle_by(&mut self, invoice_id: i64, amount: Vnd, payment: Option<i64>) -> bool {
        let Some(&i) = self.by_id.get(&invoice_id) else {
            return false;
        };
        let inv = &mut self.invoices[i];
        if inv.voided {
            return true;
        }
        inv.open = inv
            .open
            .checked_sub(amount)
            .filter(|v| *v > Vnd::ZERO)
            .unwrap_or(Vnd::ZERO);
        if payment.is_some() && amount > Vnd::ZERO {
            inv.paid_by = payment;
        }
        true
    }

    /// Replaces the invoices that earlier payments still in review claim: those of each one's
    /// top suggestion, the reading an accountant would confirm first (the month its memo
    /// names, or the pupil's oldest open month when it names none). (invoice, the payment
    /// claiming it, as the review will name it; `None` when not known); the first claim of an
    /// invoice is kept.
    pub fn set_claims(&mut self, claims: impl IntoIterator<Item = (i64, Option<i64>)>) {
        self.claims.clear();
        for (invoice_id, payment) in claims {
            self.claim(invoice_id, payment);
        }
    }

    /// Adds a claim (see [`Index::set_claims`]), keeping an earlier one of the same invoice.
    pub fn claim(&mut self, invoice_id: i64, payment: Option<i64>) {
        self.claims.entry(invoice_id).or_insert(payment);
    }

    /// Records that an invoice was voided since the index was built.
    pub fn void(&mut self, invoice_id: i64) -> bool {
        let Some(&i) = self.by_id.get(&invoice_id) else {
            return false;
        };
        let inv = &mut self.invoices[i];
        inv.voided = true;
        inv.open = Vnd::ZERO;
        true
    }

    pub(super) fn open_invoices(&self, s: usize) -> impl Iterator<Item = usize> + '_ {
        self.students[s]
            .invoices
            .iter()
            .copied()
            .filter(|&i| self.invoices[i].is_open())
    }

    pub(super) fn total(&self, s: usize) -> i64 {
        self.open_invoices(s)
            .map(|i| self.invoices[i].open.dong())
            .sum()
    }

    pub(super) fn same_family(&self, students: &[usize]) -> bool {
        let Some(&first) = students.first() else {
            return false;
        };
        students.iter().all(|&s| s == first)
            || students.iter().all(|&s| {
                self.students[s].family.is_some()
                    && self.students[s].family == self.students[first].family
            })
    }
}
