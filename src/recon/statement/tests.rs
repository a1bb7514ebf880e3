//! Statement parsing against the banks' layouts, samples in `fixtures/statements/`.

use super::*;
use proptest::prelude::*;

const VCB: &[u8] = include_bytes!("../../../fixtures/statements/vietcombank-2025-09.csv");
const TCB: &[u8] = include_bytes!("../../../fixtures/statements/techcombank-2025-09.csv");
const CUSTOM: &[u8] = include_bytes!("../../../fixtures/statements/custom-semicolon.csv");
const CAMT: &[u8] = include_bytes!("../../../fixtures/statements/camt053-vcb.xml");
const BAD_ENCODING: &[u8] = include_bytes!("../../../fixtures/statements/bad-encoding.csv");
const BAD_AMOUNT: &[u8] = include_bytes!("../../../fixtures/statements/bad-amount.csv");
const USD: &[u8] = include_bytes!("../../../fixtures/statements/usd.xml");

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn vnd(n: i64) -> Vnd {
    Vnd::new(n).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn line(
    line_no: usize,
    at: &str,
    dong: i64,
    direction: Direction,
    bank_ref: &str,
    memo: &str,
    counterparty: Option<&str>,
    balance: Option<i64>,
) -> StatementLine {
    StatementLine {
        line_no,
        booked_at: utc(at),
        amount: vnd(dong),
        direction,
        bank_ref: Some(bank_ref.to_owned()),
        memo: memo.to_owned(),
        counterparty: counterparty.map(str::to_owned),
        balance_after: balance.map(vnd),
    }
}

use Direction::{Credit, Debit};

fn vcb_lines() -> Vec<StatementLine> {
    vec![
        line(9, "2025-09-02T17:00:00Z", 1_235_000, Credit, "5213 - 12345",
            "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi.CT tu 0011004123456 NGUYEN VAN BO toi 0071000123456 TRUONG THCS LE QUY DON",
            None, Some(53_575_000)),
        line(10, "2025-09-02T17:00:00Z", 2_450_000, Credit, "5213 - 12388",
            "IBFT QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9 LOP 6A1", None, Some(56_025_000)),
        line(11, "2025-09-03T17:00:00Z", 850_000, Credit, "5214 - 30411",
            "QDAQGU4C Le Hoang Nam 7A2 tien tieng Anh T9", None, Some(56_875_000)),
        line(12, "2025-09-03T17:00:00Z", 22_000, Debit, "5214 - 30502",
            "Thu phi duy tri dich vu VCB Digibank thang 08/2025", None, Some(56_853_000)),
        line(13, "2025-09-04T17:00:00Z", 3_700_000, Credit, "5215 - 08817",
            "NGUYEN THI HOA chuyen tien hoc phi con Tran Minh Khoa lop 6A1", None, Some(60_553_000)),
        line(14, "2025-09-07T17:00:00Z", 500_000, Credit, "5218 - 11203",
            "CHUYEN TIEN QDAQGU4C BHYT", None, Some(61_053_000)),
        line(15, "2025-09-08T17:00:00Z", 1_850_000, Credit, "5219 - 20931",
            "MBVCB.3290175522.qdphyrxy tran thi mai tien ban tru.CT tu 0011004987654 TRAN THI MAI toi 0071000123456 TRUONG THCS LE QUY DON",
            None, Some(62_903_000)),
    ]
}

fn custom_mapping() -> ColumnMapping {
    ColumnMapping {
        date: "Ngày hạch toán".into(),
        time: Some("Giờ".into()),
        credit: None,
        debit: None,
        amount: Some("Số tiền".into()),
        reference: Some("Số bút toán".into()),
        memo: "Nội dung".into(),
        counterparty: Some("Người chuyển".into()),
        balance: Some("Số dư".into()),
        date_format: "%Y-%m-%d".into(),
        header_row_contains: "Ngày hạch toán".into(),
    }
}

fn code(result: Result<Statement, StatementError>) -> &'static str {
    result.map(|s| panic!("parsed: {s:?}")).unwrap_err().code()
}

