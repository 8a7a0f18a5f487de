//! The services `cargo xtask up` knows how to run: their declarations (`libs/declarations`: name,
//! ports) with what only a local run needs (a log colour, local-only settings).

use std::path::Path;

pub struct Service {
    pub name: &'static str,
    /// The API port: gRPC for the services, HTTP for the gateway.
    pub api_port: u16,
    /// The setting that moves it: `GRPC_ADDR` or `HTTP_ADDR`.
    pub api_setting: &'static str,
    pub admin_port: u16,
    /// ANSI colour of its log prefix.
    pub colour: &'static str,
    /// Local-only settings beyond the defaults.
    pub extra_env: &'static [(&'static str, &'static str)],
}

impl Service {
    /// A service as `cargo xtask up` runs it: name and ports from its declaration
    /// (`libs/declarations`), a log colour, and local-only settings.
    pub const fn local(
        declared: &declarations::Service,
        colour: &'static str,
        extra_env: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            name: declared.name,
            api_port: declared.api_port,
            api_setting: declared.api.address_setting(),
            admin_port: declared.admin_port,
            colour,
            extra_env,
        }
    }
}

pub const SERVICES: &[Service] = &[
    Service::local(&declarations::users::USERS, "\x1b[36m", &[]),
    // A demo catalog, so the storefront has something to sell.
    Service::local(
        &declarations::inventory::INVENTORY,
        "\x1b[33m",
        &[("INVENTORY_SEED_DEMO", "true")],
    ),
    Service::local(&declarations::orders::ORDERS, "\x1b[35m", &[]),
    Service::local(&declarations::payments::PAYMENTS, "\x1b[32m", &[]),
    Service::local(&declarations::gateway::GATEWAY, "\x1b[34m", &[]),
];

/// The services that exist in this checkout (the table lists the planned ones too).
pub fn present() -> impl Iterator<Item = &'static Service> {
    SERVICES.iter().filter(|service| {
        Path::new("services")
            .join(service.name)
            .join("Cargo.toml")
            .exists()
    })
}

impl Service {
    /// `SHIPPING` for `shipping`, `GIFT_CARDS` for `gift-cards`: the prefix of its settings.
    pub fn env_prefix(&self) -> String {
        self.name.to_ascii_uppercase().replace('-', "_")
    }

    /// Its local database: `gift_cards` for `gift-cards` (`DATABASES` of `infra.rs`).
    pub fn database(&self) -> String {
        self.name.replace('-', "_")
    }

    /// The ports of instance `index` (0-based): replicas after the first add 100 per index,
    /// e.g. inventory 50052/9102, then 50152/9202.
    pub fn ports(&self, index: u16) -> (u16, u16) {
        (self.api_port + 100 * index, self.admin_port + 100 * index)
    }

    /// The `<PREFIX>_…` environment of an instance listening on `api_port` and `admin_port`.
    pub fn instance_env(
        &self,
        database_url: &str,
        api_port: u16,
        admin_port: u16,
    ) -> Vec<(String, String)> {
        let prefix = self.env_prefix();
        let mut env = vec![
            (format!("{prefix}_DATABASE_URL"), database_url.to_owned()),
            (
                format!("{prefix}_{}", self.api_setting),
                format!("127.0.0.1:{api_port}"),
            ),
            (
                format!("{prefix}_ADMIN_ADDR"),
                format!("127.0.0.1:{admin_port}"),
            ),
        ];
        env.extend(
            self.extra_env
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        );
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dashed_name_has_an_underscored_prefix_and_database() {
        let service = Service {
            name: "gift-cards",
            api_port: 50056,
            api_setting: "GRPC_ADDR",
            admin_port: 9106,
            colour: "",
            extra_env: &[],
        };
        assert_eq!(service.env_prefix(), "GIFT_CARDS");
        assert_eq!(service.database(), "gift_cards");
        let env = service.instance_env("postgres://db/gift_cards", 50056, 9106);
        assert_eq!(env[0].0, "GIFT_CARDS_DATABASE_URL");
    }
}
