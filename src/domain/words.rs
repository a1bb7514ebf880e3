//! Vietnamese reading of an amount of đồng, as written on a receipt ("Số tiền bằng chữ").
//!
//! Digits are read in groups of three (đơn vị, nghìn, triệu); whatever stands above 10^9 is
//! read as a number of its own followed by "tỷ", so 10^12 reads "một nghìn tỷ" and
//! 1 001 × 10^9 reads "một nghìn không trăm linh một tỷ" (not "một nghìn tỷ … một tỷ").
//! Conventions followed (the northern, accounting style used on invoices):
//! - a group after a non-zero higher part always reads its hundreds, even "không trăm";
//! - "linh" bridges a zero tens digit to a non-zero unit ("một trăm linh năm");
//! - unit 1 reads "mốt" and unit 4 reads "tư" after tens ≥ 2, unit 5 reads "lăm" after
//!   tens ≥ 1, tens 1 reads "mười";
//! - all-zero groups are skipped entirely.

const DIGITS: [&str; 10] = [
    "không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín",
];

const BILLION: u64 = 1_000_000_000;

/// The amount in words, first letter capitalised, ending with " đồng".
///
/// Negative amounts read "Âm …" (a refund or a correction on a receipt).
pub fn vnd_in_words(dong: i64) -> String {
    // unsigned_abs so that i64::MIN does not overflow.
    let magnitude = dong.unsigned_abs();
    let mut words: Vec<&'static str> = Vec::new();
    if dong < 0 {
        words.push("âm");
    }
    if magnitude == 0 {
        words.push(DIGITS[0]);
    } else {
        read_number(magnitude, false, &mut words);
    }
    words.push("đồng");
    capitalise_first(&words.join(" "))
}

/// `after_higher` is true when a non-zero part has already been read before this one, which
/// makes the leading group of this part read in full ("không trăm linh …").
fn read_number(n: u64, after_higher: bool, out: &mut Vec<&'static str>) {
    if n >= BILLION {
        // The part above tỷ is itself a number (possibly with its own tỷ), so 10^12 reads
        // "một nghìn tỷ" and 1_001 × 10^9 reads "một nghìn không trăm linh một tỷ".
        read_number(n / BILLION, after_higher, out);
        out.push("tỷ");
        read_below_billion(n % BILLION, true, out);
    } else {
        read_below_billion(n, after_higher, out);
    }
}

fn read_below_billion(n: u64, after_higher: bool, out: &mut Vec<&'static str>) {
    let groups = [
        (n / 1_000_000, Some("triệu")),
        (n / 1_000 % 1_000, Some("nghìn")),
        (n % 1_000, None),
    ];
    let mut full = after_higher;
    for (group, scale) in groups {
        if group == 0 {
            continue;
        }
        read_group(group, full, out);
        if let Some(scale) = scale {
            out.push(scale);
        }
        full = true;
    }
}

/// Reads 1..=999. `full` forces the hundreds ("không trăm") for a group that follows a
/// non-zero higher group, so that "1 005" is not read like "15".
fn read_group(n: u64, full: bool, out: &mut Vec<&'static str>) {
    let hundreds = (n / 100 % 10) as usize;
    let tens = (n / 10 % 10) as usize;
    let units = (n % 10) as usize;
    let has_hundreds = full || hundreds > 0;
    if has_hundreds {
        out.push(DIGITS[hundreds]);
        out.push("trăm");
    }
    match tens {
        0 => {
            if units > 0 {
                if has_hundreds {
                    out.push("linh");
                }
                out.push(DIGITS[units]);
            }
        }
        1 => {
            out.push("mười");
            match units {
                0 => {}
                5 => out.push("lăm"),
                _ => out.push(DIGITS[units]),
            }
        }
        _ => {
            out.push(DIGITS[tens]);
            out.push("mươi");
            match units {
                0 => {}
                1 => out.push("mốt"),
                4 => out.push("tư"),
                5 => out.push("lăm"),
                _ => out.push(DIGITS[units]),
            }
        }
    }
}

