//! credit_ledger from Rust (tokio-postgres): pay for the work in the app's own transaction.
//!
//!     cargo run --release        # connects with PGHOST / PGPORT / PGUSER / PGDATABASE
//!
//! The pattern: in one transaction, `credit_authorize()` first; only when it is approved does
//! the app do the work and INSERT its own row. A decline writes no app row (and debits
//! nothing); an app error after the authorization rolls back the debit with everything else.
//! Every outcome is checked; exit status 1 on a failure.

use rust_decimal::Decimal;
use std::process::ExitCode;
use tokio_postgres::{Client, Config, Error, NoTls, Row};

/// Stands in for the image model: the expensive call the credits pay for.
fn render(prompt: &str) -> String {
    format!("https://cdn.example.com/{}.png", prompt.len())
}

async fn generate_image(client: &mut Client, customer: &str, prompt: &str, request_id: &str) -> Result<Row, Error> {
    let tx = client.transaction().await?; // dropped without commit() = ROLLBACK
    let auth = tx
        .query_one("SELECT * FROM credit_authorize(wallet => $1, action => 'image.generate', idempotency_key => $2)",
                   &[&customer, &request_id])
        .await?;
    if auth.get::<_, bool>("approved") { // declined: nothing debited, no model call, no app row
        let url = render(prompt);
        tx.execute("INSERT INTO images (customer, prompt, url, authorization_id) VALUES ($1, $2, $3, $4)",
                   &[&customer, &prompt, &url, &auth.get::<_, i64>("authorization_id")])
            .await?;
    }
    tx.commit().await?;
    Ok(auth)
}

// ------------------------------------------------------------------ checks

/// libpq's environment variables: PGHOST (a host, or a socket directory when it starts with /),
/// PGPORT, PGUSER, PGDATABASE.
fn config_from_env() -> Config {
    let env = |k: &str, d: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| d.to_string());
    let user = env("PGUSER", &env("USER", "postgres"));
    let mut c = Config::new();
    c.host(&env("PGHOST", "/var/run/postgresql"))
        .port(env("PGPORT", "5432").parse().expect("PGPORT must be a number"))
        .dbname(&env("PGDATABASE", &user))
        .user(&user)
        .application_name("credit_ledger rust example");
    c
}

struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        println!("  {} {what}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            self.0.push(what);
        }
    }
}

async fn balance(client: &Client, customer: &str) -> Result<Decimal, Error> {
    Ok(client.query_one("SELECT credit_balance($1)", &[&customer]).await?.get(0))
}

async fn images(client: &Client, customer: &str) -> Result<i64, Error> {
    Ok(client.query_one("SELECT count(*) FROM images WHERE customer = $1", &[&customer]).await?.get(0))
}

async fn run(checks: &mut Checks) -> Result<(), Error> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let customer = format!("cust_rust_{:x}{:x}", std::process::id(), nanos);
    let (mut client, connection) = config_from_env().connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("rust: connection error: {e}");
        }
    });

    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS images (
                 id bigserial PRIMARY KEY, customer text NOT NULL,
                 prompt text NOT NULL CHECK (prompt <> ''), url text NOT NULL,
                 authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
             SELECT credit_rate_set(action => 'image.generate', credits => 4, unit => 'image');",
        )
        .await?;
    client.execute("SELECT credit_wallet_create(wallet => $1)", &[&customer]).await?;
    client.execute("SELECT credit_grant(wallet => $1, amount => 10, category => 'promotional')", &[&customer]).await?;
    println!("rust: wallet {customer} has {} credits; an image costs 4", balance(&client, &customer).await?);

    let auth = generate_image(&mut client, &customer, "a red fox in the snow", "req-1").await?;
    let cost: Decimal = auth.get("cost");
    checks.check(auth.get("approved") && cost == Decimal::from(4), format!("image 1 approved, cost {cost}"));
    checks.check(balance(&client, &customer).await? == Decimal::from(6) && images(&client, &customer).await? == 1,
                 "balance 10 -> 6, one images row");

    match generate_image(&mut client, &customer, "", "req-2").await {
        Ok(_) => checks.check(false, "an empty prompt should fail the app's insert"),
        Err(e) => checks.check(e.code().map(|c| c.code()) == Some("23514"),
                               format!("app error after authorizing: {}", e.as_db_error().map(|d| d.message()).unwrap_or("?"))),
    }
    checks.check(balance(&client, &customer).await? == Decimal::from(6) && images(&client, &customer).await? == 1,
                 "ROLLBACK: balance still 6, still one row");

    generate_image(&mut client, &customer, "a lighthouse at dusk", "req-3").await?;
    checks.check(balance(&client, &customer).await? == Decimal::from(2) && images(&client, &customer).await? == 2,
                 "image 2 approved: balance 2, two rows");

    let auth = generate_image(&mut client, &customer, "a third picture", "req-4").await?;
    let reason: Option<String> = auth.get("reason");
    checks.check(!auth.get::<_, bool>("approved") && reason.as_deref() == Some("insufficient_credits"),
                 format!("image 3 declined: {}", reason.as_deref().unwrap_or("-")));
    checks.check(balance(&client, &customer).await? == Decimal::from(2) && images(&client, &customer).await? == 2,
                 "declined: nothing debited, no app row");

    let problems: i64 = client.query_one("SELECT count(*) FROM credit_verify()", &[]).await?.get(0);
    checks.check(problems == 0, "credit_verify() is empty");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut checks = Checks(Vec::new());
    if let Err(e) = run(&mut checks).await {
        println!("rust: error: {e}");
        return ExitCode::FAILURE;
    }
    if !checks.0.is_empty() {
        println!("rust: {} check(s) FAILED", checks.0.len());
        return ExitCode::FAILURE;
    }
    println!("rust: all checks passed");
    ExitCode::SUCCESS
}
