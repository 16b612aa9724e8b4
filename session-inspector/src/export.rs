//! Export of the sessions matching a filter to CSV or NDJSON, streamed: one
//! page of rows in memory at a time, whatever the number of rows.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_model::{
    browser_label, Cursor, ListedSession, Page, SessionData, SessionFilter, SessionManager, Sort,
    SortKey,
};

use crate::mask::Masking;
use crate::Result;

/// Rows read per query while exporting.
pub const EXPORT_PAGE: u32 = 1_000;

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header row; `data` is JSON text.
    Csv,
    /// One JSON object per line; `data` is an object.
    Ndjson,
}

impl ExportFormat {
    /// The usual file extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
}

/// A session as the CLI's `show` and `list --json` print it and NDJSON
/// exports it; CSV writes the same fields as columns.
#[derive(Debug, Serialize)]
pub(crate) struct SessionRecord<'a> {
    id: String,
    user_id: Option<&'a str>,
    status: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    version: i64,
    ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    browser: Option<String>,
    remembered: bool,
    timeout_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<SessionData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    corrupt: Option<&'a str>,
    /// A corrupt row's stored text: only with masking off (masking cannot
    /// find secrets in text that is not JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_data: Option<&'a str>,
}

/// `"active"` or `"expired"` at `now`.
pub(crate) fn status_at(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    if expires_at > now {
        "active"
    } else {
        "expired"
    }
}

impl<'a> SessionRecord<'a> {
    /// The record of a listed row at `now`, its data masked as `masking` says.
    pub(crate) fn new(listed: &'a ListedSession, now: DateTime<Utc>, masking: &Masking) -> Self {
        match listed {
            Ok(session) => Self {
                id: session.id.to_string(),
                user_id: session.user_id.as_deref(),
                status: status_at(session.expires_at, now),
                created_at: session.created_at,
                updated_at: session.updated_at,
                expires_at: session.expires_at,
                last_seen_at: session.last_seen_at,
                version: session.version,
                ip_address: session.ip_address.as_deref(),
                user_agent: session.user_agent.as_deref(),
                browser: session
                    .user_agent
                    .as_deref()
                    .map(|agent| browser_label(Some(agent))),
                remembered: session.timeout_seconds.is_some(),
                timeout_seconds: session.timeout_seconds,
                data: Some(masking.mask_data(&session.data)),
                corrupt: None,
                raw_data: None,
            },
            Err(corrupt) => Self {
                id: corrupt.id.clone(),
                user_id: corrupt.user_id.as_deref(),
                status: status_at(corrupt.expires_at, now),
                created_at: corrupt.created_at,
                updated_at: corrupt.updated_at,
                expires_at: corrupt.expires_at,
                last_seen_at: None,
                version: corrupt.version,
                ip_address: None,
                user_agent: None,
                browser: None,
                remembered: false,
                timeout_seconds: None,
                data: None,
                corrupt: Some(&corrupt.reason),
                raw_data: (!masking.enabled).then_some(corrupt.raw_data.as_str()),
            },
        }
    }
}

/// Writes every session matching `filter` (newest first) to `out` as `format`,
/// with secret values masked as `masking` says. `progress` gets the number of
/// rows written after each page and returns whether to go on. Returns the rows
/// written; a cancelled export has written whole rows only.
///
/// # Errors
///
/// Database and output errors.
pub fn export(
    manager: &SessionManager,
    filter: &SessionFilter,
    format: ExportFormat,
    masking: &Masking,
    out: &mut dyn Write,
    mut progress: impl FnMut(u64) -> bool,
) -> Result<u64> {
    let sort = Sort {
        key: SortKey::CreatedAt,
        descending: true,
    };
    let mut sink = match format {
        ExportFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(out);
            writer.write_record(CSV_HEADER)?;
            Sink::Csv(Box::new(writer))
        }
        ExportFormat::Ndjson => Sink::Ndjson(out),
    };
    let mut page = Page::first(EXPORT_PAGE);
    let mut written = 0u64;
    let now = manager.now();
    loop {
        let rows = manager.list(filter, sort, page)?;
        for listed in &rows {
            match &mut sink {
                Sink::Csv(writer) => write_csv(writer, listed, masking, now)?,
                Sink::Ndjson(out) => write_ndjson(&mut **out, listed, masking, now)?,
            }
            written += 1;
        }
        match &mut sink {
            Sink::Csv(writer) => writer.flush()?,
            Sink::Ndjson(out) => out.flush()?,
        }
        let go_on = progress(written);
        let full = rows.len() >= EXPORT_PAGE as usize;
        let Some(last) = rows.last() else {
            break;
        };
        if !full || !go_on {
            break;
        }
        page = Page::After {
            cursor: cursor_after(last)?,
            limit: EXPORT_PAGE,
        };
    }
    Ok(written)
}

/// Where rows go.
enum Sink<'a> {
    /// Boxed: the CSV writer carries its buffer inline.
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Ndjson(&'a mut dyn Write),
}

/// The CSV header, matching [`ExportRow`] then `data`.
const CSV_HEADER: [&str; 14] = [
    "id",
    "user_id",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "last_seen_at",
    "version",
    "ip_address",
    "browser",
    "user_agent",
    "remembered",
    "corrupt",
    "data",
];

fn cursor_after(listed: &ListedSession) -> Result<Cursor> {
    match listed {
        Ok(session) => Ok(Cursor::after(session, SortKey::CreatedAt)),
        // A corrupt row pages by its id as stored, canonical or not.
        Err(corrupt) => Cursor::after_corrupt(corrupt, SortKey::CreatedAt).ok_or_else(|| {
            shared_model::Error::Schema {
                problems: vec![format!(
                    "a stored id is not 36 characters long ({:?}); cannot page past it",
                    corrupt.id
                )],
            }
            .into()
        }),
    }
}

/// A listed row's id as stored.
pub(crate) fn listed_id(listed: &ListedSession) -> String {
    match listed {
        Ok(session) => session.id.to_string(),
        Err(corrupt) => corrupt.id.clone(),
    }
}

fn write_ndjson(
    out: &mut dyn Write,
    listed: &ListedSession,
    masking: &Masking,
    now: DateTime<Utc>,
) -> Result<()> {
    serde_json::to_writer(&mut *out, &SessionRecord::new(listed, now, masking))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A CSV cell a spreadsheet will not run as a formula: text a client or user
/// controls (a user agent, a user id) that starts with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading `'` (OWASP's advice for CSV
/// injection). NDJSON is written as is.
fn defuse(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn write_csv<W: Write>(
    writer: &mut csv::Writer<W>,
    listed: &ListedSession,
    masking: &Masking,
    now: DateTime<Utc>,
) -> Result<()> {
    let row = SessionRecord::new(listed, now, masking);
    let data = match &row.data {
        Some(data) => serde_json::to_string(data)?,
        None => String::new(),
    };
    let time = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let text = |value: Option<&str>| defuse(value.unwrap_or_default());
    writer.write_record([
        row.id.clone(),
        text(row.user_id),
        row.status.to_owned(),
        time(row.created_at),
        time(row.updated_at),
        time(row.expires_at),
        row.last_seen_at.map(time).unwrap_or_default(),
        row.version.to_string(),
        text(row.ip_address),
        defuse(&row.browser.unwrap_or_default()),
        text(row.user_agent),
        row.remembered.to_string(),
        text(row.corrupt),
        defuse(&data),
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::defuse;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_defused() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("-1+2"), "'-1+2");
        assert_eq!(defuse("Mozilla/5.0"), "Mozilla/5.0");
        assert_eq!(defuse(""), "");
    }
}
