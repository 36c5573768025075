//! Where results go: an MQTT broker named by a URL, `mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]`
//! (`mqtts://` for TLS). The password never appears in anything this module prints.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};

/// The topic prefix when the URL names none.
pub const DEFAULT_PREFIX: &str = "emoedge";
/// Most bytes of a result message, topic and payload together: results are about 500 bytes.
/// The same bound is rumqttc's packet limit both ways (its default, 10 KiB, is not the broker's).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most bytes of the topic prefix.
pub const MAX_PREFIX_BYTES: usize = 512;
/// Most bytes of a CA certificate file (a bundle of every public CA is about 200 KB).
const MAX_CA_BYTES: u64 = 4 << 20;
/// The MQTT fixed and variable headers around topic and payload, at most.
const PACKET_OVERHEAD: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0:?} is not a broker URL ({1}); write mqtt://HOST:PORT/PREFIX, e.g. mqtt://127.0.0.1:1883/emoedge")]
    Url(String, String),
    #[error(
        "{0} is not an MQTT broker URL: the scheme must be mqtt:// (or mqtts:// for TLS), e.g. mqtt://127.0.0.1:1883/emoedge"
    )]
    Scheme(String),
    #[error("{0} names no host; write mqtt://HOST:PORT/PREFIX")]
    NoHost(String),
    #[error("{what} {value:?} cannot be an MQTT topic level: use letters, digits, '-', '_' and '.' only")]
    TopicLevel { what: &'static str, value: String },
    #[error("the topic prefix of {0} is {1} bytes long; use at most {MAX_PREFIX_BYTES}")]
    LongPrefix(String, usize),
    #[error(
        "{0} has a query or a fragment ('?' or '#'), which a broker URL cannot have; write mqtt://HOST:PORT/PREFIX with the prefix's levels made of letters, digits, '-', '_' and '.'"
    )]
    Extra(String),
    #[error("cannot read the CA certificates {path}: {reason}; give a PEM file with --mqtt-ca")]
    Ca { path: PathBuf, reason: String },
    #[error("--mqtt-ca is for TLS: use an mqtts:// URL with it")]
    CaWithoutTls,
    #[error("cannot start the MQTT connection's thread: {0}")]
    Thread(String),
}

/// A character a topic level of ours may hold: no separators or wildcards, nothing a consumer's
/// shell or file name would trip on.
pub fn topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Checks that `value` can stand as one level of a topic (see [`topic_char`]).
pub fn topic_level(what: &'static str, value: &str) -> Result<(), BrokerError> {
    let ok = !value.is_empty() && value.len() <= 128 && value.chars().all(topic_char);
    if ok { Ok(()) } else { Err(BrokerError::TopicLevel { what, value: value.to_string() }) }
}

/// A parsed broker URL plus the options that do not fit in one.
#[derive(Clone)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// Topic levels before `<device>/<stream>`, without leading or trailing '/'.
    pub prefix: String,
    pub username: Option<String>,
    password: Option<String>,
    /// PEM file of the CA certificates a TLS broker is checked against (default: the system's).
    pub ca_file: Option<PathBuf>,
}

impl Broker {
    /// Parses `mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]` (`mqtts://`: TLS, port 8883).
    pub fn parse(text: &str) -> Result<Self, BrokerError> {
        // A password with '/' or '@' written as it is ends the authority early: the URL does not
        // parse, or the rest of the password lands in the path.
        let hint = "if the login's password holds '/' or '@', percent-encode them (%2F, %40) or give the password in EMOEDGE_MQTT_PASSWORD";
        let with_login = text.split_once("://").is_some_and(|(_, rest)| rest.contains('@'));
        let url = url::Url::parse(text).map_err(|e| {
            let reason = if with_login { format!("{e}; {hint}") } else { e.to_string() };
            BrokerError::Url(redact_text(text), reason)
        })?;
        if url.path().contains('@') {
            return Err(BrokerError::Url(redact_text(text), hint.into()));
        }
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(BrokerError::Scheme(redact_text(text))),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(BrokerError::NoHost(redact_text(text))),
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
        let password = url.password().map(decode);
        if url.query().is_some() || url.fragment().is_some() {
            return Err(BrokerError::Extra(redact_text(text)));
        }
        let prefix = url.path().trim_matches('/').to_string();
        let prefix = if prefix.is_empty() { DEFAULT_PREFIX.to_string() } else { prefix };
        if prefix.len() > MAX_PREFIX_BYTES {
            return Err(BrokerError::LongPrefix(redact_text(text), prefix.len()));
        }
        for level in prefix.split('/') {
            topic_level("the topic prefix level", level)?;
        }
        Ok(Self {
            port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
            host,
            tls,
            prefix,
            username,
            password,
            ca_file: None,
        })
    }

