//! The per-deployment rate limit, as the deployment's gateway object keeps it in memory: a
//! token bucket holding a minute's allowance (`MCP_RATE_LIMIT` requests), refilled
//! continuously — so a burst up to the limit passes, and a steady rate above it is refused
//! with the wait until the next request would pass. Lost with the object (a cold object
//! starts full), which only ever errs towards serving.

/// The bucket's refill period: the limit is per minute.
pub const PERIOD_MS: i64 = 60_000;

#[derive(Debug, Clone)]
pub struct Bucket {
    limit: f64,
    tokens: f64,
    at: i64,
}

impl Bucket {
    pub fn new(per_minute: u32, now: i64) -> Self {
        let limit = f64::from(per_minute.max(1));
        Self {
            limit,
            tokens: limit,
            at: now,
        }
    }

    /// Takes one request's token: `Ok` when it passes, else `Err(seconds to wait)`.
    pub fn take(&mut self, now: i64) -> Result<(), u32> {
        let elapsed = (now - self.at).max(0) as f64;
        self.tokens = (self.tokens + elapsed * self.limit / PERIOD_MS as f64).min(self.limit);
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = (1.0 - self.tokens) * PERIOD_MS as f64 / self.limit;
        Err(((wait_ms / 1000.0).ceil() as u32).max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_passes_and_the_next_waits() {
        let mut b = Bucket::new(10, 0);
        for _ in 0..10 {
            assert_eq!(b.take(0), Ok(()));
        }
        // One token comes back every 6 s at 10 a minute.
        assert_eq!(b.take(0), Err(6));
        assert_eq!(b.take(3_000), Err(3));
        assert_eq!(b.take(6_000), Ok(()));
        assert_eq!(b.take(6_000), Err(6));
    }

    #[test]
    fn an_idle_bucket_refills_to_the_limit_and_no_further() {
        let mut b = Bucket::new(600, 0);
        for _ in 0..600 {
            assert!(b.take(0).is_ok());
        }
        assert!(b.take(0).is_err());
        let mut passed = 0;
        while b.take(10 * PERIOD_MS).is_ok() {
            passed += 1;
        }
        assert_eq!(
            passed, 600,
            "ten idle minutes still allow one minute's burst"
        );
        // A clock that steps back never mints tokens.
        assert!(b.take(0).is_err());
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_served() {
        let mut b = Bucket::new(60, 0);
        for _ in 0..60 {
            assert!(b.take(0).is_ok());
        }
        for s in 1..=120 {
            assert!(b.take(s * 1_000).is_ok(), "second {s}");
        }
    }
}
