//! The mail servers' database roles: splitting `--database-url` into what libpq, Postfix and
//! Dovecot accept, and the SQL that creates the read-only role and the usage role.

use super::{invalid, DbTarget, MailstackError};

/// Splits `postgres://ROLE:PASSWORD@HOST:PORT/DATABASE`. The values end up unquoted in
/// libpq's, Postfix's and Dovecot's syntaxes, so only plain characters are accepted.
pub fn parse_database_url(input: &str) -> Result<DbTarget, MailstackError> {
    const OPTION: &str = "--database-url";
    let url = url::Url::parse(input).map_err(|e| invalid(OPTION, e.to_string()))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(
            OPTION,
            "must be a postgres:// URL (the mail stack reads PostgreSQL; README explains why not SQLite)",
        ));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid(OPTION, "is not UTF-8 once decoded"))
    };
    let plain = |what: &str, value: &str, extra: &str| {
        if !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(c))
        {
            Ok(())
        } else {
            Err(invalid(
                OPTION,
                format!("the {what} must be non-empty letters, digits, '.', '_', '-'{extra}"),
            ))
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| invalid(OPTION, "needs a host (the daemons connect over TCP)"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    plain("host", &host, ":")?;
    let user = decode(url.username())?;
    if user.is_empty()
        || user.len() > 63
        || !user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        || !user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(invalid(
            OPTION,
            "the role name must be lower-case letters, digits and '_' (a PostgreSQL identifier)",
        ));
    }
    let password = url.password().map(decode).transpose()?;
    if let Some(password) = &password {
        plain("password", password, "~+")?;
    }
    let dbname = decode(url.path().trim_start_matches('/'))?;
    plain("database name", &dbname, "")?;
    if url.query().is_some() {
        return Err(invalid(OPTION, "takes no query parameters"));
    }
    Ok(DbTarget {
        host,
        port: url.port().unwrap_or(5432),
        dbname,
        user,
        password,
    })
}

/// SQL (run by a superuser, connected to the database) creating or updating the read-only
/// role of `db` with SELECT on the mail views and nothing else. Idempotent; run it again
/// after a migration that recreates the views.
pub fn role_sql(db: &DbTarget) -> Result<String, MailstackError> {
    let password = match &db.password {
        Some(p) => format!("PASSWORD '{p}'"),
        None => "PASSWORD NULL".to_string(),
    };
    let role = &db.user;
    let views = migration::MAIL_VIEWS.join(", ");
    Ok(format!(
        "-- The mail servers' read-only role: SELECT on Postier's mail views only (the views\n\
         -- run with their owner's rights, so no table is readable). Run as a superuser,\n\
         -- connected to database \"{dbname}\"; run again after migrations recreate the views.\n\
         DO $postier$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN\n\
         \x20   CREATE ROLE \"{role}\" LOGIN {password};\n\
         \x20 ELSE\n\
         \x20   ALTER ROLE \"{role}\" LOGIN {password};\n\
         \x20 END IF;\n\
         END\n\
         $postier$;\n\
         ALTER ROLE \"{role}\" SET default_transaction_read_only = on;\n\
         GRANT CONNECT ON DATABASE \"{dbname}\" TO \"{role}\";\n\
         GRANT USAGE ON SCHEMA public TO \"{role}\";\n\
         GRANT SELECT ON {views} TO \"{role}\";\n",
        dbname = db.dbname,
    ))
}

/// SQL (run by a superuser, connected to the database) creating or updating the role that
/// records device passwords' last use: it may EXECUTE `mail_record_device_use` and nothing
/// else (no table, no view). Idempotent.
pub fn usage_role_sql(usage: &DbTarget) -> Result<String, MailstackError> {
    let password = match &usage.password {
        Some(p) => format!("PASSWORD '{p}'"),
        None => "PASSWORD NULL".to_string(),
    };
    let role = &usage.user;
    Ok(format!(
        "-- The role that records device passwords' last use: EXECUTE on one SECURITY DEFINER\n\
         -- function only. Run as a superuser, connected to database \"{dbname}\".\n\
         DO $postier$\n\
         BEGIN\n\
         \x20 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN\n\
         \x20   CREATE ROLE \"{role}\" LOGIN {password};\n\
         \x20 ELSE\n\
         \x20   ALTER ROLE \"{role}\" LOGIN {password};\n\
         \x20 END IF;\n\
         END\n\
         $postier$;\n\
         GRANT CONNECT ON DATABASE \"{dbname}\" TO \"{role}\";\n\
         GRANT USAGE ON SCHEMA public TO \"{role}\";\n\
         GRANT EXECUTE ON FUNCTION {function} TO \"{role}\";\n",
        dbname = usage.dbname,
        function = migration::RECORD_DEVICE_USE,
    ))
}