#[test]
fn vietcombank_export_parses_line_by_line() {
    let s = parse_csv(VCB, &Preset::Vietcombank.mapping()).unwrap();
    assert_eq!(s.format, Format::Csv(Preset::Vietcombank));
    assert_eq!(s.account.as_deref(), Some("0071000123456"));
    assert_eq!(s.currency, "VND");
    assert_eq!(s.lines, vcb_lines());
}

#[test]
fn techcombank_export_parses_with_times_and_partners() {
    let s = parse(TCB, Some("techcombank"), None).unwrap();
    assert_eq!(s.format, Format::Csv(Preset::Techcombank));
    assert_eq!(s.account.as_deref(), Some("19036123456019"));
    let nvb = Some("NGUYEN VAN BO - 0011004123456 - Vietcombank");
    let want = vec![
        line(
            9,
            "2025-09-05T01:15:22Z",
            1_235_000,
            Credit,
            "FT25248103982741",
            "MBVCB.3278126542.QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi",
            nvb,
            Some(21_235_000),
        ),
        line(
            10,
            "2025-09-05T04:42:07Z",
            2_450_000,
            Credit,
            "FT25248560031298",
            "QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9",
            Some("TRAN THI MAI - 19034455667011 - Techcombank"),
            Some(23_685_000),
        ),
        line(
            11,
            "2025-09-08T12:03:55Z",
            850_000,
            Credit,
            "FT25251207718845",
            "QDAQGU4C LE HOANG NAM 7A2 TIEN TIENG ANH T9",
            Some("LE VAN TUAN - 0451000222333 - Vietcombank"),
            Some(24_535_000),
        ),
        // 06:12 local on the 9th is still the 8th in UTC.
        line(
            12,
            "2025-09-08T23:12:00Z",
            11_000,
            Debit,
            "FT25252000193476",
            "Phi quan ly tai khoan thang 08/2025",
            None,
            Some(24_524_000),
        ),
        line(
            13,
            "2025-09-09T07:30:12Z",
            3_700_000,
            Credit,
            "FT25252844120567",
            "PHAM THI LAN chuyen tien hoc phi Pham Gia Bao lop 6A1",
            Some("PHAM THI LAN - 1023456789 - BIDV"),
            Some(28_224_000),
        ),
        line(
            14,
            "2025-09-10T00:58:40Z",
            600_000,
            Credit,
            "FT25253041872516",
            "MBVCB.3295512208.QD3CFPSA NGUYEN VAN BO bo sung tien ban tru",
            nvb,
            Some(28_824_000),
        ),
    ];
    assert_eq!(s.lines, want);
}

#[test]
fn custom_mapping_reads_a_signed_semicolon_export_and_keeps_duplicates() {
    let json = r#"{"date":"Ngày hạch toán","time":"Giờ","amount":"Số tiền",
        "reference":"Số bút toán","memo":"Nội dung","counterparty":"Người chuyển",
        "balance":"Số dư","date_format":"%Y-%m-%d","header_row_contains":"Ngày hạch toán"}"#;
    let mapping: ColumnMapping = serde_json::from_str(json).unwrap();
    assert_eq!(mapping, custom_mapping());
    let s = parse(CUSTOM, None, Some(&mapping)).unwrap();
    assert_eq!(s.format, Format::Csv(Preset::Custom));
    assert_eq!(s.account.as_deref(), Some("112233445566"));
    let lvt = Some("LE VAN TUAN");
    let tien_anh = "QDAQGU4C LE HOANG NAM 7A2 TIEN TIENG ANH";
    let want = vec![
        line(
            7,
            "2025-09-03T02:05:11Z",
            1_235_000,
            Credit,
            "TT2509030001",
            "QD3CFPSA NGUYEN VAN BO chuyen tien hoc phi",
            Some("NGUYEN VAN BO"),
            Some(11_235_000),
        ),
        line(
            8,
            "2025-09-03T14:47:30Z",
            2_450_000,
            Credit,
            "TT2509030187",
            "QDPHYRXY TRAN THI MAI NOP TIEN AN THANG 9",
            Some("TRAN THI MAI"),
            Some(13_685_000),
        ),
        line(
            9,
            "2025-09-04T03:00:00Z",
            22_000,
            Debit,
            "PHI2509040002",
            "Phi SMS Banking thang 08/2025",
            None,
            Some(13_663_000),
        ),
        line(
            10,
            "2025-09-05T08:20:45Z",
            850_000,
            Credit,
            "TT2509050044",
            tien_anh,
            lvt,
            Some(14_513_000),
        ),
        line(
            11,
            "2025-09-05T08:20:45Z",
            850_000,
            Credit,
            "TT2509050044",
            tien_anh,
            lvt,
            Some(14_513_000),
        ),
    ];
    assert_eq!(s.lines, want);
}