fn capitalise_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_reference_amounts() {
        let cases: &[(i64, &str)] = &[
            (0, "Không đồng"),
            (5, "Năm đồng"),
            (10, "Mười đồng"),
            (15, "Mười lăm đồng"),
            (21, "Hai mươi mốt đồng"),
            (24, "Hai mươi tư đồng"),
            (25, "Hai mươi lăm đồng"),
            (105, "Một trăm linh năm đồng"),
            (110, "Một trăm mười đồng"),
            (1_000, "Một nghìn đồng"),
            (1_005, "Một nghìn không trăm linh năm đồng"),
            (1_500_000, "Một triệu năm trăm nghìn đồng"),
            (2_000_000, "Hai triệu đồng"),
            (935_000, "Chín trăm ba mươi lăm nghìn đồng"),
            (1_000_000_000, "Một tỷ đồng"),
            (
                1_234_567_891,
                "Một tỷ hai trăm ba mươi tư triệu năm trăm sáu mươi bảy nghìn tám trăm chín mươi mốt đồng",
            ),
            (100_010, "Một trăm nghìn không trăm mười đồng"),
            (1_000_000_000_000, "Một nghìn tỷ đồng"),
            (-35_000, "Âm ba mươi lăm nghìn đồng"),
        ];
        for &(dong, expected) in cases {
            assert_eq!(vnd_in_words(dong), expected, "{dong}");
        }
    }

    #[test]
    fn reads_derived_amounts() {
        let cases: &[(i64, &str)] = &[
            (1, "Một đồng"),
            // "mốt" and "tư" only after tens ≥ 2; after "mười" the plain digit is read.
            (11, "Mười một đồng"),
            (14, "Mười bốn đồng"),
            (20, "Hai mươi đồng"),
            (41, "Bốn mươi mốt đồng"),
            (45, "Bốn mươi lăm đồng"),
            (101, "Một trăm linh một đồng"),
            (104, "Một trăm linh bốn đồng"),
            (111, "Một trăm mười một đồng"),
            (115, "Một trăm mười lăm đồng"),
            (121, "Một trăm hai mươi mốt đồng"),
            (500, "Năm trăm đồng"),
            (10_000, "Mười nghìn đồng"),
            (50_500, "Năm mươi nghìn năm trăm đồng"),
            (1_000_001, "Một triệu không trăm linh một đồng"),
            (2_015_000, "Hai triệu không trăm mười lăm nghìn đồng"),
            (10_000_000_000, "Mười tỷ đồng"),
            (1_000_000_001, "Một tỷ không trăm linh một đồng"),
            (1_000_005_000, "Một tỷ không trăm linh năm nghìn đồng"),
            (1_001_000_000_000, "Một nghìn không trăm linh một tỷ đồng"),
            (1_500_000_000_000, "Một nghìn năm trăm tỷ đồng"),
            (1_000_000_000_010, "Một nghìn tỷ không trăm mười đồng"),
            (
                999_999_999_999_999,
                "Chín trăm chín mươi chín nghìn chín trăm chín mươi chín tỷ \
                 chín trăm chín mươi chín triệu chín trăm chín mươi chín nghìn \
                 chín trăm chín mươi chín đồng",
            ),
            (-1, "Âm một đồng"),
            (-1_500_000, "Âm một triệu năm trăm nghìn đồng"),
            (-1_000_000_000_000, "Âm một nghìn tỷ đồng"),
        ];
        for &(dong, expected) in cases {
            assert_eq!(vnd_in_words(dong), expected, "{dong}");
        }
    }

    #[test]
    fn extreme_i64_values_do_not_panic() {
        for dong in [i64::MIN, i64::MIN + 1, i64::MAX] {
            let words = vnd_in_words(dong);
            assert!(words.ends_with(" đồng"), "{words}");
        }
        assert_eq!(
            vnd_in_words(i64::MIN),
            "Âm chín tỷ hai trăm hai mươi ba triệu ba trăm bảy mươi hai nghìn không trăm ba mươi \
             sáu tỷ tám trăm năm mươi tư triệu bảy trăm bảy mươi lăm nghìn tám trăm linh tám đồng"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_ends_with_dong(dong in -1_000_000_000_000i64..=1_000_000_000_000) {
            let words = vnd_in_words(dong);
            prop_assert!(words.ends_with(" đồng"), "{}", words);
            prop_assert!(!words.contains("  "), "{}", words);
            prop_assert!(words.chars().next().is_some_and(char::is_uppercase), "{}", words);
            prop_assert_eq!(words.starts_with("Âm "), dong < 0);
        }

        #[test]
        fn negation_only_adds_the_prefix(dong in 1i64..=1_000_000_000_000) {
            let positive = vnd_in_words(dong);
            let negative = vnd_in_words(-dong);
            prop_assert_eq!(negative, format!("Âm {}", positive.to_lowercase()));
        }
    }
}
