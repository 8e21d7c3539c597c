//! Rows in PostgreSQL's COPY text format, and loading them with `COPY … FROM STDIN`.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::SinkExt;

/// One table's rows in COPY text format (tab-separated, `\N` for null, backslash escapes).
pub struct CopyBuf {
    pub table: &'static str,
    pub columns: &'static str,
    data: String,
    at_row_start: bool,
    pub(super) rows: usize,
}

impl CopyBuf {
    pub fn new(table: &'static str, columns: &'static str) -> CopyBuf {
        CopyBuf {
            table,
            columns,
            data: String::with_capacity(1 << 20),
            at_row_start: true,
            rows: 0,
        }
    }

    fn sep(&mut self) {
        if !self.at_row_start {
            self.data.push('\t');
        }
        self.at_row_start = false;
    }

    pub fn int(&mut self, v: i64) -> &mut CopyBuf {
        self.sep();
        // unwrap: writing to a String cannot fail.
        write!(self.data, "{v}").unwrap();
        self
    }

    pub fn text(&mut self, v: &str) -> &mut CopyBuf {
        self.sep();
        for c in v.chars() {
            match c {
                '\\' => self.data.push_str("\\\\"),
                '\t' => self.data.push_str("\\t"),
                '\n' => self.data.push_str("\\n"),
                '\r' => self.data.push_str("\\r"),
                c => self.data.push(c),
            }
        }
        self
    }

    pub fn null(&mut self) -> &mut CopyBuf {
        self.sep();
        self.data.push_str("\\N");
        self
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut CopyBuf {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn opt_int(&mut self, v: Option<i64>) -> &mut CopyBuf {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, v: bool) -> &mut CopyBuf {
        self.sep();
        self.data.push(if v { 't' } else { 'f' });
        self
    }

    pub fn ts(&mut self, v: DateTime<Utc>) -> &mut CopyBuf {
        self.sep();
        // unwrap: writing to a String cannot fail.
        write!(self.data, "{}", v.format("%Y-%m-%d %H:%M:%S%.6f+00")).unwrap();
        self
    }

    pub fn opt_ts(&mut self, v: Option<DateTime<Utc>>) -> &mut CopyBuf {
        match v {
            Some(v) => self.ts(v),
            None => self.null(),
        }
    }

    pub fn date(&mut self, v: NaiveDate) -> &mut CopyBuf {
        self.sep();
        // unwrap: writing to a String cannot fail.
        write!(self.data, "{}", v.format("%Y-%m-%d")).unwrap();
        self
    }

    pub fn end_row(&mut self) {
        self.data.push('\n');
        self.at_row_start = true;
        self.rows += 1;
    }

    /// Sends the rows to the server; returns how many it stored.
    pub async fn load(self, client: &tokio_postgres::Client) -> anyhow::Result<u64> {
        if self.rows == 0 {
            return Ok(0);
        }
        let statement = format!("COPY {} ({}) FROM STDIN", self.table, self.columns);
        let sink = client.copy_in::<_, bytes::Bytes>(&statement).await?;
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(self.data)).await?;
        let stored = sink
            .finish()
            .await
            .with_context(|| format!("COPY into {} failed", self.table))?;
        anyhow::ensure!(
            stored == self.rows as u64,
            "COPY into {} stored {stored} of {} rows",
            self.table,
            self.rows
        );
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nulls() {
        let mut b = CopyBuf::new("t", "a, b, c, d");
        b.int(7).text("tab\there\\ and\nnewline").null().bool(true);
        b.end_row();
        b.opt_text(Some("x"))
            .opt_int(None)
            .date(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())
            .bool(false);
        b.end_row();
        assert_eq!(b.rows, 2);
        assert_eq!(
            b.data,
            "7\ttab\\there\\\\ and\\nnewline\t\\N\tt\nx\t\\N\t2026-01-02\tf\n"
        );
    }
}
