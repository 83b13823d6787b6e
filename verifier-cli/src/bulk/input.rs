//! Reading certificates for `bulk` (specs/bulk.md §2): bulk streams, JSON lines and directories,
//! from files or standard input, one record at a time so memory stays bounded. Each record is read straight into the batch
//! it joins (no buffer of its own), so reading costs a copy per certificate and little else.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;

use tongban_core::bulk::{Batch, Source as RecordSource};
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
    /// string literal (made once per input, not once per certificate). Given on the first record
    /// of each input and of each batch; `None`: the same input as the record before it.
    pub input_json: Option<Arc<str>>,
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
trait Input {
    /// Appends the next record's bytes to `data` and returns its index within its input; `None`
    /// at the end.
    fn read_into(&mut self, data: &mut Vec<u8>) -> Result<Option<u64>, InputError>;
    /// The name of the input the last record came from, as a JSON string.
    fn name_json(&self) -> &Arc<str>;
}

/// Every certificate of every input, in order.
pub struct Records {
    sources: std::vec::IntoIter<Source>,
    format: Format,
    current: Option<Box<dyn Input>>,
    /// The input named in the last tag given.
    named: Option<Arc<str>>,
    failed: bool,
}

impl Records {
    pub fn new(sources: Vec<Source>, format: Format) -> Records {
        Records {
            sources: sources.into_iter(),
            format,
            current: None,
            named: None,
            failed: false,
        }
    }
}

impl RecordSource for Records {
    type Tag = Position;
    type Error = InputError;

