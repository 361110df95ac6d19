//! The `postier` binary: parse the command line, load the configuration, run the command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use postier::config::Config;
use postier::startup::Application;

#[derive(Parser)]
#[command(
    name = "postier",
    version,
    about = "Management API of a hosted-mail provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, then serve the API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Write a Postfix + Dovecot configuration reading Postier's mail views (or, with
    /// --print-role-sql, the SQL of their read-only database role).
    MailstackConfig(Box<postier::mailstack::MailstackArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        return match postier::openapi::build().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::MailstackConfig(args) = &command {
        return match postier::mailstack::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("postier mailstack-config: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("postier: {e}");
            return ExitCode::from(2);
        }
    };
    postier::telemetry::init(&config);
    match command {
        Command::Migrate => match migrate(&config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "migration failed");
                ExitCode::FAILURE
            }
        },
        _ => match serve(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "postier stopped");
                eprintln!("postier: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn migrate(config: &Config) -> Result<(), sea_orm::DbErr> {
    let db = postier::db::connect(config).await?;
    postier::db::migrate(&db).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listen = config.listen;
    let app = Application::build(config).await?;
    tracing::info!(%listen, port = app.port(), "postier listening");
    app.run_until_stopped().await?;
    tracing::info!("postier stopped");
    Ok(())
}
