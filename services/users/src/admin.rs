//! Operator commands: how administrators are made.
//!
//! Registration only ever creates customers (`User::register`). An account that may change the
//! catalog and stock is a decision of whoever runs the deployment, so it is made out of band, by
//! the users binary itself, with the service's own configuration (`USERS_DATABASE_URL`):
//!
//! ```text
//! users admin grant EMAIL     give an existing account the admin role
//! users admin revoke EMAIL    make it a customer again
//! users admin create EMAIL    create an admin account (or promote an existing one); the
//!                             password comes from USERS_ADMIN_PASSWORD or USERS_ADMIN_PASSWORD_FILE
//! ```
//!
//! Locally, `cargo xtask up` runs `users admin create admin@ferroshop.test`. In Kubernetes the
//! binary is in the image, so `kubectl -n ferroshop exec deploy/users -- users admin grant
//! you@example.com` does it (see `k8s/README.md`). A role change takes effect at the account's
//! next sign-in: tokens already issued keep the role they were issued with until they expire.

use std::process::ExitCode;

use platform::config::Env;

use crate::{
    Config,
    domain::{Email, Role, User},
    error::UsersError,
    store::UserStore,
};

/// One operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Grant(Email),
    Revoke(Email),
    Create(Email),
}

const USAGE: &str = "usage: users admin grant|revoke|create EMAIL";

impl Command {
    /// Parses the arguments after the binary's name: `admin <verb> <email>`.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let [admin, verb, email] = args else {
            return Err(USAGE.to_owned());
        };
        if admin != "admin" {
            return Err(USAGE.to_owned());
        }
        let email = Email::parse(email).map_err(|err| err.to_string())?;
        match verb.as_str() {
            "grant" => Ok(Self::Grant(email)),
            "revoke" => Ok(Self::Revoke(email)),
            "create" => Ok(Self::Create(email)),
            _ => Err(USAGE.to_owned()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no account is registered as {0}")]
    NoSuchAccount(Email),
    #[error("USERS_ADMIN_PASSWORD (or USERS_ADMIN_PASSWORD_FILE) is required to create an account")]
    NoPassword,
    #[error(transparent)]
    Config(#[from] platform::config::ConfigError),
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Start(platform::StartError),
}

/// The entry point of `users admin …`: runs the command, prints what happened, and returns the
/// exit code (0 done, 1 failed, 2 bad arguments).
pub async fn main(args: &[String]) -> ExitCode {
    let command = match Command::parse(args) {
        Ok(command) => command,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let env = Env::new("users");
    let outcome = match Config::from(&env) {
        Ok(config) => run(&config, &env, command).await,
        Err(err) => Err(err.into()),
    };
    match outcome {
        Ok(user) => {
            println!("{} is now {}", user.email, user.role.as_str());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("users admin: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` against the database of `config`; the account as it is afterwards.
pub async fn run(config: &Config, env: &Env, command: Command) -> Result<User, AdminError> {
    let store = connect(&config.runtime.database_url).await?;
    let accounts =
        crate::service::Accounts::configured(config, store).map_err(AdminError::Start)?;
    let set_role = |email: Email, role: Role| {
        let accounts = &accounts;
        async move {
            accounts
                .set_role(&email, role)
                .await?
                .ok_or(AdminError::NoSuchAccount(email))
        }
    };
    match command {
        Command::Grant(email) => set_role(email, Role::Admin).await,
        Command::Revoke(email) => set_role(email, Role::Customer).await,
        Command::Create(email) => {
            let raw = admin_password(env)?.ok_or(AdminError::NoPassword)?;
            let password = raw.trim_end_matches(['\r', '\n']);
            match accounts
                .register(email.as_str(), password, "", Role::Admin)
                .await
            {
                Ok(user) => Ok(user),
                // Already registered: promote it, and leave its password alone.
                Err(UsersError::EmailTaken) => set_role(email, Role::Admin).await,
                Err(other) => Err(other.into()),
            }
        }
    }
}

/// Gives the account registered as `email` the `role`, in the users database at
/// `database_url` (what `users admin grant` does; tests of other crates call it directly).
pub async fn set_role(database_url: &str, email: &str, role: Role) -> Result<User, AdminError> {
    let email = Email::parse(email).map_err(UsersError::from)?;
    connect(database_url)
        .await?
        .set_role(&email, role)
        .await?
        .ok_or(AdminError::NoSuchAccount(email))
}

async fn connect(database_url: &str) -> Result<UserStore, AdminError> {
    let pool = platform::db::connect(database_url, 2).await?;
    platform::db::migrate(&pool, &[&messaging::migrator(), &sqlx::migrate!()]).await?;
    Ok(UserStore::new(pool))
}

/// `USERS_ADMIN_PASSWORD` (or the file `USERS_ADMIN_PASSWORD_FILE` names): the password of the
/// account `admin create` makes.
pub fn admin_password(env: &Env) -> Result<Option<String>, platform::config::ConfigError> {
    env.secret("ADMIN_PASSWORD")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn commands_are_a_verb_and_an_address() {
        assert_eq!(
            Command::parse(&args(&["admin", "grant", "Root@Shop.test"])),
            Ok(Command::Grant(Email::parse("root@shop.test").unwrap()))
        );
        assert!(matches!(
            Command::parse(&args(&["admin", "create", "a@b.test"])),
            Ok(Command::Create(_))
        ));
        for bad in [
            &["admin"][..],
            &["admin", "grant"],
            &["admin", "promote", "a@b.test"],
            &["user", "grant", "a@b.test"],
            &["admin", "grant", "not-an-email"],
        ] {
            assert!(Command::parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
