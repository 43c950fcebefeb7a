//! A fresh database for a test on the PostgreSQL server named by
//! `BUSINESS_WALLET_TEST_POSTGRES_URL` (the README's test command sets it); shared by the test
//! binaries of this crate (through `common`) and of the CLI crate (through `#[path]`).

/// Creates an empty database named `prefix` plus a random suffix; returns its URL.
pub async fn fresh_postgres_database(prefix: &str) -> String {
    use sqlx::Connection as _;
    const POSTGRES_ENV: &str = "BUSINESS_WALLET_TEST_POSTGRES_URL";
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_ENV} is not set: run the README's test command, or point it at a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    });
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}={base}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create the test's database");
    admin.close().await.ok();
    let mut url = url::Url::parse(&base).expect("a PostgreSQL URL");
    url.set_path(&name);
    url.to_string()
}