    /// The broker at `url`, with the login and CA file given apart from it (each overriding
    /// the URL's).
    pub fn with_login(
        url: &str,
        username: Option<String>,
        password: Option<String>,
        ca_file: Option<PathBuf>,
    ) -> Result<Self, BrokerError> {
        Self::parse(url)?.with_credentials(username, password).with_ca_file(ca_file)
    }

    /// Sets (or, with `None`, keeps) the user and password given apart from the URL.
    pub fn with_credentials(mut self, username: Option<String>, password: Option<String>) -> Self {
        self.username = username.or(self.username);
        self.password = password.or(self.password);
        self
    }

    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> Result<Self, BrokerError> {
        if ca_file.is_some() && !self.tls {
            return Err(BrokerError::CaWithoutTls);
        }
        self.ca_file = ca_file;
        Ok(self)
    }

    /// The topic of one stream's results: `<prefix>/<device>/<stream>`.
    pub fn topic(&self, device: &str, stream: &str) -> String {
        format!("{}/{device}/{stream}", self.prefix)
    }

    /// The topic filter that matches every device's and stream's results.
    pub fn all_topics(&self) -> String {
        format!("{}/+/+", self.prefix)
    }

    /// rumqttc's options for a session named `client_id`; the TLS setup reads the CA file here,
    /// so a bad one is reported before any connection is tried.
    pub fn mqtt_options(&self, client_id: &str) -> Result<MqttOptions, BrokerError> {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(5));
        // What emoedge sends is checked against this before it is queued.
        options.set_max_packet_size(MAX_MESSAGE_BYTES + PACKET_OVERHEAD, MAX_MESSAGE_BYTES + PACKET_OVERHEAD);
        // Every delivery is tracked through the spool: a new session each time is enough.
        options.set_clean_session(true);
        if let Some(user) = &self.username {
            options.set_credentials(user, self.password.clone().unwrap_or_default());
        }
        if self.tls {
            options.set_transport(Transport::tls_with_config(self.tls_config()?));
        }
        Ok(options)
    }

    /// The MQTT 5 options of a subscriber (`emoedge watch`) named `client_id`: a session the
    /// broker keeps for `session_expiry` while the connection is down (so nothing sent meanwhile
    /// is lost), and a packet limit the broker honours by not sending anything larger.
    pub fn mqtt5_options(
        &self,
        client_id: &str,
        session_expiry: Duration,
    ) -> Result<rumqttc::v5::MqttOptions, BrokerError> {
        let mut options = rumqttc::v5::MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_start(false);
        options.set_session_expiry_interval(Some(session_expiry.as_secs() as u32));
        options.set_max_packet_size(Some((MAX_MESSAGE_BYTES + PACKET_OVERHEAD) as u32));
        if let Some(user) = &self.username {
            options.set_credentials(user, self.password.clone().unwrap_or_default());
        }
        if self.tls {
            options.set_transport(Transport::tls_with_config(self.tls_config()?));
        }
        Ok(options)
    }

    fn tls_config(&self) -> Result<TlsConfiguration, BrokerError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let ca = |reason: String| BrokerError::Ca { path: path.clone(), reason };
                // Read nothing that is not a file of a plausible size (/dev/zero never ends).
                let meta = std::fs::metadata(path).map_err(|e| ca(e.to_string()))?;
                if !meta.is_file() || meta.len() > MAX_CA_BYTES {
                    return Err(ca(format!("it is not a regular file of at most {MAX_CA_BYTES} bytes")));
                }
                let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                    .map_err(|e| ca(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ca(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca("it holds no certificate".into()));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| ca(e.to_string()))?;
                }
            }
            None => {
                // Certificates the system cannot parse are skipped, as every TLS client does.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BrokerError::Ca { path: self.ca_file.clone().unwrap_or_default(), reason: e.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfiguration::Rustls(Arc::new(config)))
    }
}

/// The URL as users wrote it, minus the password.
impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = self.username.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{scheme}://{user}{host}:{}/{}", self.port, self.prefix)
    }
}

/// Never prints the password, even by accident in a `{:?}`.
impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Broker({self})")
    }
}

