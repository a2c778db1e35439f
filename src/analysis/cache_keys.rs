//! Whose plan is cached where. A plan made with the operator's LLM key (or with no LLM
//! configured) is the shared entry everyone reads; a plan made with a person's own LLM key
//! is cached for that person only, and wins over the shared entry when they read; a plan
//! whose LLM call failed is not cached at all (it lacks what the LLM would have found, and
//! would refuse other people's credentials).

/// The cache key of a plan made with `user_id`'s own LLM key.
pub fn personal(shared: &str, user_id: &str) -> String {
    format!("{shared}:user:{user_id}")
}

/// Where a freshly made plan is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Under the source's shared key.
    Shared,
    /// Under this personal key.
    Personal(String),
}

/// The entry a freshly made plan is stored as, or `None` when it must not be cached.
pub fn entry_for(
    shared: &str,
    llm_failed: bool,
    own_key: bool,
    user_id: Option<&str>,
) -> Option<Entry> {
    match (llm_failed, own_key, user_id) {
        (true, _, _) => None,
        (false, true, Some(uid)) => Some(Entry::Personal(personal(shared, uid))),
        // A plan made with a personal key but nobody to file it under is cached nowhere.
        (false, true, None) => None,
        (false, false, _) => Some(Entry::Shared),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = "analysis:v1:npm:x";

    #[test]
    fn a_plan_from_the_operators_key_is_shared_with_everyone() {
        assert_eq!(
            entry_for(SHARED, false, false, Some("usr_1")),
            Some(Entry::Shared)
        );
        assert_eq!(entry_for(SHARED, false, false, None), Some(Entry::Shared));
    }

    #[test]
    fn a_plan_from_a_persons_own_key_is_cached_for_that_person_only() {
        assert_eq!(
            entry_for(SHARED, false, true, Some("usr_1")),
            Some(Entry::Personal("analysis:v1:npm:x:user:usr_1".into()))
        );
        assert_eq!(entry_for(SHARED, false, true, None), None);
    }

    #[test]
    fn a_plan_whose_llm_call_failed_is_cached_nowhere() {
        assert_eq!(entry_for(SHARED, true, false, Some("usr_1")), None);
        assert_eq!(entry_for(SHARED, true, true, Some("usr_1")), None);
    }
}
