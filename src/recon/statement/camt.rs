//! ISO 20022 camt.053 (`BkToCstmrStmt`, versions 001.02 to 001.08), read as a stream.

use super::*;

/// The elements the parser looks at; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tag {
    Document,
    BkToCstmrStmt,
    Stmt,
    Acct,
    Id,
    Iban,
    Othr,
    Ccy,
    Ntry,
    Amt,
    CdtDbtInd,
    BookgDt,
    ValDt,
    Dt,
    DtTm,
    AcctSvcrRef,
    NtryDtls,
    TxDtls,
    Refs,
    EndToEndId,
    TxId,
    RmtInf,
    Ustrd,
    RltdPties,
    Dbtr,
    Cdtr,
    DbtrAcct,
    CdtrAcct,
    Pty,
    Nm,
    AddtlNtryInf,
    AddtlTxInf,
    Other,
}

pub(super) fn tag(local_name: &[u8]) -> Tag {
    match local_name {
        b"Document" => Tag::Document,
        b"BkToCstmrStmt" => Tag::BkToCstmrStmt,
        b"Stmt" => Tag::Stmt,
        b"Acct" => Tag::Acct,
        b"Id" => Tag::Id,
        b"IBAN" => Tag::Iban,
        b"Othr" => Tag::Othr,
        b"Ccy" => Tag::Ccy,
        b"Ntry" => Tag::Ntry,
        b"Amt" => Tag::Amt,
        b"CdtDbtInd" => Tag::CdtDbtInd,
        b"BookgDt" => Tag::BookgDt,
        b"ValDt" => Tag::ValDt,
        b"Dt" => Tag::Dt,
        b"DtTm" => Tag::DtTm,
        b"AcctSvcrRef" => Tag::AcctSvcrRef,
        b"NtryDtls" => Tag::NtryDtls,
        b"TxDtls" => Tag::TxDtls,
        b"Refs" => Tag::Refs,
        b"EndToEndId" => Tag::EndToEndId,
        b"TxId" => Tag::TxId,
        b"RmtInf" => Tag::RmtInf,
        b"Ustrd" => Tag::Ustrd,
        b"RltdPties" => Tag::RltdPties,
        b"Dbtr" => Tag::Dbtr,
        b"Cdtr" => Tag::Cdtr,
        b"DbtrAcct" => Tag::DbtrAcct,
        b"CdtrAcct" => Tag::CdtrAcct,
        b"Pty" => Tag::Pty,
        b"Nm" => Tag::Nm,
        b"AddtlNtryInf" => Tag::AddtlNtryInf,
        b"AddtlTxInf" => Tag::AddtlTxInf,
        _ => Tag::Other,
    }
}

pub(super) const STMT_PATH: [Tag; 3] = [Tag::Document, Tag::BkToCstmrStmt, Tag::Stmt];

/// What one `Ntry` said, before it is checked.
#[derive(Default)]
pub(super) struct Draft {
    ccy: Option<String>,
    amount: Option<String>,
    cdt_dbt: Option<String>,
    booked: Option<String>,
    valued: Option<String>,
    ntry_ref: Option<String>,
    tx_svcr_ref: Option<String>,
    end_to_end: Option<String>,
    tx_id: Option<String>,
    ustrd: Vec<String>,
    addtl_ntry: Option<String>,
    addtl_tx: Option<String>,
    debtor_name: Option<String>,
    debtor_account: Option<String>,
    creditor_name: Option<String>,
    creditor_account: Option<String>,
}

/// Keeps the first non-empty value: several `TxDtls` may repeat a field.
pub(super) fn set_first(slot: &mut Option<String>, text: &str) {
    if slot.is_none() && !text.is_empty() {
        *slot = Some(text.to_owned());
    }
}

impl Draft {
    /// `rest` is the path below `Ntry`, ending at the element just closed.
    fn take(&mut self, rest: &[Tag], text: &str) {
        use Tag::*;
        match rest {
            [Amt] => self.amount = Some(text.to_owned()),
            [CdtDbtInd] => set_first(&mut self.cdt_dbt, text),
            [BookgDt, Dt | DtTm] => set_first(&mut self.booked, text),
            [ValDt, Dt | DtTm] => set_first(&mut self.valued, text),
            [AcctSvcrRef] => set_first(&mut self.ntry_ref, text),
            [AddtlNtryInf] => set_first(&mut self.addtl_ntry, text),
            [NtryDtls, TxDtls, tx @ ..] => match tx {
                [Refs, AcctSvcrRef] => set_first(&mut self.tx_svcr_ref, text),
                [Refs, EndToEndId] if !text.eq_ignore_ascii_case("NOTPROVIDED") => {
                    set_first(&mut self.end_to_end, text)
                }
                [Refs, TxId] => set_first(&mut self.tx_id, text),
                [RmtInf, Ustrd] if !text.is_empty() => self.ustrd.push(text.to_owned()),
                [RltdPties, Dbtr, Nm] | [RltdPties, Dbtr, Pty, Nm] => {
                    set_first(&mut self.debtor_name, text)
                }
                [RltdPties, DbtrAcct, Id, Iban] | [RltdPties, DbtrAcct, Id, Othr, Id] => {
                    set_first(&mut self.debtor_account, text)
                }
                [RltdPties, Cdtr, Nm] | [RltdPties, Cdtr, Pty, Nm] => {
                    set_first(&mut self.creditor_name, text)
                }
                [RltdPties, CdtrAcct, Id, Iban] | [RltdPties, CdtrAcct, Id, Othr, Id] => {
                    set_first(&mut self.creditor_account, text)
                }
                [AddtlTxInf] => set_first(&mut self.addtl_tx, text),
                _ => {}
            },
            _ => {}
        }
    }

