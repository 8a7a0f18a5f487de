//! Where the Redis is: one URL, or the primary that Redis Sentinel names.
//!
//! Three settings, under the service's prefix, say it (`GATEWAY_REDIS_URL`, …):
//!
//! | setting | example | meaning |
//! |---|---|---|
//! | `REDIS_URL` | `redis://redis:6379` | one server, always at this address |
//! | `REDIS_SENTINELS` | `sentinel-0:26379,sentinel-1:26379` | the sentinels to ask, `host:port`, comma-separated |
//! | `REDIS_MASTER` | `ferroshop` | the name the sentinels monitor the primary under (`sentinel monitor <name> …`) |
//!
//! **Precedence.** `REDIS_SENTINELS` and `REDIS_MASTER` go together: set both and the primary is
//! found through Sentinel and `REDIS_URL` is not used (not even parsed), whatever it says; set
//! neither and `REDIS_URL` is used as before. This is a precedence rather than an error on
//! purpose: a base configuration sets `REDIS_URL` for every deployment, and an overlay for an
//! environment with Sentinel adds the two Sentinel settings without having to remove it. Setting
//! only one of the two is a mistake and a startup error naming the one that is missing.
//!
//! Through Sentinel the primary is reached without credentials, on database 0, and without TLS:
//! what `REDIS_URL` could carry (`redis://user:pass@host/2`) has no counterpart yet.

use std::fmt;

use redis::ConnectionAddr;

/// The settings, without the service's prefix.
pub const URL_SETTING: &str = "REDIS_URL";
/// See [`URL_SETTING`].
pub const SENTINELS_SETTING: &str = "REDIS_SENTINELS";
/// See [`URL_SETTING`].
pub const MASTER_SETTING: &str = "REDIS_MASTER";

/// Where the Redis to use is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server, always at this URL. The connection reconnects to the same address.
    Url(String),
    /// Whichever server the sentinels name as the primary of `master`, asked again after every
    /// failure (see the crate docs).
    Sentinel {
        /// The sentinels, asked in this order; at least one.
        sentinels: Vec<SentinelAddr>,
        /// The name the sentinels monitor the primary under.
        master: String,
    },
}

/// One sentinel's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelAddr {
    /// A host name or an IP address (an IPv6 address without its brackets).
    pub host: String,
    /// Its port (Sentinel's default is 26379).
    pub port: u16,
}

impl fmt::Display for SentinelAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl SentinelAddr {
    /// The address as the redis crate takes it.
    pub(crate) fn connection_addr(&self) -> ConnectionAddr {
        ConnectionAddr::Tcp(self.host.clone(), self.port)
    }
}

/// A Redis setting that cannot be used: `setting` (without the service's prefix) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SettingError {
    /// [`URL_SETTING`], [`SENTINELS_SETTING`] or [`MASTER_SETTING`].
    pub setting: &'static str,
    /// What is wrong, for the operator.
    pub reason: String,
}

impl SettingError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

impl RedisTarget {
    /// Reads the three settings through `read` (a setting name without prefix → its value, `None`
    /// when unset or blank) and applies the precedence above; `default_url` is used when none is
    /// set. All three are always read, so a service's "reads exactly what it declares" check sees
    /// them.
    ///
    /// # Errors
    /// A [`SettingError`] naming the setting that is malformed or missing.
    pub fn from_settings(
        read: impl Fn(&str) -> Option<String>,
        default_url: &str,
    ) -> Result<Self, SettingError> {
        let url = read(URL_SETTING);
        let sentinels = read(SENTINELS_SETTING);
        let master = read(MASTER_SETTING);
        match (sentinels, master) {
            (Some(sentinels), Some(master)) => Ok(Self::Sentinel {
                sentinels: parse_sentinels(&sentinels)?,
                master: parse_master(&master)?,
            }),
            (Some(_), None) => Err(SettingError::new(
                MASTER_SETTING,
                "must be set together with …_REDIS_SENTINELS: the name the sentinels monitor \
                 the primary under",
            )),
            (None, Some(_)) => Err(SettingError::new(
                SENTINELS_SETTING,
                "must be set together with …_REDIS_MASTER: the sentinels to ask, host:port, \
                 comma-separated",
            )),
            (None, None) => {
                let url = url.unwrap_or_else(|| default_url.to_owned());
                check_url(&url)?;
                Ok(Self::Url(url))
            }
        }
    }
}