#[test]
fn camt053_carries_the_same_transactions_as_the_csv() {
    let s = parse_camt053(CAMT).unwrap();
    assert_eq!(s.format, Format::Camt053);
    assert_eq!(s.account.as_deref(), Some("0071000123456"));
    let senders = [
        Some("NGUYEN VAN BO"),
        Some("TRAN THI MAI"),
        Some("LE VAN TUAN"),
        None,
        Some("NGUYEN THI HOA"),
        Some("DO MINH TRIET"),
        Some("TRAN THI MAI"),
    ];
    let want: Vec<StatementLine> = vcb_lines()
        .into_iter()
        .zip(senders)
        .enumerate()
        .map(|(i, (l, sender))| StatementLine {
            line_no: i + 1,
            counterparty: sender.map(str::to_owned),
            balance_after: None,
            ..l
        })
        .collect();
    assert_eq!(s.lines, want);
}

#[test]
fn sniffing_finds_each_layout() {
    let format = |b: &[u8]| parse(b, None, None).unwrap().format;
    assert_eq!(format(VCB), Format::Csv(Preset::Vietcombank));
    assert_eq!(format(TCB), Format::Csv(Preset::Techcombank));
    assert_eq!(format(CAMT), Format::Camt053);
    assert_eq!(parse(VCB, Some(" VCB "), None).unwrap().lines, vcb_lines());
    assert_eq!(parse(CAMT, Some("camt.053"), None).unwrap().lines.len(), 7);
    let err = parse(CUSTOM, None, None).unwrap_err();
    assert_eq!(err.code(), "statement_format");
    assert!(err.to_string().contains("give a column mapping"), "{err}");
    assert_eq!(
        code(parse(VCB, Some("techcombank"), None)),
        "statement_format"
    );
    assert_eq!(code(parse(VCB, Some("mt940"), None)), "statement_format");
    assert_eq!(code(parse(VCB, Some("custom"), None)), "statement_mapping");
}

#[test]
fn bom_and_crlf_are_accepted() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(
        String::from_utf8(VCB.to_vec())
            .unwrap()
            .replace('\n', "\r\n")
            .bytes(),
    );
    assert_eq!(parse(&bytes, None, None).unwrap().lines, vcb_lines());

    // Empty lines and a memo over two lines still give physical line numbers.
    let text = String::from_utf8(VCB.to_vec()).unwrap();
    let spaced = text
        .replacen("STT,", "\r\n\r\nSTT,", 1)
        .replacen("hoc phi.CT", "hoc phi.\r\nCT", 1)
        .replace('\n', "\r\n")
        .replace("\r\r", "\r");
    let lines = parse(spaced.as_bytes(), None, None).unwrap().lines;
    let numbers: Vec<usize> = lines.iter().map(|l| l.line_no).collect();
    assert_eq!(numbers, [11, 13, 14, 15, 16, 17, 18]);
    assert!(lines[0].memo.contains("hoc phi.\r\nCT tu"));
}

#[test]
fn other_encodings_are_refused_with_advice() {
    let err = parse(BAD_ENCODING, None, None).unwrap_err();
    assert_eq!(err.code(), "statement_encoding");
    assert_eq!(err.position(), Some(Position::Line(1)));
    assert!(
        err.to_string()
            .contains("export the statement as CSV UTF-8"),
        "{err}"
    );

    let text = String::from_utf8(VCB.to_vec()).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(code(parse(&utf16, None, None)), "statement_encoding");
    let no_bom: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(code(parse(&no_bom, None, None)), "statement_encoding");
    let mut latin_memo = VCB.to_vec();
    latin_memo.extend(b"8,10/09/2025,5220 - 1,,100.000,,\"Nguy\xEAn\"\n");
    let err = parse(&latin_memo, None, None).unwrap_err();
    assert_eq!(err.position(), Some(Position::Line(18)), "{err}");
}

