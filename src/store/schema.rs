//! The D1 tables `migrations/*.sql` create, for the storage health probe. A unit test reads
//! the migrations and fails when this list and they disagree, so a new migration's table
//! cannot be forgotten here.

/// Every table the migrations create, in migration order.
pub const TABLES: &[&str] = &[
    "users",
    "deployments",
    "credentials",
    "analysis_cache",
    "audit_log",
    "user_settings",
    "upstream_secrets",
    "usage_counters",
    "machine_accounts",
    "oauth_clients",
    "oauth_grants",
    "oauth_codes",
    "oauth_tokens",
];

/// `SELECT COUNT(*) AS n` of the [`TABLES`] present; the names are our constants, not input.
pub fn count_present_sql() -> String {
    let names: Vec<String> = TABLES.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ({})",
        names.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table names of every `CREATE TABLE` in the migrations, in file order.
    fn created_by_migrations() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("migrations directory")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        let mut tables = Vec::new();
        for file in files {
            let sql = std::fs::read_to_string(&file).expect("migration file");
            for line in sql.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
                if upper.len() < 3 || upper[0] != "CREATE" || upper[1] != "TABLE" {
                    continue;
                }
                let skip = if upper[2..].starts_with(&["IF".into(), "NOT".into(), "EXISTS".into()])
                {
                    5
                } else {
                    2
                };
                let name = words.get(skip).expect("a table name after CREATE TABLE");
                tables.push(name.trim_end_matches('(').trim_matches('"').to_string());
            }
        }
        tables
    }

    #[test]
    fn the_probed_tables_are_exactly_the_tables_the_migrations_create() {
        assert_eq!(created_by_migrations(), TABLES);
    }

    #[test]
    fn the_probe_asks_for_every_table() {
        let sql = count_present_sql();
        assert!(TABLES.iter().all(|t| sql.contains(&format!("'{t}'"))));
    }
}
