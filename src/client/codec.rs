//! Adapter between HTTP bodies and the sans-IO codec of `hdfstream-protocol`.

use rmpv::Value;

/// The message of a msgpack `{"error": msg}` body; `None` if the body is anything else
/// (including a valid error map followed by extra bytes).
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let mut rest = body;
    let value = rmpv::decode::read_value(&mut rest).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let Value::Map(entries) = value else {
        return None;
    };
    let [(key, Value::String(msg))] = entries.as_slice() else {
        return None;
    };
    if key.as_str() != Some("error") {
        return None;
    }
    Some(String::from_utf8_lossy(msg.as_bytes()).into_owned())
}
