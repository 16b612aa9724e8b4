//! Export of the sessions matching a filter to CSV or NDJSON, streamed: one
//! page of rows in memory at a time, whatever the number of rows.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared_model::{
    browser_label, Cursor, ListedSession, Page, SessionFilter, SessionManager, Sort, SortKey,
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

/// One exported row (the CSV columns, in order).
#[derive(Debug, Serialize)]
struct ExportRow<'a> {
    id: &'a str,
    user_id: Option<&'a str>,
    status: &'static str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_seen_at: Option<DateTime<Utc>>,
    version: i64,
    ip_address: Option<&'a str>,
    browser: Option<String>,
    user_agent: Option<&'a str>,
    remembered: bool,
    corrupt: Option<&'a str>,
}

/// The data column: an object in NDJSON, its text in CSV.
#[derive(Debug, Serialize)]
struct WithData<'a, D: Serialize> {
    #[serde(flatten)]
    row: ExportRow<'a>,
    data: D,
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

fn row<'a>(listed: &'a ListedSession, id: &'a str, now: DateTime<Utc>) -> ExportRow<'a> {
    let status = |expires_at: DateTime<Utc>| {
        if expires_at > now {
            "active"
        } else {
            "expired"
        }
    };
    match listed {
        Ok(session) => ExportRow {
            id,
            user_id: session.user_id.as_deref(),
            status: status(session.expires_at),
            created_at: session.created_at,
            updated_at: session.updated_at,
            expires_at: session.expires_at,
            last_seen_at: session.last_seen_at,
            version: session.version,
            ip_address: session.ip_address.as_deref(),
            browser: session
                .user_agent
                .as_deref()
                .map(|agent| browser_label(Some(agent))),
            user_agent: session.user_agent.as_deref(),
            remembered: session.timeout_seconds.is_some(),
            corrupt: None,
        },
        Err(corrupt) => ExportRow {
            id,
            user_id: corrupt.user_id.as_deref(),
            status: status(corrupt.expires_at),
            created_at: corrupt.created_at,
            updated_at: corrupt.updated_at,
            expires_at: corrupt.expires_at,
            last_seen_at: None,
            version: corrupt.version,
            ip_address: None,
            browser: None,
            user_agent: None,
            remembered: false,
            corrupt: Some(&corrupt.reason),
        },
    }
}

fn listed_id(listed: &ListedSession) -> String {
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
    let id = listed_id(listed);
    // A corrupt row's raw text is not exported: it may hold secrets that
    // masking cannot find in text that is not JSON.
    let data = listed
        .as_ref()
        .ok()
        .map(|session| masking.mask_data(&session.data));
    serde_json::to_writer(
        &mut *out,
        &WithData {
            row: row(listed, &id, now),
            data,
        },
    )?;
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
    let id = listed_id(listed);
    let data = match listed {
        Ok(session) => serde_json::to_string(&masking.mask_data(&session.data))?,
        Err(_) => String::new(),
    };
    let row = row(listed, &id, now);
    let time = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let text = |value: Option<&str>| defuse(value.unwrap_or_default());
    writer.write_record([
        row.id.to_owned(),
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