    fn read_into(&mut self, batch: &mut Batch<Position>) -> Result<bool, InputError> {
        if self.failed {
            return Ok(false);
        }
        loop {
            if let Some(current) = &mut self.current {
                let first = batch.is_empty();
                let named = &mut self.named;
                let read = batch.push_from(|data| {
                    let Some(index) = current.read_into(data)? else {
                        return Ok(None);
                    };
                    let name = current.name_json();
                    let same = named.as_ref().is_some_and(|n| Arc::ptr_eq(n, name));
                    let input_json = (first || !same).then(|| {
                        *named = Some(name.clone());
                        name.clone()
                    });
                    Ok(Some(Position { input_json, index }))
                });
                match read {
                    Ok(true) => return Ok(true),
                    Ok(false) => self.current = None,
                    Err(e) => {
                        self.failed = true;
                        return Err(e);
                    }
                }
            }
            let Some(source) = self.sources.next() else {
                return Ok(false);
            };
            match open(&source, self.format) {
                Ok(input) => self.current = Some(input),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
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

fn open(source: &Source, format: Format) -> Result<Box<dyn Input>, InputError> {
    let name = source.name();
    let reader: Box<dyn BufRead> = match source {
        Source::Stdin => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
        Source::Path(path) => {
            let metadata = std::fs::metadata(path).map_err(unreadable(&name))?;
            if metadata.is_dir() {
                return Directory::open(path, &name).map(|d| Box::new(d) as Box<dyn Input>);
            }
            let file = File::open(path).map_err(unreadable(&name))?;
            Box::new(BufReader::with_capacity(1 << 16, file))
        }
    };
    from_reader(reader, &name, format)
}

/// Records of one file or standard input in the given format.
fn from_reader(
    mut reader: Box<dyn BufRead>,
    name: &str,
    format: Format,
) -> Result<Box<dyn Input>, InputError> {
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
    let input: Arc<str> = super::json_string(name).into();
    Ok(match format {
        Format::Jsonl => Box::new(JsonLines {
            reader,
            name: name.to_owned(),
            input,
            line: 0,
            index: 0,
            buffer: Vec::new(),
        }),
        _ => Box::new(Stream {
            reader,
            name: name.to_owned(),
            input,
            index: 0,
            offset: 0,
        }),
    })
}

/// A bulk stream: records of a 4-byte big-endian length and that many bytes.
struct Stream {
    reader: Box<dyn BufRead>,
    /// The input's name, for errors.
    name: String,
    /// The input's name as a JSON string, for result lines.
    input: Arc<str>,
    index: u64,
    offset: u64,
}

impl Stream {
    fn truncated(&self) -> InputError {
        InputError::StreamTruncated {
            input: self.name.clone(),
            index: self.index,
            offset: self.offset,
        }
    }
}

impl Input for Stream {
    fn read_into(&mut self, data: &mut Vec<u8>) -> Result<Option<u64>, InputError> {
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
        let start = data.len();
        data.resize(start + length as usize, 0);
        if let Err(e) = self.reader.read_exact(&mut data[start..]) {
            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                self.truncated()
            } else {
                unreadable(&self.name)(e)
            });
        }
        self.offset += 4 + length;
        let index = self.index;
        self.index += 1;
        Ok(Some(index))
    }

    fn name_json(&self) -> &Arc<str> {
        &self.input
    }
}

/// The bytes between the first and last quote of a line that, but for JSON white space around it,
/// starts and ends with one; nothing between them is checked. If they decode as base64 they hold
/// no quote, backslash, control or non-ASCII byte, so the line is one JSON string literal without
/// escapes and they are its value.
fn plain_string(line: &[u8]) -> Option<&[u8]> {
    let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = line.iter().position(|b| !json_space(b))?;
    let end = line.iter().rposition(|b| !json_space(b))?;
    line.get(start..=end)?
        .strip_prefix(b"\"")?
        .strip_suffix(b"\"")
}

/// JSON lines: each non-blank line a JSON string holding a certificate in padded base64.
struct JsonLines {
    reader: Box<dyn BufRead>,
    /// The input's name, for errors.
    name: String,
    /// The input's name as a JSON string, for result lines.
    input: Arc<str>,
    line: u64,
    index: u64,
    buffer: Vec<u8>,
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
}

impl Input for JsonLines {
    fn read_into(&mut self, data: &mut Vec<u8>) -> Result<Option<u64>, InputError> {
        loop {
            match self.read_line()? {
                Line::End => return Ok(None),
                Line::TooLong => {
                    // Longer than any certificate's encoding: a certificate over the size limit.
                    // One byte past the limit makes the verifier say TOO_LARGE, as the single
                    // path does for such a file, without holding the line.
                    data.resize(data.len() + MAX_RECORD + 1, 0);
                    break;
                }
                Line::Whole => {}
            }
            // Nearly every line is a plain string of base64, which holds no byte that JSON
            // escapes or refuses: decoded as it is, it needs no UTF-8 or escape check. Whatever
            // does not decode so is read again the long way, which says what is wrong with it.
            // This decoder accepts only what `B64` accepts (a test holds it to that); `B64`
            // names what is wrong.
            let start = data.len();
            if let Some(encoded) = plain_string(&self.buffer) {
                if base64_simd::STANDARD.decode_append(encoded, data).is_ok() {
                    break;
                }
                data.truncate(start);
            }
            let text = std::str::from_utf8(&self.buffer)
                .map_err(|_| self.invalid("not UTF-8"))?
                // JSON's white space only (RFC 8259): not the other Unicode spaces `trim` takes.
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if text.is_empty() {
                continue;
            }
            // Base64 needs no escapes: a plain string literal is read in place; anything else
            // goes through the JSON parser (which also says what is wrong with it).
            let plain = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                // One pass over the bytes: a quote, a backslash or a control character needs the
                // JSON parser.
                .filter(|t| !t.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20));
            let decoded = match plain {
                Some(encoded) => B64.decode_vec(encoded, data),
                None => {
                    let encoded: String = serde_json::from_str(text)
                        .map_err(|e| self.invalid(format!("not a JSON string: {e}")))?;
                    B64.decode_vec(encoded.as_bytes(), data)
                }
            };
            decoded.map_err(|e| self.invalid(format!("not padded standard base64: {e}")))?;
            break;
        }
        let index = self.index;
        self.index += 1;
        Ok(Some(index))
    }

    fn name_json(&self) -> &Arc<str> {
        &self.input
    }
}

/// A directory: each regular file directly in it is one certificate, in the order the file system
/// lists them (sorting would mean holding every name); names starting with '.' are skipped.
struct Directory {
    entries: std::fs::ReadDir,
    name: String,
    /// The file the last record came from, as a JSON string.
    file_json: Arc<str>,
}

impl Directory {
    fn open(path: &Path, name: &str) -> Result<Directory, InputError> {
        Ok(Directory {
            entries: std::fs::read_dir(path).map_err(unreadable(name))?,
            name: name.to_owned(),
            file_json: super::json_string(name).into(),
        })
    }

