//! Parsing request bodies with errors a client can act on: malformed JSON is a 400
//! with code 400 (as Confluent answers), well-formed JSON of the wrong shape a 400/40002
//! naming the field.

use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(shape_error)
}

/// Like [`parse`], for types that borrow from the body (no copy of its strings).
pub fn parse_borrowed<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(shape_error)
}

pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(shape_error)
}

pub fn shape_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => ApiError::malformed_json(e),
        Category::Data | Category::Io => {
            ApiError::bad_request(format!("Invalid request body: {e}"))
        }
    }
}

/// Cuts a byte stream of concatenated JSON values (Confluent's streamed produce body)
/// into one slice per value, as the bytes arrive. Framing is a single forward scan
/// (nesting depth, strings and their escapes), resumed where it stopped when more bytes
/// come, so a value sent in many small chunks costs one pass, and a chunk boundary
/// anywhere — inside a number, a string, an escape — changes nothing. Each framed value
/// is then checked for JSON syntax on its own, and parsed into its request type by the
/// caller: one record of the wrong shape fails alone, while a syntax error ends the
/// stream (nothing after it can be framed reliably). The buffer holds at most one value
/// still arriving, and that value may not grow past `max_value_bytes`.
pub struct ValueSplitter {
    buf: actix_web::web::BytesMut,
    max_value_bytes: usize,
    /// Where the scan of the value being framed stopped.
    scanned: usize,
    /// The value being framed: whether it has begun, and its state.
    started: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What the scan found.
enum Framed {
    /// A whole value ends before this byte.
    Value(usize),
    /// Only whitespace so far (the buffer can be dropped).
    Blank,
    /// More bytes are needed.
    Partial,
}

impl ValueSplitter {
    pub fn new(max_value_bytes: usize) -> Self {
        ValueSplitter {
            buf: actix_web::web::BytesMut::new(),
            max_value_bytes,
            scanned: 0,
            started: false,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// A splitter over a body that has already arrived whole.
    pub fn whole(body: actix_web::web::BytesMut) -> Self {
        let mut splitter = ValueSplitter::new(body.len());
        splitter.buf = body;
        splitter
    }

    /// Adds bytes as they arrive; a value still incomplete beyond the limit is a 413.
    pub fn push(&mut self, chunk: &[u8]) -> ApiResult<()> {
        if self.buf.len() + chunk.len() > self.max_value_bytes {
            return Err(ApiError::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                crate::error::codes::PAYLOAD_TOO_LARGE,
                format!(
                    "A record in the stream is larger than http.max.request.bytes = {}",
                    self.max_value_bytes
                ),
            ));
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// Scans on from where the last scan stopped.
    fn frame(&mut self, eof: bool) -> Framed {
        let bytes = &self.buf[..];
        let mut i = self.scanned;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if !self.started {
                if b.is_ascii_whitespace() {
                    continue;
                }
                self.started = true;
                match b {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_string = true,
                    // A stray closer is a value of its own, which the syntax check refuses.
                    b'}' | b']' => return Framed::Value(i),
                    // A number or a literal: it ends at the first byte that cannot be
                    // part of it.
                    _ => {}
                }
                continue;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => {
                        self.in_string = false;
                        if self.depth == 0 {
                            return Framed::Value(i);
                        }
                    }
                    _ => {}
                }
                continue;
            }
            if self.depth == 0 {
                // Inside a number or literal.
                if b.is_ascii_whitespace() || b"{}[]\",:".contains(&b) {
                    return Framed::Value(i - 1);
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Framed::Value(i);
                    }
                }
                _ => {}
            }
        }
        self.scanned = i;
        match (self.started, eof) {
            (false, _) => Framed::Blank,
            // A number or literal at the very end of the body is whole.
            (true, true) if self.depth == 0 && !self.in_string => Framed::Value(i),
            _ => Framed::Partial,
        }
    }

