//! `Server-Timing` for a gateway response: where the gateway's own time went (the object
//! hop, the body read, the machine's response head), so an operator sees it in any client.

use crate::time::now_ms;

pub struct Timing {
    last: i64,
    marks: Vec<(&'static str, i64)>,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            last: now_ms(),
            marks: Vec::new(),
        }
    }
}

impl Timing {
    pub fn mark(&mut self, name: &'static str) {
        let now = now_ms();
        self.marks.push((name, now - self.last));
        self.last = now;
    }

    pub fn header(&self) -> String {
        self.marks
            .iter()
            .map(|(n, d)| format!("{n};dur={d}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_listed_in_order_with_their_durations() {
        let mut t = Timing::default();
        t.mark("gate");
        t.mark("upstream");
        let h = t.header();
        assert!(
            h.starts_with("gate;dur=") && h.contains(", upstream;dur="),
            "{h}"
        );
    }
}