    /// Appends the file's bytes; false when it is not a regular file.
    fn read(&self, path: &Path, data: &mut Vec<u8>) -> Result<bool, InputError> {
        let file_name = path.display().to_string();
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => return Err(unreadable(&file_name)(e)),
        };
        if !metadata.is_file() {
            return Ok(false);
        }
        // Read one byte past the limit at most: a larger file is TOO_LARGE whatever follows.
        let file = File::open(path).map_err(unreadable(&file_name))?;
        file.take(MAX_RECORD as u64 + 1)
            .read_to_end(data)
            .map_err(unreadable(&file_name))?;
        Ok(true)
    }
}

impl Input for Directory {
    fn read_into(&mut self, data: &mut Vec<u8>) -> Result<Option<u64>, InputError> {
        loop {
            let entry = match self.entries.next() {
                None => return Ok(None),
                Some(Ok(entry)) => entry,
                Some(Err(e)) => return Err(unreadable(&self.name)(e)),
            };
            if entry.file_name().as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            if self.read(&path, data)? {
                self.file_json = super::json_string(&path.display().to_string()).into();
                return Ok(Some(0));
            }
        }
    }

    fn name_json(&self) -> &Arc<str> {
        &self.file_json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(bytes: &[u8], format: Format) -> Vec<Result<Vec<u8>, String>> {
        let reader: Box<dyn BufRead> = Box::new(io::Cursor::new(bytes.to_vec()));
        let mut input = match from_reader(reader, "test", format) {
            Ok(input) => input,
            Err(e) => return vec![Err(e.to_string())],
        };
        let mut got = Vec::new();
        loop {
            // Records land after what the buffer held, which stays as it was.
            let mut data = b"before".to_vec();
            match input.read_into(&mut data) {
                Ok(None) => return got,
                Ok(Some(index)) => {
                    assert_eq!(index, got.len() as u64);
                    assert_eq!(&data[..6], b"before");
                    got.push(Ok(data.split_off(6)));
                }
                Err(e) => {
                    got.push(Err(e.to_string()));
                    return got;
                }
            }
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

    /// Base64 text to try both decoders on: valid encodings of up to 1,100 bytes (a certificate's
    /// size, so the vector loops run, not only the tail) with up to three characters changed to
    /// any byte (or, as often, one of those beside base64's ranges, padding, URL-safe letters,
    /// white space, quotes and backslashes), inserted, removed, or the text cut short.
    fn near_base64() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let symbol = prop_oneof![
            any::<u8>(),
            prop::sample::select(b"AQgwZaz09+/=-_,.:@[`{ \n\r\t\"\\\x7f\x80\xff\x00".to_vec()),
        ];
        let edit = (0u8..4, any::<usize>(), symbol);
        (
            prop::collection::vec(any::<u8>(), 0..1100),
            prop::collection::vec(edit, 0..4),
        )
            .prop_map(|(bytes, edits)| {
                edits
                    .into_iter()
                    .fold(B64.encode(bytes).into_bytes(), |text, (how, at, symbol)| {
                        tongban_core::testkit::mutate(text, at, symbol, how)
                    })
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// The fast decoder of plain JSON lines accepts nothing `B64` refuses, and decodes alike.
        #[test]
        fn fast_base64_accepts_only_what_b64_accepts(text in near_base64()) {
            let mut fast = Vec::new();
            if base64_simd::STANDARD.decode_append(&text, &mut fast).is_ok() {
                proptest::prop_assert_eq!(B64.decode(&text).ok(), Some(fast));
            }
        }
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
        // Escapes are JSON's: a line that is not plain base64 is read by the JSON parser, and
        // nothing the plain read decoded before it gave up is kept.
        let escaped = records(b"\"YWJj\\/w==\"\n\"YW\\u004aj\"\n", Format::Jsonl);
        assert_eq!(escaped, vec![Ok(b"abc\xff".to_vec()), Ok(b"abc".to_vec())]);
        let bad = records(b"\"YWJj\n\"\t\"\n", Format::Jsonl);
        assert!(matches!(&bad[0], Err(e) if e.starts_with("JSONL_INVALID")));
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