    fn finish(self, entry: usize) -> Result<StatementLine, StatementError> {
        let at = Position::Entry(entry);
        match self.ccy.as_deref() {
            Some(c) if c.eq_ignore_ascii_case("VND") => {}
            Some(c) => {
                return Err(StatementError::Currency {
                    at: Some(at),
                    currency: clip(c),
                })
            }
            None => return Err(row_error(at, "Amt", "", "has no Ccy attribute")),
        }
        let amount_text = self.amount.as_deref().unwrap_or_default();
        let dong =
            parse_decimal_dong(amount_text).map_err(|e| amount_error(at, "Amt", amount_text, e))?;
        if dong == 0 {
            return Err(row_error(at, "Amt", amount_text, "is zero"));
        }
        let amount = Vnd::new(dong)
            .map_err(|_| amount_error(at, "Amt", amount_text, AmountIssue::TooLarge))?;
        let direction = match self.cdt_dbt.as_deref() {
            Some("CRDT") => Direction::Credit,
            Some("DBIT") => Direction::Debit,
            other => {
                return Err(row_error(
                    at,
                    "CdtDbtInd",
                    other.unwrap_or_default(),
                    "is not CRDT or DBIT",
                ))
            }
        };
        // Pending entries may carry only a value date.
        let (column, date_text) = match (&self.booked, &self.valued) {
            (Some(b), _) => ("BookgDt", b.as_str()),
            (None, Some(v)) => ("ValDt", v.as_str()),
            (None, None) => return Err(row_error(at, "BookgDt", "", "is missing")),
        };
        let booked_at = parse_iso_when(date_text)
            .ok_or_else(|| row_error(at, column, date_text, "is not an ISO date or date-time"))?;
        let memo = if self.ustrd.is_empty() {
            self.addtl_tx.or(self.addtl_ntry).unwrap_or_default()
        } else {
            self.ustrd.join(" ")
        };
        // The other party: who paid in for a credit, who was paid for a debit.
        let counterparty = match direction {
            Direction::Credit => self.debtor_name.or(self.debtor_account),
            Direction::Debit => self.creditor_name.or(self.creditor_account),
        };
        Ok(StatementLine {
            line_no: entry,
            booked_at,
            amount,
            direction,
            bank_ref: self
                .ntry_ref
                .or(self.tx_svcr_ref)
                .or(self.end_to_end)
                .or(self.tx_id),
            memo,
            counterparty,
            balance_after: None,
        })
    }
}

#[derive(Default)]
pub(super) struct Camt {
    account: Option<String>,
    stmt_account: Option<String>,
    lines: Vec<StatementLine>,
    entries: usize,
    draft: Option<Draft>,
}

impl Camt {
    fn start(
        &mut self,
        path: &[Tag],
        tag: Tag,
        element: &BytesStart<'_>,
    ) -> Result<(), StatementError> {
        if path.is_empty() {
            return check_root(tag, element);
        }
        if path == &STMT_PATH[..2] && tag == Tag::Stmt {
            self.stmt_account = None;
        } else if path == &STMT_PATH[..] && tag == Tag::Ntry {
            self.entries += 1;
            self.draft = Some(Draft::default());
        } else if tag == Tag::Amt && path.strip_prefix(&STMT_PATH[..]) == Some(&[Tag::Ntry][..]) {
            if let Some(draft) = self.draft.as_mut() {
                draft.ccy = attribute(element, b"Ccy")?;
            }
        }
        Ok(())
    }

