//! Shared plumbing: connection settings (loopback or Unix socket only), throwaway databases,
//! error classification against the error table of docs/reference.md, the one-line figure format, and a
//! tiny argument parser.

use postgres::error::DbError;
use postgres::{Client, Config, NoTls};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The SQLSTATEs docs/reference.md documents (its "Errors" table).
pub const DOCUMENTED: &[&str] = &[
    "22023", "22001", "22003", "42704", "42710", "23505", "55000", "53400", "42501", "42703",
];

pub fn documented(code: &str) -> bool {
    DOCUMENTED.contains(&code)
}

/// Connection settings from PGHOST / PGPORT / PGUSER; refuses anything but a Unix socket
/// directory or a loopback address.
pub fn base_config(app: &str) -> Result<Config, String> {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let loopback =
        host.starts_with('/') || host == "localhost" || host.starts_with("127.") || host == "::1";
    if !loopback {
        return Err(format!(
            "PGHOST={host}: only a Unix socket directory or a loopback address is allowed"
        ));
    }
    let port: u16 = std::env::var("PGPORT")
        .unwrap_or_else(|_| "5432".into())
        .parse()
        .map_err(|_| "PGPORT is not a port number".to_string())?;
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let mut c = Config::new();
    c.host(&host)
        .port(port)
        .user(&user)
        .application_name(app)
        .connect_timeout(Duration::from_secs(10));
    Ok(c)
}

pub fn connect(base: &Config, db: &str) -> Result<Client, String> {
    let mut c = base.clone();
    c.dbname(db);
    c.connect(NoTls)
        .map_err(|e| format!("connect to {db}: {e}"))
}

/// Notices received on a connection (the attack test's markers).
pub type Notices = Arc<Mutex<Vec<String>>>;

pub fn connect_with_notices(
    base: &Config,
    db: &str,
    user: Option<&str>,
) -> Result<(Client, Notices), String> {
    let notices: Notices = Arc::new(Mutex::new(Vec::new()));
    let sink = notices.clone();
    let mut c = base.clone();
    c.dbname(db);
    if let Some(u) = user {
        c.user(u);
    }
    c.notice_callback(move |n: DbError| {
        if let Ok(mut v) = sink.lock() {
            v.push(n.message().to_string());
        }
    });
    let client = c
        .connect(NoTls)
        .map_err(|e| format!("connect to {db}: {e}"))?;
    Ok((client, notices))
}

/// Drop and re-create a database from the maintenance database `postgres`.
pub fn recreate_db(base: &Config, db: &str) -> Result<(), String> {
    let mut admin = connect(base, "postgres")?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .map_err(|e| format!("drop database {db}: {}", err_text(&e)))?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .map_err(|e| format!("create database {db}: {}", err_text(&e)))?;
    Ok(())
}

pub fn drop_db(base: &Config, db: &str) {
    if let Ok(mut admin) = connect(base, "postgres") {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    /// A server error: SQLSTATE and message.
    Db(String, String),
    /// The connection broke (a crashed backend, a killed server) or could not be used.
    Lost(String),
}

pub fn outcome_of(r: Result<(), postgres::Error>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(e) => classify(&e),
    }
}

pub fn classify(e: &postgres::Error) -> Outcome {
    match e.as_db_error() {
        Some(db) => Outcome::Db(db.code().code().to_string(), db.message().to_string()),
        None => Outcome::Lost(e.to_string()),
    }
}

/// "SQLSTATE: message" or the client error.
pub fn err_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A figure line: `reliability <test> k=v ... result=pass|fail`.
pub fn figure(test: &str, fields: &[(&str, String)], pass: bool) -> String {
    let mut s = format!("reliability {test}");
    for (k, v) in fields {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s.push_str(if pass { " result=pass" } else { " result=fail" });
    s
}

/// `--name value` / `--flag` options after the subcommand.
pub struct Args {
    map: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(args: &[String], known: &[&str], flags: &[&str]) -> Result<Args, String> {
        let mut map = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a}"))?;
            if flags.contains(&name) {
                map.insert(name.to_string(), "true".to_string());
                i += 1;
            } else if known.contains(&name) {
                let v = args
                    .get(i + 1)
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                map.insert(name.to_string(), v.clone());
                i += 2;
            } else {
                return Err(format!("unknown option --{name}"));
            }
        }
        Ok(Args { map })
    }
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.map.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{name}: cannot parse {v:?}")),
        }
    }
    pub fn string(&self, name: &str, default: &str) -> String {
        self.map
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    pub fn flag(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// Database names we create: letters, digits and underscores only.
pub fn check_db_name(db: &str) -> Result<(), String> {
    if !db.is_empty() && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "bad database name {db:?}: letters, digits and _ only"
        ))
    }
}

/// A SQL string literal ('' doubled; E'' never needed because we never emit backslashes
/// as escapes).
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Shorten a text for a report line.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let head: String = s.chars().take(n).collect();
        format!("{head}…")
    }
}
