//! Reading certificates for `bulk` (specs/bulk.md §2): bulk streams, JSON lines and directories,
//! from files or standard input, one record at a time so memory stays bounded.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use tongban_core::envelope::Kind;

/// The largest certificate (specs/encoding.md §5), and so the largest stream record.
pub const MAX_RECORD: usize = Kind::Certificate.size_limit() as usize;

/// The longest JSON line that can hold a certificate of at most [`MAX_RECORD`] bytes: its padded
/// base64, two quotes, and some room for whitespace around the string.
pub const MAX_LINE: usize = MAX_RECORD.div_ceil(3) * 4 + 2 + 64;

/// How a file or standard input is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The first byte decides: 0x00 opens a bulk stream, anything else JSON lines.
    Auto,
    Stream,
    Jsonl,
}

/// Why reading stopped; each has a stable code (specs/bulk.md §2.4).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("INPUT_UNREADABLE: {input}: {source}")]
    Unreadable { input: String, source: io::Error },
    #[error("STREAM_TRUNCATED: {input}: record {index} at byte {offset} ends early")]
    StreamTruncated {
        input: String,
        index: u64,
        offset: u64,
    },
    #[error(
        "STREAM_RECORD_TOO_LONG: {input}: record {index} at byte {offset} claims {length} bytes; the limit is {MAX_RECORD}"
    )]
    RecordTooLong {
        input: String,
        index: u64,
        offset: u64,
        length: u64,
    },
    #[error("JSONL_INVALID: {input}: line {line}: {reason}")]
    Line {
        input: String,
        line: u64,
        reason: String,
    },
}

/// Where one certificate came from.
#[derive(Clone, Debug)]
pub struct Position {
    /// The input as named on the command line, or a file inside a named directory, as a JSON
    /// string literal (made once per input, not once per certificate).
    pub input_json: std::sync::Arc<str>,
    /// The certificate's number within that input, from 0.
    pub index: u64,
}

/// One command-line input.
#[derive(Clone, Debug)]
pub enum Source {
    Stdin,
    Path(PathBuf),
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::Path(PathBuf::from(arg))
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Stdin => "-".to_owned(),
            Source::Path(p) => p.display().to_string(),
        }
    }
}

/// The records of one input.
type Boxed = Box<dyn Iterator<Item = Result<(Position, Vec<u8>), InputError>>>;

/// Every certificate of every input, in order.
pub struct Records {
    sources: std::vec::IntoIter<Source>,
    format: Format,
    current: Option<Boxed>,
    failed: bool,
}

impl Records {
    pub fn new(sources: Vec<Source>, format: Format) -> Records {
        Records {
            sources: sources.into_iter(),
            format,
            current: None,
            failed: false,
        }
    }
}

impl Iterator for Records {
    type Item = Result<(Position, Vec<u8>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(current) = &mut self.current {
                match current.next() {
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    Some(ok) => return Some(ok),
                    None => self.current = None,
                }
            }
            let source = self.sources.next()?;
            match open(&source, self.format) {
                Ok(records) => self.current = Some(records),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn unreadable(input: &str) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Unreadable {
        input: input.to_owned(),
        source,
    }
}

fn open(source: &Source, format: Format) -> Result<Boxed, InputError> {
    let name = source.name();
    let reader: Box<dyn BufRead> = match source {
        Source::Stdin => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        Source::Path(path) => {
            let metadata = std::fs::metadata(path).map_err(unreadable(&name))?;
            if metadata.is_dir() {
                return Directory::open(path, &name).map(|d| Box::new(d) as Boxed);
            }
            let file = File::open(path).map_err(unreadable(&name))?;
            Box::new(BufReader::with_capacity(1 << 16, file))
        }
    };
    from_reader(reader, &name, format)
}

/// Records of one file or standard input in the given format.
pub fn from_reader(
    mut reader: Box<dyn BufRead>,
    name: &str,
    format: Format,
) -> Result<Boxed, InputError> {
    let format = match format {
        Format::Auto => {
            let first = reader
                .fill_buf()
                .map_err(unreadable(name))?
                .first()
                .copied();
            match first {
                // Lengths are at most 65,536 < 2^24: a stream's first byte is always zero.
                Some(0) | None => Format::Stream,
                Some(_) => Format::Jsonl,
            }
        }
        other => other,
    };
    let input: std::sync::Arc<str> = super::json_string(name).into();
    Ok(match format {
        Format::Jsonl => Box::new(JsonLines {
            reader,
            name: name.to_owned(),
            input,
            line: 0,
            index: 0,
            buffer: Vec::new(),
            done: false,
        }),
        _ => Box::new(Stream {
            reader,
            name: name.to_owned(),
            input,
            index: 0,
            offset: 0,
            done: false,
        }),
    })
}

/// A bulk stream: records of a 4-byte big-endian length and that many bytes.
struct Stream {
    reader: Box<dyn BufRead>,
    /// The input's name, for errors.
    name: String,
    /// The input's name as a JSON string, for result lines.
    input: std::sync::Arc<str>,
    index: u64,
    offset: u64,
    done: bool,
}

impl Stream {
    fn truncated(&self) -> InputError {
        InputError::StreamTruncated {
            input: self.name.clone(),
            index: self.index,
            offset: self.offset,
        }
    }

    fn next_record(&mut self) -> Result<Option<Vec<u8>>, InputError> {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let read = match self.reader.read(&mut prefix[got..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(unreadable(&self.name)(e)),
            };
            if read == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(self.truncated())
                };
            }
            got += read;
        }
        let length = u64::from(u32::from_be_bytes(prefix));
        if length > MAX_RECORD as u64 {
            return Err(InputError::RecordTooLong {
                input: self.name.clone(),
                index: self.index,
                offset: self.offset,
                length,
            });
        }
        let mut record = vec![0u8; length as usize];
        self.reader.read_exact(&mut record).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.truncated()
            } else {
                unreadable(&self.name)(e)
            }
        })?;
        self.offset += 4 + length;
        Ok(Some(record))
    }
}

