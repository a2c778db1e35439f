//! The child's stderr, kept in a bounded ring (lines and bytes) with credential values
//! masked before they are stored, served to the gateway at the authenticated `/logs`.
//! Every line carries the wall-clock time it was stored (Unix ms).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Values shorter than this are not masked (masking "1" everywhere helps no one).
const MIN_SECRET_LEN: usize = 6;
const MASK: &str = "[REDACTED]";
/// Appended to a line that was cut at its byte cap.
pub const TRUNCATED: &str = " … [truncated]";

pub struct LogRing {
    inner: Mutex<Inner>,
    max_lines: usize,
    max_bytes: usize,
    secrets: Vec<String>,
}

struct Inner {
    /// (stored at, Unix ms; the masked line).
    lines: VecDeque<(i64, String)>,
    bytes: usize,
    dropped: u64,
}

impl LogRing {
    pub fn new(max_lines: usize, max_bytes: usize, secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            inner: Mutex::new(Inner {
                lines: VecDeque::new(),
                bytes: 0,
                dropped: 0,
            }),
            max_lines,
            max_bytes,
            secrets,
        }
    }

    pub fn mask(&self, line: &str) -> String {
        let mut out = line.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// Pushes a line that was cut at its byte cap, marked as such. A credential cut in half
    /// at the end is masked too: the whole value is no longer there to be found.
    pub fn push_truncated(&self, line: &str) {
        let mut masked = self.mask(line);
        let cut_secret = self
            .secrets
            .iter()
            .flat_map(|s| (1..s.len()).rev().filter_map(move |n| s.get(..n)))
            .filter(|prefix| masked.ends_with(prefix))
            .map(str::len)
            .max();
        if let Some(n) = cut_secret {
            masked.truncate(masked.len() - n);
            masked.push_str(MASK);
        }
        masked.push_str(TRUNCATED);
        self.push(&masked);
    }

    pub fn push(&self, line: &str) {
        let mut line = self.mask(line);
        if line.len() > self.max_bytes {
            let mut cut = self.max_bytes;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        let at = crate::clock::now_ms();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.bytes += line.len();
        g.lines.push_back((at, line));
        while g.lines.len() > self.max_lines || g.bytes > self.max_bytes {
            match g.lines.pop_front() {
                Some((_, old)) => {
                    g.bytes -= old.len();
                    g.dropped += 1;
                }
                None => break,
            }
        }
    }

    /// The most lines the ring keeps.
    pub fn capacity(&self) -> usize {
        self.max_lines
    }

    /// The newest `n` kept lines with their times, oldest first, and how many lines the
    /// ring itself has dropped so far (lines left out because of `n` are not counted).
    pub fn tail(&self, n: usize) -> (Vec<(i64, String)>, u64) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let skip = g.lines.len().saturating_sub(n);
        (g.lines.iter().skip(skip).cloned().collect(), g.dropped)
    }

    /// Every kept line, oldest first, and how many older ones were dropped.
    pub fn snapshot(&self) -> (Vec<String>, u64) {
        let (lines, dropped) = self.tail(usize::MAX);
        (lines.into_iter().map(|(_, l)| l).collect(), dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_values_are_masked_before_they_are_stored() {
        let ring = LogRing::new(10, 1000, vec!["ghp_supersecret".into(), "ab".into()]);
        ring.push("auth failed for token ghp_supersecret (ab)");
        let (lines, _) = ring.snapshot();
        assert_eq!(lines, ["auth failed for token [REDACTED] (ab)"]);
    }

    #[test]
    fn a_cut_line_is_marked_and_a_credential_cut_in_half_is_masked() {
        let ring = LogRing::new(10, 1000, vec!["ghp_supersecret".into()]);
        ring.push_truncated("token ghp_supersecret then ghp_super");
        ring.push_truncated("plain");
        let (lines, _) = ring.snapshot();
        assert_eq!(
            lines,
            [
                format!("token [REDACTED] then [REDACTED]{TRUNCATED}"),
                format!("plain{TRUNCATED}")
            ]
        );
    }

    #[test]
    fn the_ring_keeps_the_newest_lines_within_both_bounds() {
        let ring = LogRing::new(3, 1000, vec![]);
        for i in 0..5 {
            ring.push(&format!("line {i}"));
        }
        assert_eq!(
            ring.snapshot(),
            (vec!["line 2".into(), "line 3".into(), "line 4".into()], 2)
        );
        let (tail, dropped) = ring.tail(2);
        let texts: Vec<&str> = tail.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!((texts, dropped), (vec!["line 3", "line 4"], 2));
        assert!(tail.iter().all(|(at, _)| *at > 1_700_000_000_000));
        assert_eq!(ring.tail(100).0.len(), 3);
        let small = LogRing::new(100, 10, vec![]);
        small.push("0123456789abcdef");
        small.push("xyz");
        let (lines, _) = small.snapshot();
        assert!(
            lines.iter().map(String::len).sum::<usize>() <= 10,
            "{lines:?}"
        );
    }
}
