//! Parsing request bodies with errors a client can act on: malformed JSON is a 400
//! with code 400 (as Confluent answers), well-formed JSON of the wrong shape a 400/40002
//! naming the field.

use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
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
