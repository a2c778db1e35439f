//! Server-Sent Events: encoding one event, and an incremental parser that accepts any
//! chunking of the byte stream and `\n`, `\r\n` or `\r` line ends (WHATWG HTML §9.2.6).

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// Encodes one event. Multi-line data becomes several `data:` lines; ids and event names
/// with line breaks are refused by dropping the break (they cannot be framed).
pub fn encode(event: &Event) -> String {
    let clean = |s: &str| s.replace(['\r', '\n'], "");
    let mut out = String::with_capacity(event.data.len() + 32);
    if let Some(e) = &event.event {
        out.push_str(&format!("event: {}\n", clean(e)));
    }
    if let Some(id) = &event.id {
        out.push_str(&format!("id: {}\n", clean(id)));
    }
    if let Some(r) = event.retry {
        out.push_str(&format!("retry: {r}\n"));
    }
    for line in event.data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// A comment line: ignored by clients, keeps idle connections alive.
pub fn comment(text: &str) -> String {
    format!(": {}\n\n", text.replace(['\r', '\n'], " "))
}

/// Feeds bytes in, takes complete events out.
#[derive(Debug, Default)]
pub struct Parser {
    buf: String,
    pending: Event,
    has_data: bool,
    saw_cr: bool,
    /// The last event id seen (what a reconnecting client sends as `Last-Event-ID`).
    pub last_event_id: Option<String>,
}

impl Parser {
    pub fn push(&mut self, chunk: &str) -> Vec<Event> {
        let mut out = Vec::new();
        for c in chunk.chars() {
            match c {
                '\n' if self.saw_cr => self.saw_cr = false,
                '\n' | '\r' => {
                    self.saw_cr = c == '\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(ev) = self.line(&line) {
                        out.push(ev);
                    }
                }
                _ => {
                    self.saw_cr = false;
                    self.buf.push(c);
                }
            }
        }
        out
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let mut ev = std::mem::take(&mut self.pending);
            let had = std::mem::take(&mut self.has_data);
            if ev.id.is_some() {
                self.last_event_id.clone_from(&ev.id);
            }
            if !had && ev.id.is_none() {
                return None;
            }
            if ev.data.ends_with('\n') {
                ev.data.pop();
            }
            return Some(ev);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.pending.data.push_str(value);
                self.pending.data.push('\n');
                self.has_data = true;
            }
            "event" => self.pending.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.pending.id = Some(value.to_string()),
            "retry" => self.pending.retry = value.parse().ok(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_events_parse_back_under_any_chunking() {
        let ev = Event {
            id: Some("3-7".into()),
            event: Some("message".into()),
            data: "{\"a\":1}\nsecond line".into(),
            retry: Some(1000),
        };
        let wire = format!("{}{}", comment("keep-alive"), encode(&ev));
        for size in [1, 2, 3, 7, wire.len()] {
            let mut p = Parser::default();
            let mut got = Vec::new();
            let chars: Vec<char> = wire.chars().collect();
            for chunk in chars.chunks(size) {
                got.extend(p.push(&chunk.iter().collect::<String>()));
            }
            assert_eq!(got, vec![ev.clone()], "chunk size {size}");
            assert_eq!(p.last_event_id.as_deref(), Some("3-7"));
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_are_accepted_and_priming_events_have_empty_data() {
        let mut p = Parser::default();
        let got = p.push("id: 1-0\r\ndata:\r\n\r\ndata: x\r\rdata: y\n\n");
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].id.as_deref(), got[0].data.as_str()),
            (Some("1-0"), "")
        );
        assert_eq!(got[1].data, "x");
        assert_eq!(got[2].data, "y");
    }

    #[test]
    fn line_breaks_cannot_be_smuggled_into_ids() {
        let wire = encode(&Event {
            id: Some("1\nevent: evil".into()),
            data: "d".into(),
            ..Default::default()
        });
        let got = Parser::default().push(&wire);
        assert_eq!(got[0].event, None);
        assert_eq!(got[0].id.as_deref(), Some("1event: evil"));
    }
}
