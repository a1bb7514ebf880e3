//! Transfer memos as banks deliver them, reduced to what a parent wrote.
//!
//! Banks strip diacritics (or not), upper-case, cut the memo at 70 to 140 characters and wrap
//! it in their own references: `MBVCB.3278126542.012345.` in front, `FT25252…`, `Trace 123456`
//! or `- Ma GD ACSP/ ab1234` behind, the sender's account number in between. [`fold`] gives
//! the comparable form (codes are searched there, since a code may be split by any separator);
//! [`normalise`] also drops the bank's wrapping so that names and classes are read only from
//! the parent's words.

use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// A digit run this long is an account number, a phone number or a bank reference, never a
/// name or a class: kept aside (it may still be a student's ID) but not read as words.
pub const LONG_DIGITS: usize = 6;

/// Bank and e-wallet names that banks put into memos (`tai VCB`).
const BANK_WORDS: &[&str] = &[
    "VCB",
    "BIDV",
    "ACB",
    "TCB",
    "VTB",
    "MBB",
    "VPB",
    "TPB",
    "SHB",
    "AGRIBANK",
    "VIETCOMBANK",
    "VIETINBANK",
    "TECHCOMBANK",
    "SACOMBANK",
    "MBBANK",
    "NAPAS",
];

/// Words parents add around the reference that say nothing about whom they pay for. Kept as
/// tokens (a name may contain the same syllable: Tiến, Thanh, Toàn) but flagged as filler;
/// syllables that are also common given names (An, Nam, Tiến, Trà) are filler only in phrases.
const FILLER_PHRASES: &[&[&str]] = &[
    &["CHUYEN", "TIEN"],
    &["CHUYEN", "KHOAN"],
    &["THANH", "TOAN"],
    &["TRA", "TIEN"],
    &["NOP", "TIEN"],
    &["DONG", "TIEN"],
    &["TIEN", "AN"],
    &["TIEN", "HOC"],
    &["HOC", "PHI"],
    &["HOC", "SINH"],
    &["PHU", "HUYNH"],
];
const FILLER_WORDS: &[&str] = &[
    "CK", "NOP", "DONG", "HP", "THANG", "CHO", "CON", "CHAU", "BE", "EM", "HS", "PH", "GUI", "VND",
    "HOC", "KY", "PHI", "LOP", "L", "D", "VA",
];

/// Diacritics removed (NFD, combining marks dropped), `đ`/`Đ` → `D`, ASCII upper-case, every
/// run of anything that is not a letter or digit → one space, trimmed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if let Some(c) = word_char(c) {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    out
}

/// What [`fold`] makes of a decomposed character that is not a combining mark: an upper-case
/// ASCII letter or digit of a word, or `None` for a separator.
fn word_char(c: char) -> Option<char> {
    // Đ has no decomposition; Ð (eth) is what some keyboards produce for it.
    let c = match c {
        'đ' | 'Đ' | 'ð' | 'Ð' => 'D',
        _ => c,
    };
    c.is_ascii_alphanumeric().then(|| c.to_ascii_uppercase())
}

/// The first `max_chars` characters of `text`, and whether anything was left out.
pub fn head(text: &str, max_chars: usize) -> (&str, bool) {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => (&text[..at], true),
        None => (text, false),
    }
}

/// One word of the parent's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    /// "chuyen tien", "hoc phi", "cho con": words that never identify a student alone.
    pub filler: bool,
}

/// A memo reduced to the parent's words.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memo {
    /// The whole memo folded, bank wrapping included: payment codes are searched here.
    pub folded: String,
    /// The parent's words, bank wrapping removed.
    pub tokens: Vec<Token>,
    /// Long digit runs taken out of the words (account numbers, but maybe a student's ID).
    pub numbers: Vec<String>,
    /// For each token, the word of [`Memo::folded`] it comes from.
    pub at: Vec<usize>,
    /// The bank's wrapping, as ranges of words of [`Memo::folded`].
    pub wrapping: Vec<std::ops::Range<usize>>,
}

impl Memo {
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| t.text.as_str())
    }

    /// The parent's words joined by single spaces.
    pub fn text(&self) -> String {
        self.words().collect::<Vec<_>>().join(" ")
    }
}

