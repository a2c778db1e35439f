//! Reading a child's stderr line by line with a byte cap per line: a server that prints a
//! gigabyte without a newline must not make the runner hold a gigabyte. At most `cap`
//! bytes of a line are kept; the rest of an over-long line is read and thrown away up to
//! its newline, and the caller is told the line was cut. Nothing beyond the reader's own
//! buffer and the `cap` bytes of the line is ever held.

use std::io;

use tokio::io::AsyncBufReadExt;

/// Bytes of one stderr line kept for `/logs`.
pub const STDERR_LINE_BYTES: usize = 8 * 1024;

/// Reads the next line into `line` (cleared first, `\n` / `\r\n` not included), keeping at
/// most `cap` bytes. `None` at end of input; otherwise whether the line was cut.
pub async fn read_capped_line<R>(
    reader: &mut R,
    cap: usize,
    line: &mut Vec<u8>,
) -> io::Result<Option<bool>>
where
    R: AsyncBufReadExt + Unpin,
{
    line.clear();
    let mut cut = false;
    let mut seen_any = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(seen_any.then_some(cut));
        }
        seen_any = true;
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        let room = cap.saturating_sub(line.len());
        if chunk.len() > room {
            cut = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            if !cut && line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(cut));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, BufReader};

    async fn all_lines(input: &[u8], cap: usize) -> Vec<(String, bool)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut out = Vec::new();
        while let Some(cut) = read_capped_line(&mut reader, cap, &mut line).await.unwrap() {
            out.push((String::from_utf8_lossy(&line).into_owned(), cut));
        }
        out
    }

    #[tokio::test]
    async fn short_lines_come_back_whole_and_the_last_needs_no_newline() {
        assert_eq!(
            all_lines(b"one\r\ntwo\n\nlast", 16).await,
            [
                ("one".to_string(), false),
                ("two".to_string(), false),
                (String::new(), false),
                ("last".to_string(), false)
            ]
        );
        assert!(all_lines(b"", 16).await.is_empty());
    }

    #[tokio::test]
    async fn an_over_long_line_is_cut_and_the_next_line_is_intact() {
        assert_eq!(
            all_lines(b"0123456789abcdef\nnext\n", 10).await,
            [
                ("0123456789".to_string(), true),
                ("next".to_string(), false)
            ]
        );
    }

    #[tokio::test]
    async fn a_huge_line_never_grows_the_buffer_past_the_cap() {
        let huge = tokio::io::repeat(b'x').take(64 * 1024 * 1024);
        let rest: &[u8] = b"\nafter\n";
        let mut reader = BufReader::with_capacity(STDERR_LINE_BYTES, huge.chain(rest));
        let mut line = Vec::with_capacity(STDERR_LINE_BYTES);
        let cut = read_capped_line(&mut reader, STDERR_LINE_BYTES, &mut line)
            .await
            .unwrap();
        assert_eq!(cut, Some(true));
        assert_eq!(line.len(), STDERR_LINE_BYTES);
        assert_eq!(line.capacity(), STDERR_LINE_BYTES, "the line buffer grew");
        let next = read_capped_line(&mut reader, STDERR_LINE_BYTES, &mut line)
            .await
            .unwrap();
        assert_eq!((next, line.as_slice()), (Some(false), &b"after"[..]));
    }
}
