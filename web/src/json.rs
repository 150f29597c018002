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
/// into one slice per value, as the bytes arrive. Only syntax is checked here; each
/// slice is then parsed into its request type on its own, so one record of the wrong
/// shape fails alone while a syntax error ends the stream (nothing after it can be
/// framed). The buffer holds at most one value that is still arriving plus the values
/// already framed, and a value may not grow past `max_value_bytes`.
pub struct ValueSplitter {
    buf: actix_web::web::BytesMut,
    max_value_bytes: usize,
}

impl ValueSplitter {
    pub fn new(max_value_bytes: usize) -> Self {
        ValueSplitter {
            buf: actix_web::web::BytesMut::new(),
            max_value_bytes,
        }
    }

    /// A splitter over a body that has already arrived whole.
    pub fn whole(body: actix_web::web::BytesMut) -> Self {
        ValueSplitter {
            max_value_bytes: body.len(),
            buf: body,
        }
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

    /// The next complete value, `None` when more input is needed (or, at `eof`, when
    /// nothing but whitespace is left), or the syntax error that ends the stream.
    pub fn next_value(
        &mut self,
        eof: bool,
    ) -> Option<Result<actix_web::web::Bytes, serde_json::Error>> {
        let mut values =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde::de::IgnoredAny>();
        match values.next() {
            None => {
                self.buf.clear();
                None
            }
            Some(Ok(_)) => {
                let end = values.byte_offset();
                // A number at the very end may still be growing ("12" then "3").
                if !eof && end == self.buf.len() && self.buf[end - 1].is_ascii_digit() {
                    return None;
                }
                Some(Ok(self.buf.split_to(end).freeze()))
            }
            Some(Err(e)) if e.is_eof() && !eof => None,
            Some(Err(e)) => Some(Err(e)),
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
    let mut n = 0;
    for value in serde_json::Deserializer::from_slice(body).into_iter::<serde::de::IgnoredAny>() {
        value?;
        n += 1;
    }
    Ok(n)
}
