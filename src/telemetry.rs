//! Logging: the tracing subscriber (filter from `POSTIER_LOG`, `json` or `pretty` output) and
//! helpers that keep the request span across `spawn_blocking`. Never logs secrets itself.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{Config, LogFormat};

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(config: &Config) {
    // sqlx logs every statement at INFO: keep it quiet unless the operator asks for it.
    let directives = if config.log.contains("sqlx") {
        config.log.clone()
    } else {
        format!("{},sqlx=warn,sea_orm=warn", config.log)
    };
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let format = config
        .log_format
        .unwrap_or(if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        });
    let builder = fmt().with_env_filter(filter).with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// `spawn_blocking` that keeps the caller's span (request id) on the blocking thread.
pub fn spawn_blocking_with_tracing<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}