    /// The next complete value, `None` when more input is needed (or, at `eof`, when
    /// nothing but whitespace is left), or the syntax error that ends the stream.
    pub fn next_value(
        &mut self,
        eof: bool,
    ) -> Option<Result<actix_web::web::Bytes, serde_json::Error>> {
        match self.frame(eof) {
            Framed::Blank => {
                self.buf.clear();
                self.scanned = 0;
                None
            }
            Framed::Partial if !eof => None,
            Framed::Partial => {
                // The body ended inside a value: let the parser name what is missing.
                let e = serde_json::from_slice::<serde::de::IgnoredAny>(&self.buf).err()?;
                Some(Err(e))
            }
            Framed::Value(end) => {
                let value = self.buf.split_to(end).freeze();
                self.scanned = 0;
                self.started = false;
                self.depth = 0;
                self.in_string = false;
                self.escaped = false;
                Some(
                    match serde_json::from_slice::<serde::de::IgnoredAny>(&value) {
                        Ok(_) => Ok(value),
                        Err(e) => Err(e),
                    },
                )
            }
        }
    }

    /// Whether any byte other than whitespace is waiting.
    pub fn is_blank(&self) -> bool {
        self.buf.iter().all(u8::is_ascii_whitespace)
    }
}

/// Checks that `body` is a sequence of syntactically valid JSON values and counts
/// them, without building any of them.
pub fn count_values(body: &[u8]) -> Result<usize, serde_json::Error> {
    if let Err(e) = std::str::from_utf8(body) {
        // serde_json skips strings without checking their UTF-8; a bad byte inside
        // one must refuse the whole body too.
        return Err(serde::de::Error::custom(format!(
            "the body is not UTF-8: {e}"
        )));
    }
    let mut n = 0;
    for value in serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>() {
        value?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` in chunks of `size` and collects the values (or the first error).
    fn split(body: &[u8], size: usize) -> Result<Vec<String>, String> {
        let mut s = ValueSplitter::new(1 << 20);
        let mut out = Vec::new();
        let mut take = |s: &mut ValueSplitter, eof| -> Result<(), String> {
            while let Some(v) = s.next_value(eof) {
                let v = v.map_err(|e| e.to_string())?;
                out.push(String::from_utf8(v.to_vec()).unwrap().trim().to_string());
            }
            Ok(())
        };
        for chunk in body.chunks(size) {
            s.push(chunk).map_err(|e| e.message)?;
            take(&mut s, false)?;
        }
        take(&mut s, true)?;
        Ok(out)
    }

    #[test]
    fn values_are_framed_whatever_the_chunk_boundaries() {
        let body = br#" {"a": -3.5e+2, "b": "x\"}{"} [1, [2]] "s\\" -12.5e-3 true null {"c":{}}  "#;
        let expected = vec![
            r#"{"a": -3.5e+2, "b": "x\"}{"}"#,
            "[1, [2]]",
            r#""s\\""#,
            "-12.5e-3",
            "true",
            "null",
            r#"{"c":{}}"#,
        ];
        for size in 1..body.len() {
            assert_eq!(split(body, size).unwrap(), expected, "chunks of {size}");
        }
    }

    #[test]
    fn a_syntax_error_ends_the_stream_after_the_values_before_it() {
        let mut s = ValueSplitter::new(1 << 20);
        s.push(br#"{"a":1} {"b": garbage} {"c":2}"#).unwrap();
        assert!(s.next_value(false).unwrap().is_ok());
        assert!(s.next_value(false).unwrap().is_err());
        assert!(split(br#"{"a":1} {"b": garbage} {"c":2}"#, 4).is_err());
        assert!(split(br#"{"a":1} }"#, 2).is_err());
        assert!(split(br#"{"a":1} {"b": "#, 2).is_err());
        assert_eq!(split(b"  \n ", 1).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_value_arriving_in_many_chunks_is_scanned_once() {
        let mut s = ValueSplitter::new(1 << 24);
        let record = format!(r#"{{"v": "{}"}}"#, "x".repeat(1 << 20));
        let mut framed = None;
        for chunk in record.as_bytes().chunks(64) {
            s.push(chunk).unwrap();
            // Each scan resumes at the end of the previous one.
            let before = s.buf.len() - chunk.len();
            assert!(s.scanned == before || s.scanned == 0);
            if let Some(v) = s.next_value(false) {
                framed = Some(v.unwrap());
            }
        }
        assert_eq!(framed.unwrap().len(), record.len());
    }

    #[test]
    fn invalid_utf8_in_a_string_refuses_the_whole_body() {
        assert!(count_values(b"{\"a\": \"\xff\"}").is_err());
        assert_eq!(count_values(b"{} {}").unwrap(), 2);
    }
}
