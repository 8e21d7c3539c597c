//! Database URLs: which database one names, the same server's maintenance database, and the
//! creation of a database that does not exist yet.

use anyhow::{Context, bail};

/// A `postgres://…/name?params` URL split around its database name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    before_name: String,
    name: String,
    after_name: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<DatabaseUrl> {
        let scheme_end = url
            .find("://")
            .with_context(|| format!("database URL '{url}' has no scheme (postgres://…)"))?;
        let path_start = url[scheme_end + 3..]
            .find('/')
            .map(|i| scheme_end + 3 + i + 1)
            .with_context(|| format!("database URL '{url}' names no database"))?;
        let path_end = url[path_start..]
            .find('?')
            .map_or(url.len(), |i| path_start + i);
        let name = &url[path_start..path_end];
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("database name '{name}' in DATABASE_URL must be letters, digits, '_' or '-'");
        }
        Ok(DatabaseUrl {
            before_name: url[..path_start].to_owned(),
            name: name.to_owned(),
            after_name: url[path_end..].to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, name: &str) -> String {
        format!("{}{}{}", self.before_name, name, self.after_name)
    }

    pub fn url(&self) -> String {
        self.with_database(&self.name)
    }
}

/// A quoted identifier, for the statements that cannot take a bind parameter.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Opens a plain connection (outside the pool) for administrative statements.
pub async fn connect_raw(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "administrative connection ended");
        }
    });
    Ok(client)
}

/// Creates the database the URL names when it does not exist. Returns whether it did.
pub async fn ensure_database(url: &str) -> anyhow::Result<bool> {
    let parsed = DatabaseUrl::parse(url)?;
    let admin = connect_raw(&parsed.with_database("postgres")).await?;
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&parsed.name()],
        )
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    match admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(parsed.name())))
        .await
    {
        Ok(()) => Ok(true),
        // Another process created it between our check and our CREATE: that is fine.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot create database {}", parsed.name())),
    }
}

/// The URL with any password replaced, for logs and error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_around_the_name() {
        let u =
            DatabaseUrl::parse("postgres://postgres@127.0.0.1:5432/customer360?sslmode=disable")
                .unwrap();
        assert_eq!(u.name(), "customer360");
        assert_eq!(
            u.with_database("postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
        );
        assert!(DatabaseUrl::parse("postgres://127.0.0.1:5432/").is_err());
        assert!(DatabaseUrl::parse("postgres://127.0.0.1:5432").is_err());
        assert!(DatabaseUrl::parse("127.0.0.1/x").is_err());
        assert!(DatabaseUrl::parse("postgres://h/a;drop").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
