//! Server-sent events framing (WHATWG HTML "server-sent events"), shared by the OpenAI and
//! Anthropic stream relays.

use crate::stream::GuardError;

/// Splits an SSE byte stream into events and returns each event's `data` (lines joined with
/// `\n`), per the WHATWG HTML "server-sent events" parsing rules for `data:` fields; events
/// without data and comments are dropped. Handles `\n`, `\r\n` and `\r` line ends split
/// anywhere across chunks.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: Vec<u8>,
}

/// Largest SSE event accepted (bytes); beyond it the stream is malformed.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

impl SseFramer {
    /// Adds bytes; returns the `data` of every event completed by them.
    ///
    /// # Errors
    /// [`GuardError::Malformed`] for an event over [`MAX_EVENT_BYTES`] or not UTF-8.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, GuardError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, next)) = find_event_end(&self.buf) {
            let ev: Vec<u8> = self.buf.drain(..next).take(end).collect();
            let text = String::from_utf8(ev)
                .map_err(|_| GuardError::Malformed("event is not UTF-8".into()))?;
            if let Some(d) = event_data(&text) {
                out.push(d);
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(GuardError::Malformed(format!(
                "event over {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(out)
    }

    /// The data of a final event not followed by a blank line (stream ended).
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        String::from_utf8(rest).ok().and_then(|t| event_data(&t))
    }
}

/// (end of event content, start of next event) for the first blank line in `b`.
fn find_event_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < b.len() {
        // a line end is \r\n, \n or \r; a blank line is two line ends in a row
        let first = match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => 2,
            b'\r' if i + 1 == b.len() => return None, // may be the start of \r\n
            b'\r' | b'\n' => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        let j = i + first;
        let second = match b.get(j) {
            // a lone `\r` ends the blank line; a `\n` after it, if one comes, is an empty line
            Some(b'\r') if b.get(j + 1) == Some(&b'\n') => 2,
            Some(b'\r') | Some(b'\n') => 1,
            Some(_) => {
                i = j;
                continue;
            }
            None => return None,
        };
        return Some((i, j + second));
    }
    None
}

fn event_data(ev: &str) -> Option<String> {
    let mut data: Option<String> = None;
    for line in ev.split(['\n', '\r']) {
        let value = if let Some(v) = line.strip_prefix("data:") {
            v.strip_prefix(' ').unwrap_or(v)
        } else if line == "data" {
            ""
        } else {
            continue;
        };
        match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(value.to_string()),
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_handles_every_line_ending_and_split() {
        let raw = b"data: a\n\ndata: b\r\n\r\n: comment\n\ndata: c\rdata: d\r\r";
        for split in 0..raw.len() {
            let mut f = SseFramer::default();
            let mut got = f.push(&raw[..split]).unwrap();
            got.extend(f.push(&raw[split..]).unwrap());
            assert_eq!(got, vec!["a", "b", "c\nd"], "split at {split}");
        }
        let mut f = SseFramer::default();
        assert!(f.push(b"data: x").unwrap().is_empty());
        assert_eq!(f.finish().as_deref(), Some("x"));
    }

    #[test]
    fn framer_rejects_invalid_utf8() {
        let mut f = SseFramer::default();
        assert!(matches!(
            f.push(b"data: \xff\n\n"),
            Err(GuardError::Malformed(_))
        ));
    }
}