#[test]
fn a_fractional_amount_names_line_and_column() {
    let err = parse(BAD_AMOUNT, None, None).unwrap_err();
    assert_eq!(err.code(), "statement_row");
    assert_eq!(err.column(), Some("Số tiền ghi có"));
    assert_eq!(
        err.to_string(),
        "line 11, column Số tiền ghi có: '850.000,50' is not a whole number of đồng"
    );
}

#[test]
fn foreign_currencies_are_refused() {
    let err = parse(USD, None, None).unwrap_err();
    assert_eq!(err.code(), "statement_currency");
    assert_eq!(
        err.to_string(),
        "the statement is in USD; only VND statements can be reconciled"
    );

    let usd_csv = String::from_utf8(VCB.to_vec())
        .unwrap()
        .replace("Loại tiền: VND", "Loại tiền: USD");
    let err = parse(usd_csv.as_bytes(), None, None).unwrap_err();
    assert_eq!(
        (err.code(), err.position()),
        ("statement_currency", Some(Position::Line(5)))
    );

    let usd_cell = String::from_utf8(VCB.to_vec())
        .unwrap()
        .replace(",850.000,", ",850 USD,");
    let err = parse(usd_cell.as_bytes(), None, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 11: the statement is in USD; only VND statements can be reconciled"
    );
}

fn camt(entries: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<Stmt><Acct><Id><IBAN>VN00BFTV0071000123456</IBAN></Id></Acct>{entries}</Stmt>
</BkToCstmrStmt></Document>"#
    )
}

#[test]
fn camt_variants_of_dates_references_memos_and_parties() {
    let xml = camt(
        r#"<Ntry><Amt Ccy="VND">500000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <BookgDt><DtTm>2025-09-05T08:15:22+07:00</DtTm></BookgDt>
        <NtryDtls><TxDtls><Refs><EndToEndId>E2E-1</EndToEndId><TxId>TX-1</TxId></Refs>
        <RltdPties><Dbtr><Nm>LE THI B</Nm></Dbtr></RltdPties>
        <RmtInf><Ustrd>QD3CFPSA</Ustrd><Ustrd>LE THI B &amp; con</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
        <Ntry><Amt Ccy="VND">1000</Amt><CdtDbtInd>DBIT</CdtDbtInd>
        <BookgDt><DtTm>2025-09-05T08:15:22.123</DtTm></BookgDt>
        <NtryDtls><TxDtls><Refs><TxId>TX-2</TxId></Refs>
        <RltdPties><Cdtr><Pty><Nm>VCB</Nm></Pty></Cdtr></RltdPties></TxDtls></NtryDtls>
        <AddtlNtryInf><![CDATA[Phi SMS <thang 8>]]></AddtlNtryInf></Ntry>
        <Ntry><Amt Ccy="VND">7</Amt><CdtDbtInd>CRDT</CdtDbtInd><ValDt><Dt>2025-09-06</Dt></ValDt>
        <NtryDtls><TxDtls><RltdPties><DbtrAcct><Id><Othr><Id>0011</Id></Othr></Id></DbtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>"#,
    );
    let s = parse(xml.as_bytes(), None, None).unwrap();
    assert_eq!(s.account.as_deref(), Some("VN00BFTV0071000123456"));
    let mut want = line(
        1,
        "2025-09-05T01:15:22Z",
        500_000,
        Credit,
        "E2E-1",
        "QD3CFPSA LE THI B & con",
        Some("LE THI B"),
        None,
    );
    assert_eq!(s.lines[0], want);
    want = line(
        2,
        "2025-09-05T01:15:22.123Z",
        1000,
        Debit,
        "TX-2",
        "Phi SMS <thang 8>",
        Some("VCB"),
        None,
    );
    assert_eq!(s.lines[1], want);
    let third = &s.lines[2];
    assert_eq!(
        (
            third.booked_at,
            third.bank_ref.as_deref(),
            third.memo.as_str()
        ),
        (utc("2025-09-05T17:00:00Z"), None, "")
    );
    assert_eq!(third.counterparty.as_deref(), Some("0011"));
}