    /// `path` still ends with the element being closed.
    fn end(&mut self, path: &[Tag], text: &str) -> Result<(), StatementError> {
        use Tag::*;
        let Some(rel) = path.strip_prefix(&STMT_PATH[..]) else {
            return Ok(());
        };
        let text = text.trim();
        match rel {
            [] => {
                if let Some(account) = self.stmt_account.take() {
                    match &self.account {
                        None => self.account = Some(account),
                        Some(a) if *a == account => {}
                        Some(a) => {
                            return Err(format_error(
                                None,
                                format!(
                                    "the file holds statements of two accounts ({a} and {}); upload one account's statement",
                                    clip(&account)
                                ),
                            ))
                        }
                    }
                }
            }
            [Acct, Id, Iban] | [Acct, Id, Othr, Id] => set_first(&mut self.stmt_account, text),
            [Acct, Ccy] if !text.eq_ignore_ascii_case("VND") => {
                return Err(StatementError::Currency {
                    at: None,
                    currency: clip(text),
                })
            }
            [Ntry] => {
                if let Some(draft) = self.draft.take() {
                    self.lines.push(draft.finish(self.entries)?);
                }
            }
            [Ntry, rest @ ..] => {
                if let Some(draft) = self.draft.as_mut() {
                    draft.take(rest, text);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) fn attribute(
    element: &BytesStart<'_>,
    name: &[u8],
) -> Result<Option<String>, StatementError> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
        if attr.key.as_ref() == name {
            let value = attr
                .unescape_value()
                .map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
            return Ok(Some(value.trim().to_owned()));
        }
    }
    Ok(None)
}

/// The root must be a camt.053 `Document` of a supported version.
pub(super) fn check_root(tag: Tag, element: &BytesStart<'_>) -> Result<(), StatementError> {
    if tag != Tag::Document {
        let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
        return Err(format_error(
            None,
            format!(
                "not a camt.053 statement: the root element is <{}>",
                clip(&name)
            ),
        ));
    }
    let mut version = None;
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            let value = attr
                .unescape_value()
                .map_err(|e| format_error(None, format!("malformed XML attribute: {e}")))?;
            if let Some(v) = value.strip_prefix(CAMT053_NS) {
                version = Some(v.to_owned());
            }
        }
    }
    match version {
        None => Err(format_error(
            None,
            format!("not a camt.053 statement: the Document has no {CAMT053_NS}xx namespace"),
        )),
        Some(v)
            if v.parse::<u32>()
                .is_ok_and(|n| CAMT053_VERSIONS.contains(&n)) =>
        {
            Ok(())
        }
        Some(v) => Err(format_error(
            None,
            format!(
                "camt.053 version 001.{} is not supported; export version 001.02 to 001.08",
                clip(&v)
            ),
        )),
    }
}

pub(super) fn camt_from_text(text: &str) -> Result<Statement, StatementError> {
    let mut reader = Reader::from_str(text);
    let xml_error = |pos: u64, detail: &dyn fmt::Display| {
        let offset = usize::try_from(pos).unwrap_or(usize::MAX);
        format_error(
            Some(Position::Line(line_at(text.as_bytes(), offset))),
            format!("malformed XML: {detail}"),
        )
    };
    let mut camt = Camt::default();
    let mut path: Vec<Tag> = Vec::with_capacity(16);
    // The text of the innermost open element; cleared whenever an element opens or closes.
    let mut content = String::new();
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(reader.error_position(), &e))?;
        match event {
            Event::DocType(_) => {
                let pos = reader.buffer_position();
                let offset = usize::try_from(pos).unwrap_or(usize::MAX);
                return Err(format_error(
                    Some(Position::Line(line_at(text.as_bytes(), offset))),
                    "a DOCTYPE declaration is not allowed in a camt.053 statement",
                ));
            }
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let utf8 = [b"utf-8".as_slice(), b"utf8", b"us-ascii", b"ascii"]
                        .iter()
                        .any(|e| encoding.eq_ignore_ascii_case(e));
                    if !utf8 && !text.is_ascii() {
                        return Err(StatementError::Encoding {
                            at: Some(Position::Line(1)),
                            detail: format!(
                                "it declares encoding {}",
                                clip(&String::from_utf8_lossy(&encoding))
                            ),
                        });
                    }
                }
            }
            Event::Start(element) => {
                if seen_root && path.is_empty() {
                    return Err(format_error(None, "malformed XML: a second root element"));
                }
                let t = tag(element.local_name().as_ref());
                camt.start(&path, t, &element)?;
                seen_root = true;
                path.push(t);
                if path.len() > MAX_XML_DEPTH {
                    return Err(format_error(
                        None,
                        format!("elements are nested deeper than {MAX_XML_DEPTH} levels"),
                    ));
                }
                content.clear();
            }
            Event::Empty(element) => {
                if seen_root && path.is_empty() {
                    return Err(format_error(None, "malformed XML: a second root element"));
                }
                let t = tag(element.local_name().as_ref());
                camt.start(&path, t, &element)?;
                seen_root = true;
                path.push(t);
                camt.end(&path, "")?;
                path.pop();
                content.clear();
            }
            Event::End(_) => {
                camt.end(&path, &content)?;
                path.pop();
                content.clear();
            }
            Event::Text(t) if !path.is_empty() => {
                let unescaped = t
                    .unescape()
                    .map_err(|e| xml_error(reader.buffer_position(), &e))?;
                content.push_str(&unescaped);
            }
            Event::CData(c) if !path.is_empty() => {
                let decoded = c
                    .decode()
                    .map_err(|e| xml_error(reader.buffer_position(), &e))?;
                content.push_str(&decoded);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(format_error(
            None,
            "not a camt.053 statement: no XML element",
        ));
    }
    if !path.is_empty() {
        return Err(format_error(
            Some(Position::Line(line_at(text.as_bytes(), text.len()))),
            "malformed XML: the file ends before the Document is closed",
        ));
    }
    if camt.lines.is_empty() {
        return Err(StatementError::Empty);
    }
    Ok(Statement {
        account: camt.account,
        currency: "VND".to_owned(),
        lines: camt.lines,
        format: Format::Camt053,
    })
}