fn is_digits(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

fn has_digit(t: &str) -> bool {
    t.bytes().any(|b| b.is_ascii_digit())
}

/// `FT25252123456789` (Techcombank, MB), `CTLNHIDO000001234567890` (VietinBank): letters then a
/// long run of digits. Payment codes have at most 8 digits and live in [`Memo::folded`] anyway.
fn is_bank_reference(t: &str) -> bool {
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    let ft = t.len() >= 12 && t.starts_with("FT") && t[2..7].bytes().all(|b| b.is_ascii_digit());
    ft || (digits >= 8 && t.len() >= 10 && t.as_bytes()[0].is_ascii_alphabetic())
}

/// How many tokens from `i` on are bank wrapping (0 if none).
fn noise_at(w: &[&str], i: usize) -> usize {
    let at = |k: usize| w.get(i + k).copied().unwrap_or("");
    let digits_from = |k: usize| {
        w[(i + k).min(w.len())..]
            .iter()
            .take_while(|t| is_digits(t))
            .count()
    };
    match at(0) {
        // MBVCB.3278126542.012345. (Vietcombank's app: its own references, then the memo)
        "MBVCB" | "IBVCB" | "SMSVCB" => 1 + digits_from(1),
        // IBFT: the interbank fast-transfer marker
        "IBFT" => 1,
        // CT DEN:0123ABC456 (incoming transfer reference)
        "CT" if at(1) == "DEN" && has_digit(at(2)) => 3,
        // CT tu 0071000123456 NGUYEN VAN A toi 0123456789 TRUONG...: the sender's and the
        // receiver's accounts and names, always at the end: nothing after it is the parent's.
        "CT" if at(1) == "TU" && is_digits(at(2)) => w.len() - i,
        // NHAN TU 0123456789: the sender's account
        "NHAN" if at(1) == "TU" && is_digits(at(2)) => 2 + digits_from(2),
        // REM Tfr Ac:12345678 (BIDV, Techcombank)
        "REM" if at(1) == "TFR" && at(2) == "AC" => 3 + digits_from(3),
        // TKThe :123456789, tai VCB. (VietinBank, BIDV)
        "TKTHE" => {
            let n = 1 + digits_from(1);
            if at(n) == "TAI" && BANK_WORDS.contains(&at(n + 1)) {
                n + 2
            } else {
                n
            }
        }
        // - Ma GD ACSP/ ab1234 (MB)
        "MA" if at(1) == "GD" && at(2) == "ACSP" => 3 + usize::from(!at(3).is_empty()),
        "MA" if at(1) == "GD" && has_digit(at(2)) => 3,
        // GD 123456-090125 10:11:12 (ACB): reference, date, time
        "GD" if is_digits(at(1)) => 1 + digits_from(1),
        // Trace 123456 (MB, BIDV)
        "TRACE" if is_digits(at(1)) => 2,
        t if BANK_WORDS.contains(&t) => 1,
        // A reference and VietinBank's `-1/1-CRE-002` tail after it.
        t if is_bank_reference(t) => {
            1 + w[i + 1..]
                .iter()
                .take_while(|t| (is_digits(t) && t.len() <= 3) || **t == "CRE")
                .count()
        }
        _ => 0,
    }
}

/// A month glued to the word before it (`HPT11`, `NGUYENVANANT11`): the word and `T11` apart,
/// so that the word is read as what it is. Two letters at least before the `T`, one or two
/// digits after it.
fn glued_month(w: &str) -> Option<(&str, &str)> {
    let digits = w.bytes().rev().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&digits) || w.len() < digits + 3 {
        return None;
    }
    let at = w.len() - digits - 1;
    let letters = w.get(..at)?;
    (w.as_bytes()[at] == b'T' && letters.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| (letters, &w[at..]))
}

/// The memo's comparable form and the parent's words in it. Never fails: any text, however cut
/// or garbled, gives some (possibly empty) memo.
pub fn normalise(raw: &str) -> Memo {
    let folded = fold(raw);
    let words: Vec<&str> = folded.split(' ').filter(|w| !w.is_empty()).collect();
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    let mut at: Vec<usize> = Vec::with_capacity(words.len());
    let mut numbers = Vec::new();
    let mut wrapping = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let skip = noise_at(&words, i);
        if skip > 0 {
            wrapping.push(i..i + skip);
            i += skip;
            continue;
        }
        let w = words[i];
        if is_digits(w) && w.len() >= LONG_DIGITS {
            numbers.push(w.to_string());
        } else if let Some((word, month)) = glued_month(w) {
            kept.push(word);
            kept.push(month);
            at.extend([i, i]);
        } else {
            kept.push(w);
            at.push(i);
        }
        i += 1;
    }
    let mut filler = vec![false; kept.len()];
    for start in 0..kept.len() {
        for phrase in FILLER_PHRASES {
            if kept[start..].starts_with(phrase) {
                filler[start..start + phrase.len()].fill(true);
            }
        }
    }
    let tokens = kept
        .iter()
        .zip(filler)
        .map(|(w, f)| Token {
            text: (*w).to_string(),
            filler: f || FILLER_WORDS.contains(w),
        })
        .collect();
    Memo {
        folded,
        tokens,
        numbers,
        at,
        wrapping,
    }
}

