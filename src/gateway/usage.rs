//! Usage per deployment: requests, errors, tool calls by name and a latency histogram —
//! never arguments or results. Latencies go into fixed buckets (so counters can be added
//! with an SQL upsert, without read-modify-write); percentiles are read from the buckets.

/// Distinct tool names counted per deployment. Tool names are chosen by clients, so past
/// this many every new name is counted under [`OTHER_TOOLS`]: a deployment's usage rows
/// stay bounded (requests, errors, the latency buckets, these tools and "other").
pub const MAX_TOOL_METRICS: u32 = 64;
pub const TOOL_PREFIX: &str = "tool:";
pub const OTHER_TOOLS: &str = "tool:(other)";

/// Upper bounds (ms) of the latency buckets; the last bucket is everything above.
pub const BUCKETS_MS: &[u32] = &[
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000,
    5000, 10000, 30000, 60000,
];

/// The bucket index of a latency.
pub fn bucket(ms: u64) -> usize {
    BUCKETS_MS
        .iter()
        .position(|b| ms <= u64::from(*b))
        .unwrap_or(BUCKETS_MS.len())
}

/// The upper bound of a bucket, for reporting (the overflow bucket reports its lower bound).
pub fn bucket_ms(index: usize) -> u32 {
    BUCKETS_MS
        .get(index)
        .copied()
        .unwrap_or_else(|| BUCKETS_MS.last().copied().unwrap_or(0))
}

/// The `p`th percentile (0–100) from (bucket, count) pairs: the upper bound of the bucket
/// that holds it, so it is never an under-estimate by more than one bucket.
pub fn percentile(counts: &[(usize, u64)], p: f64) -> Option<u32> {
    let total: u64 = counts.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_by_key(|(b, _)| *b);
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, c) in sorted {
        seen += c;
        if seen >= rank {
            return Some(bucket_ms(b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_buckets_and_percentiles_read_back() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(4), 3);
        assert_eq!(bucket(10), 5);
        assert_eq!(bucket(999_999), BUCKETS_MS.len());
        let counts = vec![(bucket(2), 90), (bucket(40), 9), (bucket(900), 1)];
        assert_eq!(percentile(&counts, 50.0), Some(2));
        assert_eq!(percentile(&counts, 95.0), Some(50));
        assert_eq!(percentile(&counts, 100.0), Some(1000));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