#[test]
fn camt_refusals() {
    let bad = |entries: &str| {
        parse_camt053(camt(entries).as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        bad(r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>"#),
        "entry 1 (Ntry), column BookgDt: '' is missing"
    );
    assert_eq!(
        bad(
            r#"<Ntry><Amt Ccy="VND">10.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-09-01</Dt></BookgDt></Ntry>"#
        ),
        "entry 1 (Ntry), column Amt: '10.50' is not a whole number of đồng"
    );
    assert_eq!(
        bad(r#"<Ntry><Amt Ccy="EUR">10</Amt></Ntry>"#),
        "entry 1 (Ntry): the statement is in EUR; only VND statements can be reconciled"
    );
    assert_eq!(
        bad(r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>RVSL</CdtDbtInd></Ntry>"#),
        "entry 1 (Ntry), column CdtDbtInd: 'RVSL' is not CRDT or DBIT"
    );
    assert_eq!(
        bad(
            r#"<Ntry><Amt Ccy="VND">10</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-02-30</Dt></BookgDt></Ntry>"#
        ),
        "entry 1 (Ntry), column BookgDt: '2025-02-30' is not an ISO date or date-time"
    );
    assert_eq!(code(parse_camt053(camt("").as_bytes())), "statement_empty");

    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Document [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}",
        camt("<Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>").lines().skip(1).collect::<Vec<_>>().join("\n")
    );
    let err = parse(xxe.as_bytes(), None, None).unwrap_err();
    assert_eq!(err.code(), "statement_format");
    assert!(err.to_string().contains("DOCTYPE"), "{err}");
    let entity = camt(r#"<Ntry><AddtlNtryInf>&x;</AddtlNtryInf></Ntry>"#);
    assert_eq!(code(parse_camt053(entity.as_bytes())), "statement_format");

    let v9 = camt("").replace("camt.053.001.02", "camt.053.001.09");
    let err = parse_camt053(v9.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("001.09 is not supported"), "{err}");
    let camt052 = camt("").replace("camt.053.001.02", "camt.052.001.02");
    assert_eq!(code(parse_camt053(camt052.as_bytes())), "statement_format");
    assert_eq!(
        code(parse_camt053(b"<html><body/></html>")),
        "statement_format"
    );

    let truncated = &CAMT[..CAMT.len() / 2];
    assert_eq!(code(parse_camt053(truncated)), "statement_format");
    let mismatched = String::from_utf8(CAMT.to_vec())
        .unwrap()
        .replacen("</Amt>", "</Amount>", 1);
    let err = parse_camt053(mismatched.as_bytes()).unwrap_err();
    assert_eq!(
        (err.code(), err.position()),
        ("statement_format", Some(Position::Line(22))),
        "{err}"
    );

    let two = String::from_utf8(CAMT.to_vec()).unwrap().replacen(
        "</Stmt>",
        "</Stmt><Stmt><Acct><Id><Othr><Id>999</Id></Othr></Id></Acct></Stmt>",
        1,
    );
    assert_eq!(code(parse_camt053(two.as_bytes())), "statement_format");
}

fn vcb_with(rows: &str) -> Vec<u8> {
    let head: String = String::from_utf8(VCB.to_vec())
        .unwrap()
        .lines()
        .take(8)
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{head}{rows}").into_bytes()
}

#[test]
fn csv_row_refusals_name_line_and_column() {
    let err = |rows: &str| parse(&vcb_with(rows), None, None).unwrap_err().to_string();
    assert_eq!(
        err("1,31/09/2025,R1,,100.000,,memo\n"),
        "line 9, column Ngày giao dịch: '31/09/2025' is not a date in the format dd/mm/yyyy"
    );
    assert_eq!(
        err("1,,R1,,100.000,,memo\n"),
        "line 9, column Ngày giao dịch: '' is empty; every transaction line needs a date"
    );
    assert_eq!(
        err("1,01/09/2025,R1,5.000,100.000,,memo\n"),
        "line 9, column Số tiền ghi nợ/Số tiền ghi có: '' has amounts in both columns"
    );
    assert_eq!(
        err("1,01/09/2025,R1,0,,,memo\n"),
        "line 9, column Số tiền ghi nợ/Số tiền ghi có: '' has no amount in either column"
    );
    assert_eq!(
        err("1,01/09/2025,R1,,-100.000,,memo\n"),
        "line 9, column Số tiền ghi có: '-100.000' is negative in a credit column"
    );
    assert_eq!(
        err("1,01/09/2025,R1,,\"1,5\",,memo\n"),
        "line 9, column Số tiền ghi có: '1,5' is not a whole number of đồng"
    );
    assert_eq!(
        err("1,01/09/2025,R1,,12.34.567,,memo\n"),
        "line 9, column Số tiền ghi có: '12.34.567' is not an amount in đồng (write 1.235.000, 1,235,000 or 1235000)"
    );
    assert_eq!(code(parse(&vcb_with(""), None, None)), "statement_empty");
    assert_eq!(
        code(parse(&vcb_with("Tổng số,,,0,0,,\n"), None, None)),
        "statement_empty"
    );
    assert_eq!(code(parse(b" \n", None, None)), "statement_empty");
    assert_eq!(code(parse(b"", None, None)), "statement_empty");
}

#[test]
fn csv_skips_blank_rows_repeated_headers_and_accepts_debits_printed_negative() {
    let header = "STT,Ngày giao dịch,Số tham chiếu,Số tiền ghi nợ,Số tiền ghi có,Số dư,Mô tả\n";
    let rows = format!(
        ",,,,,,\n1,01/09/2025,R1,-5.000,,,phi\n{header}2,01/09/2025 13:45,R2,,+7.000 VND,,\"a, b\"\nNgười lập biểu,,,,,,\n"
    );
    let s = parse(&vcb_with(&rows), None, None).unwrap();
    assert_eq!(s.lines.len(), 2);
    assert_eq!(
        (s.lines[0].line_no, s.lines[0].amount, s.lines[0].direction),
        (10, vnd(5000), Debit)
    );
    assert_eq!(
        (s.lines[1].line_no, s.lines[1].booked_at),
        (12, utc("2025-09-01T06:45:00Z"))
    );
    assert_eq!(
        (s.lines[1].bank_ref.as_deref(), s.lines[1].memo.as_str()),
        (Some("R2"), "a, b")
    );
}

#[test]
fn header_problems_are_format_errors() {
    let no_memo = String::from_utf8(VCB.to_vec())
        .unwrap()
        .replace(",Mô tả", ",Nội dung");
    let err = parse(no_memo.as_bytes(), Some("vietcombank"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 8: the header row has no column 'Mô tả'"
    );
    let bilingual = String::from_utf8(TCB.to_vec())
        .unwrap()
        .replace("Nợ,Có,Số dư", "\"Nợ\nDebit\",Có/Credit,Số dư (VND)");
    assert_eq!(
        parse(bilingual.as_bytes(), None, None).unwrap().lines.len(),
        6
    );
}

#[test]
fn mappings_are_validated() {
    let mut m = custom_mapping();
    m.credit = Some("Có".into());
    assert_eq!(code(parse(CUSTOM, None, Some(&m))), "statement_mapping");
    let mut m = custom_mapping();
    m.amount = None;
    assert_eq!(code(parse(CUSTOM, None, Some(&m))), "statement_mapping");
    let mut m = custom_mapping();
    m.date_format = "%Q".into();
    assert_eq!(code(parse_csv(CUSTOM, &m)), "statement_mapping");
    let mut m = custom_mapping();
    m.memo = " ".into();
    assert_eq!(code(parse_csv(CUSTOM, &m)), "statement_mapping");
    assert_eq!(Preset::from_name("TCB"), Some(Preset::Techcombank));
    assert_eq!(Preset::from_name("acb"), None);
    assert!(Plan::new(&Preset::Custom.mapping()).is_ok());
}

#[test]
fn amounts_as_vietnamese_exports_write_them() {
    let ok = [
        ("1.235.000", 1_235_000),
        ("1,235,000", 1_235_000),
        ("1235000", 1_235_000),
        ("1 235 000", 1_235_000),
        ("1\u{a0}235\u{a0}000", 1_235_000),
        ("1.235.000 VND", 1_235_000),
        ("1.235.000 vnd", 1_235_000),
        ("1.235.000 VNĐ", 1_235_000),
        ("1.235.000đ", 1_235_000),
        ("VND 1.235.000", 1_235_000),
        ("+1.235.000", 1_235_000),
        ("-1.235.000", -1_235_000),
        ("(22.000)", -22_000),
        ("1.235.000,00", 1_235_000),
        ("1,235,000.00", 1_235_000),
        ("1235000.0", 1_235_000),
        ("1.000", 1000),
        ("0", 0),
    ];
    for (text, want) in ok {
        assert_eq!(parse_amount(text), Ok(want), "{text}");
    }
    let bad = [
        ("1.5", AmountIssue::Fractional),
        ("1.235.000,50", AmountIssue::Fractional),
        ("1,235,000.05", AmountIssue::Fractional),
        ("1.000.00", AmountIssue::NotANumber),
        ("12.34.567", AmountIssue::NotANumber),
        ("1.235,000", AmountIssue::NotANumber),
        ("--5", AmountIssue::NotANumber),
        ("+-5", AmountIssue::NotANumber),
        ("abc", AmountIssue::NotANumber),
        ("", AmountIssue::NotANumber),
        ("1e6", AmountIssue::NotANumber),
        ("99999999999999999999", AmountIssue::TooLarge),
        ("100 usd", AmountIssue::Currency("USD".into())),
        ("EUR 100", AmountIssue::Currency("EUR".into())),
    ];
    for (text, want) in bad {
        assert_eq!(parse_amount(text), Err(want), "{text}");
    }
    assert_eq!(parse_decimal_dong("0001235000.000"), Ok(1_235_000));
    assert_eq!(parse_decimal_dong("1e3"), Err(AmountIssue::NotANumber));
    assert_eq!(
        parse_decimal_dong("10000000000000"),
        Err(AmountIssue::TooLarge)
    );
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        hint in proptest::option::of(prop_oneof![
            Just("camt053"), Just("vietcombank"), Just("techcombank"), Just("custom"), Just("?")
        ]),
    ) {
        let _ = parse(&bytes, hint, Some(&custom_mapping()));
        let _ = parse(&bytes, None, None);
    }

    #[test]
    fn parse_never_panics_on_text(text in "\\PC{0,512}") {
        let _ = parse(text.as_bytes(), None, None);
    }

    #[test]
    fn parse_never_panics_on_rows_after_a_header(rows in "[0-9.,;+\\-/: ()\"A-Za-zđĐ₫\n\r]{0,400}") {
        let _ = parse(&vcb_with(&rows), None, None);
        let tcb_head = "Ngày giao dịch,Đối tác,Diễn giải,Nợ,Có,Số dư,Mã giao dịch\n";
        let _ = parse(format!("{tcb_head}{rows}").as_bytes(), None, None);
        let custom_head = "Ngày hạch toán;Giờ;Số bút toán;Số tiền;Người chuyển;Nội dung;Số dư\n";
        let _ = parse(format!("{custom_head}{rows}").as_bytes(), None, Some(&custom_mapping()));
    }

    #[test]
    fn parse_never_panics_inside_a_camt_entry(inner in "[<>/&;=\"a-zA-Z0-9 .:+\\-]{0,300}") {
        let xml = camt(&format!("<Ntry><Amt Ccy=\"VND\">{inner}</Amt>{inner}</Ntry>"));
        let _ = parse(xml.as_bytes(), None, None);
    }

    #[test]
    fn grouped_amounts_read_back(n in 1i64..=MAX_DONG) {
        let dotted = vnd(n).formatted();
        prop_assert_eq!(parse_amount(&dotted), Ok(n));
        let commas = dotted.replace('.', ",").replace(" ₫", ".00");
        prop_assert_eq!(parse_amount(&commas), Ok(n));
    }
}