/// How a character of a memo as delivered takes part in [`fold`]'s words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CharRole {
    /// Folds to a letter or digit.
    Word,
    /// A combining mark on its own (decomposed input): [`fold`] drops it without a gap.
    Mark,
    /// Anything else: a separator between words.
    Gap,
}

fn char_role(c: char) -> CharRole {
    let mut role = CharRole::Mark;
    for d in std::iter::once(c).nfd() {
        if is_combining_mark(d) {
            continue;
        }
        if word_char(d).is_some() {
            return CharRole::Word;
        }
        role = CharRole::Gap;
    }
    role
}

/// Where each of [`fold`]'s words stands in `raw`, in characters.
fn word_spans(raw: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    let mut open: Option<usize> = None;
    let mut end = 0;
    for (i, c) in raw.chars().enumerate() {
        match char_role(c) {
            CharRole::Word => {
                open.get_or_insert(i);
                end = i + 1;
            }
            CharRole::Mark => {
                if open.is_some() {
                    end = i + 1;
                }
            }
            CharRole::Gap => {
                if let Some(start) = open.take() {
                    spans.push(start..end);
                }
            }
        }
    }
    if let Some(start) = open {
        spans.push(start..end);
    }
    spans
}

/// How many characters of the memo as delivered (`raw`, whose reading is `memo`) the parent
/// typed: all of them less the bank's wrapping, each run of it with the separators that join it
/// to the parent's text. Apps limit what the parent types; the bank adds its wrapping after.
pub fn typed_chars(raw: &str, memo: &Memo) -> usize {
    let len = raw.chars().count();
    if memo.wrapping.is_empty() {
        return len;
    }
    let spans = word_spans(raw);
    if spans.len() != memo.folded.split(' ').filter(|w| !w.is_empty()).count() {
        // Not the words fold found (a character fold treats otherwise): count it all, which at
        // worst suspects a cut the wrapping explains.
        return len;
    }
    // Adjacent runs ("FT2525… Trace 123456") are one.
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for r in memo
        .wrapping
        .iter()
        .filter(|r| r.start < r.end && r.end <= spans.len())
    {
        match runs.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => runs.push(r.clone()),
        }
    }
    let wrapped: usize = runs
        .iter()
        .map(|r| {
            let after = spans.get(r.end).map_or(len, |s| s.start);
            let before = if r.start == 0 {
                0
            } else if r.end == spans.len() {
                spans[r.start - 1].end
            } else {
                spans[r.start].start
            };
            after - before
        })
        .sum();
    len.saturating_sub(wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn folds_vietnamese() {
        assert_eq!(fold("Nguyễn Thị Ánh Tuyết"), "NGUYEN THI ANH TUYET");
        assert_eq!(fold("Đặng Đức Trường"), "DANG DUC TRUONG");
        assert_eq!(fold("  hoc.phi--lop 6/A1 "), "HOC PHI LOP 6 A1");
        assert_eq!(fold("Ðỗ Thùy Dương"), "DO THUY DUONG");
        // Precomposed and decomposed input fold alike.
        assert_eq!(fold("Nguye\u{302}\u{303}n"), fold("Nguyễn"));
        assert_eq!(fold("中文 ☺"), "");
    }

    /// (bank style, raw memo, the parent's words, numbers kept aside)
    const MEMOS: &[(&str, &str, &str, &[&str])] = &[
        (
            "Vietcombank app",
            "MBVCB.3278126542.012345.QD3CFPSA Nguyen Van An 6A1.CT tu 0071000123456 NGUYEN VAN BINH toi 0123456789 TRUONG THCS LE QUY DON",
            "QD3CFPSA NGUYEN VAN AN 6A1",
            &[],
        ),
        (
            "Vietcombank app, two references",
            "MBVCB.123.456.hoc phi thang 9 be Tran Thi Mai lop 7A2",
            "HOC PHI THANG 9 BE TRAN THI MAI LOP 7A2",
            &[],
        ),
        (
            "Vietcombank default memo",
            "MBVCB.5234887101.079321.NGUYEN VAN BINH chuyen tien.CT tu 1012345678 NGUYEN VAN BINH toi 0071000123456",
            "NGUYEN VAN BINH CHUYEN TIEN",
            &[],
        ),
        (
            "Vietcombank incoming",
            "CT DEN:512610198237 hoc phi Pham Gia Huy 6A2",
            "HOC PHI PHAM GIA HUY 6A2",
            &[],
        ),
        (
            "Vietcombank IBFT",
            "IBFT QD-3CF PSA Le Hoang Phuc",
            "QD 3CF PSA LE HOANG PHUC",
            &[],
        ),
        (
            "MB",
            "NGUYEN THI LAN chuyen tien hoc phi con Vu Minh Khoi 8A3 - Ma GD ACSP/ ab123456",
            "NGUYEN THI LAN CHUYEN TIEN HOC PHI CON VU MINH KHOI 8A3",
            &[],
        ),
        (
            "MB with FT reference",
            "qd.3cfpsa Hoang Bao Ngoc FT25252123456789",
            "QD 3CFPSA HOANG BAO NGOC",
            &[],
        ),
        (
            "MB trace",
            "NOP HOC PHI DO MINH TRI 9A10 Trace 123456",
            "NOP HOC PHI DO MINH TRI 9A10",
            &[],
        ),
        (
            "Techcombank",
            "REM Tfr Ac:19036012345678 Ngo Thanh Tam hoc phi 6A1",
            "NGO THANH TAM HOC PHI 6A1",
            &[],
        ),
        (
            "Techcombank FT",
            "FT25252ABCD1234 Duong Quynh Anh L7A3 CK",
            "DUONG QUYNH ANH L7A3 CK",
            &[],
        ),
        (
            "VietinBank",
            "CT DEN:0123ABC456 Huynh Van Tai 8A5 nop tien an",
            "HUYNH VAN TAI 8A5 NOP TIEN AN",
            &[],
        ),
        (
            "VietinBank TKThe",
            "TKThe :1234567890, tai VCB. Ly Gia Han hoc phi -CTLNHIDO000001234567890-1/1-CRE-002",
            "LY GIA HAN HOC PHI",
            &[],
        ),
        (
            "BIDV",
            "REM Tfr Ac:12345 Bui Thi Thu Trang lop 9A1",
            "BUI THI THU TRANG LOP 9A1",
            &[],
        ),
        (
            "BIDV TKThe",
            "TKThe :21510001234567, tai BIDV. Phan Duc Manh thanh toan hoc phi",
            "PHAN DUC MANH THANH TOAN HOC PHI",
            &[],
        ),
        (
            "ACB",
            "HO NGOC HA 7A4 HOC PHI GD 123456-090125 10:11:12",
            "HO NGOC HA 7A4 HOC PHI",
            &[],
        ),
        (
            "ACB default",
            "NGUYEN VAN BINH CHUYEN KHOAN",
            "NGUYEN VAN BINH CHUYEN KHOAN",
            &[],
        ),
        (
            "with diacritics, e-wallet",
            "Học phí tháng 9 - Nguyễn Ngọc Bảo Trâm (6A3)",
            "HOC PHI THANG 9 NGUYEN NGOC BAO TRAM 6A3",
            &[],
        ),
        (
            "squeezed name",
            "NGUYENVANAN 6A1 HP",
            "NGUYENVANAN 6A1 HP",
            &[],
        ),
        (
            "student ID and phone number",
            "HS 0123456789 Vo Thi Yen 0912345678",
            "HS VO THI YEN",
            &["0123456789", "0912345678"],
        ),
        (
            "NHAN TU",
            "NHAN TU 0071000123456 Dang Quoc Viet hoc phi",
            "DANG QUOC VIET HOC PHI",
            &[],
        ),
        (
            "truncated mid-word",
            "MBVCB.3278126542.012345.HOC PHI THANG 9 CHO CON NGUYEN MINH ANH LOP 6A1 VA NGUYEN MINH KH",
            "HOC PHI THANG 9 CHO CON NGUYEN MINH ANH LOP 6A1 VA NGUYEN MINH KH",
            &[],
        ),
        (
            "month glued to the name",
            "HPT11 NguyenVanAnT11",
            "HP T11 NGUYENVANAN T11",
            &[],
        ),
        (
            "salary",
            "LUONG THANG 9/2025 CONG TY ABC",
            "LUONG THANG 9 2025 CONG TY ABC",
            &[],
        ),
    ];

    #[test]
    fn bank_wrapping_is_removed() {
        assert!(MEMOS.len() >= 20);
        for (bank, raw, words, numbers) in MEMOS {
            let memo = normalise(raw);
            assert_eq!(memo.text(), *words, "{bank}: {raw}");
            assert_eq!(memo.numbers, *numbers, "{bank}: {raw}");
            assert_eq!(memo.folded, fold(raw));
        }
    }

    #[test]
    fn filler_is_flagged_but_kept() {
        let memo = normalise("chuyen tien hoc phi cho con Le Van Tien");
        let flags: Vec<(&str, bool)> = memo
            .tokens
            .iter()
            .map(|t| (t.text.as_str(), t.filler))
            .collect();
        assert_eq!(
            flags,
            vec![
                ("CHUYEN", true),
                ("TIEN", true),
                ("HOC", true),
                ("PHI", true),
                ("CHO", true),
                ("CON", true),
                ("LE", false),
                ("VAN", false),
                // "Tiến" is a given name: only "chuyen tien", "tien an"... are filler.
                ("TIEN", false),
            ]
        );
    }

    /// (memo as delivered, what the parent typed in it)
    const TYPED: &[(&str, &str)] = &[
        (
            "MBVCB.3278126542.012345.QD3CFPSA Nguyen Van An 6A1.CT tu 0071000123456 NGUYEN VAN BINH toi 0123456789 TRUONG THCS LE QUY DON",
            "QD3CFPSA Nguyen Van An 6A1",
        ),
        ("MBVCB.123.456.hoc phi thang 9 be Trần Thị Mai lop 7A2", "hoc phi thang 9 be Trần Thị Mai lop 7A2"),
        ("REM Tfr Ac:12345678 hoc phi con Le Bao Tuan", "hoc phi con Le Bao Tuan"),
        ("TKThe :123456789, tai VCB. Nop HP T10 Le Bao Tuan", "Nop HP T10 Le Bao Tuan"),
        ("IBFT dong hoc phi T10 cho HS lê bảo tuấn", "dong hoc phi T10 cho HS lê bảo tuấn"),
        ("Le Bao Tuan 6A1 HP T10 FT25252123456789 Trace 123456", "Le Bao Tuan 6A1 HP T10"),
        ("CT DEN:512610198237 hoc phi Pham Gia Huy 6A2", "hoc phi Pham Gia Huy 6A2"),
        // Decomposed diacritics count as the characters they are.
        ("MBVCB.1.2.Nguye\u{302}\u{303}n Van An", "Nguye\u{302}\u{303}n Van An"),
        // No wrapping: all of it, punctuation included.
        ("  hoc phi... be An!", "  hoc phi... be An!"),
        // Nothing but wrapping.
        ("MBVCB.3278126542.012345.", ""),
    ];

    #[test]
    fn typed_chars_leave_out_the_wrapping() {
        for (raw, typed) in TYPED {
            assert_eq!(
                typed_chars(raw, &normalise(raw)),
                typed.chars().count(),
                "{raw}"
            );
        }
    }

    #[test]
    fn head_cuts_at_a_character() {
        assert_eq!(head("Học phí", 3), ("Học", true));
        assert_eq!(head("Học phí", 7), ("Học phí", false));
        assert_eq!(head("", 0), ("", false));
        assert_eq!(head("ab", 0), ("", true));
    }

    proptest! {
        #[test]
        fn normalise_never_panics(s in "\\PC{0,200}") {
            let memo = normalise(&s);
            prop_assert!(memo.folded.is_ascii());
            prop_assert!(memo.tokens.iter().all(|t| !t.text.is_empty() && !t.text.contains(' ')));
        }

        #[test]
        fn truncation_never_panics(s in "[A-Za-z0-9 .:/-]{0,160}", cut in 0usize..160) {
            let cut = cut.min(s.len());
            let _ = normalise(&s[..cut]);
        }

        #[test]
        fn typed_chars_are_at_most_the_memo(s in "\\PC{0,200}") {
            prop_assert!(typed_chars(&s, &normalise(&s)) <= s.chars().count());
        }

        /// Whatever the parent typed, a Vietcombank prefix or a reference behind adds nothing.
        #[test]
        fn wrapping_adds_no_typed_chars(
            words in proptest::collection::vec("(hoc|phi|Lê|bảo|tuấn|6A1|T10|thang|nop)", 1..12),
            prefix in proptest::bool::ANY,
            suffix in proptest::bool::ANY,
        ) {
            let typed = words.join(" ");
            let raw = format!(
                "{}{typed}{}",
                if prefix { "MBVCB.3278126542.012345." } else { "" },
                if suffix { " FT25252123456789" } else { "" },
            );
            prop_assert_eq!(typed_chars(&raw, &normalise(&raw)), typed.chars().count());
        }
    }
}
