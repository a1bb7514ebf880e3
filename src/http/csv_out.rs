//! The one way the service writes CSV: every cell goes through `spreadsheet_safe`, so nothing a
//! person or a sender typed reaches an auditor's spreadsheet as a formula.

use crate::domain::text::spreadsheet_safe;
use crate::error::{Error, Result};

pub struct CsvOut {
    w: csv::Writer<Vec<u8>>,
}

impl CsvOut {
    pub fn new() -> Self {
        Self {
            w: csv::Writer::from_writer(Vec::new()),
        }
    }

    pub fn row<I, S>(&mut self, cells: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.w
            .write_record(
                cells
                    .into_iter()
                    .map(|c| spreadsheet_safe(c.as_ref()).into_owned()),
            )
            .map_err(|e| Error::Internal(format!("csv: {e}")))
    }

    pub fn finish(self) -> Result<String> {
        let bytes = self
            .w
            .into_inner()
            .map_err(|e| Error::Internal(format!("csv: {e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::Internal(format!("csv: {e}")))
    }
}

impl Default for CsvOut {
    fn default() -> Self {
        Self::new()
    }
}