/// `text` with any password replaced, for errors about URLs that did not parse: everything
/// from `://` to the last `@` before the path is the login (a password may hold `/` or `@`),
/// and only its user name, up to the first `:`, is kept.
pub fn redact_text(text: &str) -> String {
    let Some(scheme_end) = text.find("://").map(|i| i + 3) else { return text.to_string() };
    let rest = &text[scheme_end..];
    // The host and path hold no '@': the last one ends the login, wherever a '/' stands.
    let Some(at) = rest.rfind('@').map(|i| scheme_end + i) else { return text.to_string() };
    match text[scheme_end..at].find(':') {
        Some(colon) => format!("{}:***{}", &text[..scheme_end + colon], &text[at..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_gives_host_port_prefix_and_credentials() {
        let b = Broker::parse("mqtt://cam-user:s%40cret@broker.local:1884/site/a").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls, b.prefix.as_str()), ("broker.local", 1884, false, "site/a"));
        assert_eq!(b.username.as_deref(), Some("cam-user"));
        assert_eq!(b.password.as_deref(), Some("s@cret"));
        assert_eq!(b.topic("jetson-1", "0"), "site/a/jetson-1/0");
        assert_eq!(b.all_topics(), "site/a/+/+");
    }

    #[test]
    fn defaults_are_the_standard_ports_and_prefix() {
        let b = Broker::parse("mqtt://127.0.0.1").unwrap();
        assert_eq!((b.port, b.prefix.as_str()), (1883, DEFAULT_PREFIX));
        let b = Broker::parse("mqtts://[::1]/x").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("::1", 8883, true));
        assert_eq!(b.to_string(), "mqtts://[::1]:8883/x");
    }

    #[test]
    fn passwords_never_show() {
        let b = Broker::parse("mqtt://u:hunter2@h:1/p").unwrap();
        assert!(!b.to_string().contains("hunter2"));
        assert!(!format!("{b:?}").contains("hunter2"));
        let b = Broker::parse("mqtt://h").unwrap().with_credentials(Some("u".into()), Some("hunter2".into()));
        assert!(!format!("{b} {b:?}").contains("hunter2"));
        for bad in ["http://u:hunter2@h/p", "mqtt://u:hunter2@/p", "mqtt://u:hunter2@h:99999/p"] {
            let e = Broker::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("mqtt://"), "the error shows the form to write: {e}");
        }
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let e = Broker::parse("127.0.0.1:1883").unwrap_err().to_string();
        assert!(e.contains("mqtt://HOST:PORT/PREFIX") || e.contains("scheme must be mqtt://"), "{e}");
        let e = Broker::parse("mqtt://h/a+b").unwrap_err().to_string();
        assert!(e.contains("\"a+b\"") && e.contains("letters, digits"), "{e}");
        let e = Broker::parse("mqtt://h/x").unwrap().with_ca_file(Some("ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("mqtts://"), "{e}");
    }

    #[test]
    fn a_password_holding_slashes_or_ats_never_shows() {
        for url in [
            "mqtt://cam:s3cr/et@127.0.0.1:1883/site",
            "mqtt://cam:s3/cr@et@127.0.0.1:1883/site",
            "mqtt://cam:s3cr@et@127.0.0.1/site",
            "mqtts://cam:a/b/c@[::1]:8883/site",
        ] {
            let shown = match Broker::parse(url) {
                Ok(b) => format!("{b} {b:?}"),
                Err(e) => e.to_string(),
            };
            for part in ["s3cr", "et@", "a/b"] {
                assert!(!shown.contains(part), "{url} shows {part}: {shown}");
            }
        }
        assert_eq!(redact_text("mqtt://cam:s3cr/et@h:1/site"), "mqtt://cam:***@h:1/site");
    }

    #[test]
    fn a_prefix_with_a_wildcard_or_too_long_is_refused_not_cut() {
        let e = Broker::parse("mqtt://h/site/#").unwrap_err().to_string();
        assert!(e.contains("'#'") && e.contains("prefix"), "{e}");
        let e = Broker::parse("mqtt://h/site?x=1").unwrap_err().to_string();
        assert!(e.contains("'?'"), "{e}");
        let long = format!("mqtt://h/{}", ["abcdefghij"; 1000].join("/"));
        let e = Broker::parse(&long).unwrap_err().to_string();
        assert!(e.contains("10999 bytes") && e.contains("at most 512"), "{e}");
    }

    #[test]
    fn a_ca_file_that_is_not_a_regular_file_is_refused_before_reading() {
        let started = std::time::Instant::now();
        for path in ["/dev/zero", "/tmp"] {
            let broker = Broker::parse("mqtts://h/x").unwrap().with_ca_file(Some(path.into())).unwrap();
            let e = broker.mqtt_options("c").unwrap_err().to_string();
            assert!(e.contains(path) && e.contains("not a regular file"), "{e}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn topic_levels_refuse_separators_and_wildcards() {
        for bad in ["", "a/b", "+", "#", "a b", "é", &"x".repeat(129)] {
            assert!(topic_level("stream id", bad).is_err(), "{bad:?}");
        }
        for good in ["0", "cam-1", "front_door.2"] {
            topic_level("stream id", good).unwrap();
        }
    }
}