impl Iterator for Stream {
    type Item = Result<(Position, Vec<u8>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => {
                let position = Position {
                    input_json: self.input.clone(),
                    index: self.index,
                };
                self.index += 1;
                Some(Ok((position, record)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// JSON lines: each non-blank line a JSON string holding a certificate in padded base64.
struct JsonLines {
    reader: Box<dyn BufRead>,
    /// The input's name, for errors.
    name: String,
    /// The input's name as a JSON string, for result lines.
    input: std::sync::Arc<str>,
    line: u64,
    index: u64,
    buffer: Vec<u8>,
    done: bool,
}

/// A line cut off at [`MAX_LINE`] bytes: what follows up to the newline is skipped, never held.
enum Line {
    End,
    Whole,
    TooLong,
}

impl JsonLines {
    fn read_line(&mut self) -> Result<Line, InputError> {
        self.buffer.clear();
        // The content, a CR before the LF, and the LF: neither of the last two counts.
        let mut limited = (&mut self.reader).take(MAX_LINE as u64 + 2);
        let read = limited
            .read_until(b'\n', &mut self.buffer)
            .map_err(unreadable(&self.name))?;
        if read == 0 {
            return Ok(Line::End);
        }
        self.line += 1;
        let ended = self.buffer.last() == Some(&b'\n');
        let mut length = self.buffer.len() - usize::from(ended);
        if ended && self.buffer[..length].last() == Some(&b'\r') {
            length -= 1;
        }
        if length > MAX_LINE {
            if ended {
                return Ok(Line::TooLong);
            }
            // Skip the rest of the line in bounded pieces.
            loop {
                let (skip, found) = {
                    let available = self.reader.fill_buf().map_err(unreadable(&self.name))?;
                    if available.is_empty() {
                        break;
                    }
                    match available.iter().position(|&b| b == b'\n') {
                        Some(at) => (at + 1, true),
                        None => (available.len(), false),
                    }
                };
                self.reader.consume(skip);
                if found {
                    break;
                }
            }
            return Ok(Line::TooLong);
        }
        Ok(Line::Whole)
    }

    fn invalid(&self, reason: impl Into<String>) -> InputError {
        InputError::Line {
            input: self.name.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }

    fn next_record(&mut self) -> Result<Option<Vec<u8>>, InputError> {
        loop {
            match self.read_line()? {
                Line::End => return Ok(None),
                Line::TooLong => {
                    // Longer than any certificate's encoding: a certificate over the size limit.
                    // One byte past the limit makes the verifier say TOO_LARGE, as the single
                    // path does for such a file, without holding the line.
                    return Ok(Some(vec![0u8; MAX_RECORD + 1]));
                }
                Line::Whole => {}
            }
            let text = std::str::from_utf8(&self.buffer)
                .map_err(|_| self.invalid("not UTF-8"))?
                // JSON's white space only (RFC 8259): not the other Unicode spaces `trim` takes.
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if text.is_empty() {
                continue;
            }
            let encoded: String = serde_json::from_str(text)
                .map_err(|e| self.invalid(format!("not a JSON string: {e}")))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| self.invalid(format!("not padded standard base64: {e}")))?;
            return Ok(Some(bytes));
        }
    }
}

impl Iterator for JsonLines {
    type Item = Result<(Position, Vec<u8>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => {
                let position = Position {
                    input_json: self.input.clone(),
                    index: self.index,
                };
                self.index += 1;
                Some(Ok((position, record)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A directory: each regular file directly in it is one certificate, in the order the file system
/// lists them (sorting would mean holding every name); names starting with '.' are skipped.
struct Directory {
    entries: std::fs::ReadDir,
    name: String,
}

impl Directory {
    fn open(path: &Path, name: &str) -> Result<Directory, InputError> {
        Ok(Directory {
            entries: std::fs::read_dir(path).map_err(unreadable(name))?,
            name: name.to_owned(),
        })
    }

    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, InputError> {
        let file_name = path.display().to_string();
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return Err(unreadable(&file_name)(e)),
        };
        if !metadata.is_file() {
            return Ok(None);
        }
        // Read one byte past the limit at most: a larger file is TOO_LARGE whatever follows.
        let file = File::open(path).map_err(unreadable(&file_name))?;
        let mut bytes = Vec::new();
        file.take(MAX_RECORD as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable(&file_name))?;
        Ok(Some(bytes))
    }
}

impl Iterator for Directory {
    type Item = Result<(Position, Vec<u8>), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.entries.next()? {
                Ok(entry) => entry,
                Err(e) => return Some(Err(unreadable(&self.name)(e))),
            };
            if entry.file_name().as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            match self.read(&path) {
                Ok(Some(bytes)) => {
                    let position = Position {
                        input_json: super::json_string(&path.display().to_string()).into(),
                        index: 0,
                    };
                    return Some(Ok((position, bytes)));
                }
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: &[u8], format: Format) -> Vec<Result<Vec<u8>, String>> {
        let reader: Box<dyn BufRead> = Box::new(io::Cursor::new(bytes.to_vec()));
        match from_reader(reader, "test", format) {
            Ok(records) => records
                .map(|r| r.map(|(_, b)| b).map_err(|e| e.to_string()))
                .collect(),
            Err(e) => vec![Err(e.to_string())],
        }
    }

    #[test]
    fn stream_records_and_their_errors() {
        let mut stream = Vec::new();
        for record in [&b"abc"[..], b"", b"\x00\x01"] {
            stream.extend_from_slice(&(record.len() as u32).to_be_bytes());
            stream.extend_from_slice(record);
        }
        let got = records(&stream, Format::Auto);
        assert_eq!(got, vec![Ok(b"abc".to_vec()), Ok(vec![]), Ok(vec![0, 1])]);
        assert!(records(&[], Format::Auto).is_empty());
        let cut = records(&stream[..stream.len() - 1], Format::Stream);
        assert!(
            matches!(cut.last(), Some(Err(e)) if e.starts_with("STREAM_TRUNCATED: test: record 2 at byte 11"))
        );
        let cut = records(&stream[..2], Format::Stream);
        assert!(matches!(cut.last(), Some(Err(e)) if e.starts_with("STREAM_TRUNCATED")));
        let long = (MAX_RECORD as u32 + 1).to_be_bytes();
        let refused = records(&long, Format::Stream);
        assert!(matches!(refused.last(), Some(Err(e)) if e.starts_with("STREAM_RECORD_TOO_LONG")));
        // The largest record is accepted.
        let mut largest = (MAX_RECORD as u32).to_be_bytes().to_vec();
        largest.resize(4 + MAX_RECORD, 7);
        assert_eq!(records(&largest, Format::Stream).len(), 1);
    }

    #[test]
    fn json_lines_and_their_errors() {
        let text = b"\"YWJj\"\n\n  \"AAE=\"  \r\n\"\"\n";
        assert_eq!(
            records(text, Format::Auto),
            vec![Ok(b"abc".to_vec()), Ok(vec![0, 1]), Ok(vec![])]
        );
        let bad = records(b"\"YWJj\"\n{\"c\": 1}\n\"AAE=\"\n", Format::Auto);
        assert_eq!(bad.len(), 2);
        assert!(matches!(&bad[1], Err(e) if e.starts_with("JSONL_INVALID: test: line 2")));
        let bad = records(b"\"YWJ\"\n", Format::Jsonl);
        assert!(matches!(&bad[0], Err(e) if e.contains("base64")));
        // A line too long for any certificate is one certificate over the limit, and the next
        // line is read as usual.
        let mut long = vec![b'"'];
        long.resize(MAX_LINE + 10, b'A');
        long.extend_from_slice(b"\"\n\"YWJj\"\n");
        let got = records(&long, Format::Jsonl);
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Ok(b) if b.len() == MAX_RECORD + 1));
        assert_eq!(got[1], Ok(b"abc".to_vec()));
        // bulk.md §2.2: a CR before the LF does not count toward the limit.
        let padded = |length: usize| {
            let mut line = b"\"YWJj\"".to_vec();
            line.resize(length, b' ');
            line.extend_from_slice(b"\r\n\"AAE=\"\n");
            records(&line, Format::Jsonl)
        };
        assert_eq!(padded(MAX_LINE), vec![Ok(b"abc".to_vec()), Ok(vec![0, 1])]);
        let over = padded(MAX_LINE + 1);
        assert!(matches!(&over[0], Ok(b) if b.len() == MAX_RECORD + 1));
        assert_eq!(over[1], Ok(vec![0, 1]));
        // Only JSON's white space surrounds a value: an ideographic space is not JSON.
        let bad = records("\u{3000}\"YWJj\"\n".as_bytes(), Format::Jsonl);
        assert!(matches!(&bad[0], Err(e) if e.starts_with("JSONL_INVALID")));
    }
}