/// A `redis://` or `rediss://` URL the redis crate accepts.
fn check_url(url: &str) -> Result<(), SettingError> {
    if !url.starts_with("redis://") && !url.starts_with("rediss://") {
        return Err(SettingError::new(
            URL_SETTING,
            "expected a redis:// or rediss:// URL",
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|err| SettingError::new(URL_SETTING, format!("not a Redis URL: {err}")))
}

/// `host:port[,host:port…]`: every entry must have a host and a port from 1 to 65535; blanks
/// around entries are ignored, empty entries are not.
fn parse_sentinels(list: &str) -> Result<Vec<SentinelAddr>, SettingError> {
    list.split(',')
        .map(|entry| {
            parse_sentinel(entry.trim()).map_err(|reason| {
                SettingError::new(SENTINELS_SETTING, format!("{entry:?}: {reason}"))
            })
        })
        .collect()
}

fn parse_sentinel(entry: &str) -> Result<SentinelAddr, String> {
    if entry.is_empty() {
        return Err("empty entry; expected host:port".to_owned());
    }
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err("expected host:port (Sentinel's port is usually 26379)".to_owned());
    };
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .strip_suffix(']')
            .ok_or("an IPv6 address must be written [address]:port")?,
        None if host.contains(':') => return Err("write an IPv6 address as [address]:port".into()),
        None => host,
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#[]".contains(c))
    {
        return Err("expected a host name or an IP address before the port".to_owned());
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)
        .ok_or("the port must be a number from 1 to 65535")?;
    Ok(SentinelAddr {
        host: host.to_owned(),
        port,
    })
}

/// Sentinel names are single words: no blanks (they are sent as one command argument, but a
/// name with spaces is far more likely a pasted mistake than a real name).
fn parse_master(name: &str) -> Result<String, SettingError> {
    let name = name.trim();
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) || name.len() > 200 {
        return Err(SettingError::new(
            MASTER_SETTING,
            "expected the master's name as the sentinels know it, one word",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn target(vars: &[(&str, &str)]) -> Result<RedisTarget, SettingError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RedisTarget::from_settings(|name| vars.get(name).cloned(), "redis://127.0.0.1:6379")
    }

    #[test]
    fn without_settings_the_default_url_is_used() {
        assert_eq!(
            target(&[]).unwrap(),
            RedisTarget::Url("redis://127.0.0.1:6379".to_owned())
        );
    }

    #[test]
    fn sentinels_and_master_are_parsed() {
        let parsed = target(&[
            (
                "REDIS_SENTINELS",
                " sentinel-0:26379, 10.0.0.7:26380,[::1]:26381 ",
            ),
            ("REDIS_MASTER", "ferroshop"),
        ])
        .unwrap();
        let RedisTarget::Sentinel { sentinels, master } = parsed else {
            panic!("{parsed:?}");
        };
        assert_eq!(master, "ferroshop");
        let shown: Vec<String> = sentinels.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["sentinel-0:26379", "10.0.0.7:26380", "[::1]:26381"]);
        assert_eq!(sentinels[2].host, "::1");
    }

    #[test]
    fn sentinels_take_precedence_over_the_url() {
        let parsed = target(&[
            ("REDIS_URL", "redis://redis:6379"),
            ("REDIS_SENTINELS", "sentinel:26379"),
            ("REDIS_MASTER", "ferroshop"),
        ])
        .unwrap();
        assert!(matches!(parsed, RedisTarget::Sentinel { .. }), "{parsed:?}");
        // Not even parsed: a leftover URL cannot stop a Sentinel deployment from starting.
        let parsed = target(&[
            ("REDIS_URL", "http://leftover"),
            ("REDIS_SENTINELS", "sentinel:26379"),
            ("REDIS_MASTER", "ferroshop"),
        ]);
        assert!(parsed.is_ok(), "{parsed:?}");
    }

    #[test]
    fn one_sentinel_setting_without_the_other_names_the_missing_one() {
        let err = target(&[("REDIS_SENTINELS", "sentinel:26379")]).unwrap_err();
        assert_eq!(err.setting, MASTER_SETTING);
        let err = target(&[("REDIS_MASTER", "ferroshop")]).unwrap_err();
        assert_eq!(err.setting, SENTINELS_SETTING);
    }

    #[test]
    fn a_bad_sentinel_address_names_the_setting_and_the_entry() {
        for list in [
            "sentinel",
            "sentinel:",
            ":26379",
            "sentinel:0",
            "sentinel:65536",
            "sentinel:port",
            "a:1,,b:2",
            "a:1,",
            "::1:26379",
            "[::1:26379",
            "redis://sentinel:26379",
            "user@sentinel:26379",
            "sen tinel:26379",
        ] {
            let err = target(&[("REDIS_SENTINELS", list), ("REDIS_MASTER", "m")]).unwrap_err();
            assert_eq!(err.setting, SENTINELS_SETTING, "{list}");
        }
        let err = target(&[("REDIS_SENTINELS", "good:1,bad"), ("REDIS_MASTER", "m")]).unwrap_err();
        assert!(err.reason.contains("\"bad\""), "{err}");
    }

    #[test]
    fn a_master_name_with_blanks_is_refused() {
        let err = target(&[
            ("REDIS_SENTINELS", "s:26379"),
            ("REDIS_MASTER", "my master"),
        ])
        .unwrap_err();
        assert_eq!(err.setting, MASTER_SETTING);
    }

    #[test]
    fn a_url_that_is_not_redis_names_the_url_setting() {
        for url in [
            "http://cache:6379",
            "rediss-ish://u:hunter2@cache",
            "redis://",
        ] {
            let err = target(&[("REDIS_URL", url)]).unwrap_err();
            assert_eq!(err.setting, URL_SETTING, "{url}");
            assert!(!err.reason.contains("hunter2"), "{err}");
        }
    }
}
