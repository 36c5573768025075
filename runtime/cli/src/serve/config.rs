//! `emoedge serve`'s TOML file: its own keys (`listen`, `token_file`, `max_streams`, the
//! `[[stream]]` tables) and every `emoedge run` option by its long name (`detect_interval = 1`
//! is `--detect-interval 1`), parsed by `run`'s own arguments so that defaults, ranges and
//! their error messages are written once.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Parser};
use serde::{Deserialize, Serialize};

use crate::run::RunArgs;

/// Where the API listens when the file does not say: this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8089";
/// Streams one process runs at most when the file does not say.
pub const DEFAULT_MAX_STREAMS: usize = 32;
/// The environment variable that holds the API token (when no `token_file` is given).
pub const TOKEN_ENV: &str = "EMOEDGE_API_TOKEN";
/// The shortest token accepted: a guessable token is no lock.
const MIN_TOKEN: usize = 16;

/// `run` options that mean nothing to a service, and why.
const REFUSED: [(&str, &str); 4] = [
    ("videos", "streams are [[stream]] tables"),
    ("source", "streams are [[stream]] tables with `source = \"...\"`"),
    ("annotate", "serve writes no video; use `emoedge run --annotate` for an annotated file"),
    ("blur_faces", "serve writes no video, so there is no picture to blur; faces never leave the device"),
];

/// One stream: a name (its MQTT topic level and spool folder) and a URI or a live source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    pub name: String,
    /// A file path or URI (file://, rtsp://, http://).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// A gst-launch description of a live source, e.g. `v4l2src device=/dev/video0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Play a file again from the start at its end, forever.
    #[serde(default, rename = "loop")]
    pub replay: bool,
}

impl StreamSpec {
    /// Checks the name, that exactly one of `uri` and `source` is given, and that a file is there.
    pub fn check(&self) -> anyhow::Result<()> {
        let fine = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        anyhow::ensure!(
            (1..=64).contains(&self.name.len()) && self.name.chars().all(fine),
            "stream name {:?} is not 1 to 64 letters, digits, '-' or '_' (it becomes an MQTT topic level and a folder name)",
            self.name
        );
        match (&self.uri, &self.source) {
            (Some(uri), None) => {
                emoedge_vision::video::to_uri(uri).with_context(|| format!("stream {}", self.name))?;
                Ok(())
            }
            (None, Some(_)) => Ok(()),
            _ => anyhow::bail!("stream {}: give exactly one of `uri` and `source`", self.name),
        }
    }
}

/// The whole file, checked.
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// The API token; writes are refused without one.
    pub token: Option<String>,
    pub max_streams: usize,
    pub streams: Vec<StreamSpec>,
    /// The `run` options, resolved (model, detector and embedder paths found).
    pub run: RunArgs,
    /// The `run` options as written, to tell on a reload which of them changed.
    pub options: toml::Table,
}

/// `emoedge run`'s options, parsed from a config file's keys.
#[derive(Parser)]
#[command(name = "config", no_binary_name = true)]
struct RunOptions {
    #[command(flatten)]
    run: RunArgs,
}

impl ServeConfig {
    /// Reads and checks `path`; any error names the file and the key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new("."))).with_context(|| format!("in {}", path.display()))
    }

    /// Parses a file's text; a relative `token_file` is found beside the file.
    pub fn parse(text: &str, dir: &Path) -> anyhow::Result<Self> {
        let mut table: toml::Table = text.parse()?;
        let listen = match table.remove("listen") {
            None => DEFAULT_LISTEN.to_string(),
            Some(value) => text_of("listen", value)?,
        };
        let listen: SocketAddr =
            listen.parse().map_err(|e| anyhow::anyhow!("listen = {listen:?} is not an address:port ({e})"))?;
        let token = match table.remove("token_file") {
            Some(file) => Some(read_token(&dir.join(text_of("token_file", file)?))?),
            None => std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()).map(check_token).transpose()?,
        };
        let max_streams = match table.remove("max_streams") {
            None => DEFAULT_MAX_STREAMS,
            Some(toml::Value::Integer(n)) if n >= 1 => n as usize,
            Some(other) => anyhow::bail!("max_streams = {other} is not a whole number of at least 1"),
        };
        let streams: Vec<StreamSpec> = match table.remove("stream") {
            None => Vec::new(),
            Some(value) => value.try_into().context("a [[stream]] table")?,
        };
        for (i, stream) in streams.iter().enumerate() {
            stream.check()?;
            anyhow::ensure!(
                !streams[..i].iter().any(|s| s.name == stream.name),
                "two streams are named {}",
                stream.name
            );
        }
        let run = run_options(&table)?;
        Ok(Self { listen, token, max_streams, streams, run, options: table })
    }
}

/// The `run` options of the file's other keys, parsed as `emoedge run` parses its own.
fn run_options(table: &toml::Table) -> anyhow::Result<RunArgs> {
    let known: Vec<String> =
        RunOptions::command().get_arguments().filter_map(|a| a.get_long()).map(|l| l.replace('-', "_")).collect();
    let mut argv = Vec::new();
    for (key, value) in table {
        if let Some((_, why)) = REFUSED.iter().find(|(k, _)| k == key) {
            anyhow::bail!("`{key}` is not a serve key: {why}");
        }
        anyhow::ensure!(
            known.contains(key),
            "unknown key `{key}`: the keys are listen, token_file, max_streams, [[stream]], and the long names of `emoedge run`'s options with '_' for '-' ({})",
            known.join(", ")
        );
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            toml::Value::Boolean(true) => argv.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => argv.extend([flag, s.clone()]),
            toml::Value::Integer(_) | toml::Value::Float(_) => argv.extend([flag, value.to_string()]),
            other => anyhow::bail!("`{key} = {other}`: give a string, number or true/false"),
        }
    }
    // `run` wants a video; a service's streams are its [[stream]] tables.
    argv.push("(streams of the config file)".into());
    let mut run = RunOptions::try_parse_from(&argv)
        .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim().replace('\n', " ")))?
        .run;
    run.resolve_files()?;
    Ok(run)
}

fn text_of(key: &str, value: toml::Value) -> anyhow::Result<String> {
    match value {
        toml::Value::String(s) => Ok(s),
        other => anyhow::bail!("{key} = {other}: give a string"),
    }
}

/// The token in `file`, which only its owner may read.
fn read_token(file: &PathBuf) -> anyhow::Result<String> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read the token file {}", file.display()))?;
    anyhow::ensure!(
        meta.permissions().mode() & 0o077 == 0,
        "the token file {} may be read by others (mode {:o}); `chmod 600` it",
        file.display(),
        meta.permissions().mode() & 0o777
    );
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read the token file {}", file.display()))?;
    check_token(text.trim().to_string()).with_context(|| format!("the token file {}", file.display()))
}

fn check_token(token: String) -> anyhow::Result<String> {
    anyhow::ensure!(
        token.len() >= MIN_TOKEN && token.chars().all(|c| c.is_ascii_graphic()),
        "the API token must be at least {MIN_TOKEN} printable characters without spaces (e.g. `openssl rand -hex 32`)"
    );
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn streams(text: &str) -> anyhow::Result<Vec<StreamSpec>> {
        let mut table: toml::Table = text.parse()?;
        let streams: Vec<StreamSpec> = table.remove("stream").map(|v| v.try_into()).transpose()?.unwrap_or_default();
        streams.iter().try_for_each(StreamSpec::check)?;
        Ok(streams)
    }

    #[test]
    fn streams_need_a_plain_name_and_one_input() {
        let ok = streams("[[stream]]\nname = \"cam-0_a\"\nuri = \"rtsp://cam/1\"\nloop = true\n").unwrap();
        assert!(ok[0].replay);
        for (bad, says) in [
            ("name = \"../x\"\nuri = \"a\"", "not 1 to 64"),
            ("name = \"a/b\"\nuri = \"a\"", "topic level"),
            ("name = \"\"\nuri = \"a\"", "not 1 to 64"),
            ("name = \"a\"", "exactly one"),
            ("name = \"a\"\nuri = \"a\"\nsource = \"b\"", "exactly one"),
            ("name = \"a\"\nurl = \"a\"", "unknown field"),
            ("name = \"a\"\nuri = \"/no/such/video.mp4\"", "stream a"),
        ] {
            let e = format!("{:#}", streams(&format!("[[stream]]\n{bad}\n")).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn run_options_are_checked_as_run_checks_them() {
        let table = |t: &str| t.parse::<toml::Table>().unwrap();
        for (bad, says) in [
            ("detect_interval = 0", "0 is not in 1..="),
            ("colour = 1", "unknown key `colour`"),
            ("annotate = \"a.mp4\"", "serve writes no video"),
            ("blur_faces = true", "no picture to blur"),
            ("reid_window = 5", "--reid"),
            ("window = [1]", "give a string"),
        ] {
            let e = format!("{:#}", run_options(&table(bad)).expect_err(bad));
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_token_that_others_may_read_or_guess_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(format!("{:#}", read_token(&file).unwrap_err()).contains("chmod 600"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&file).unwrap(), "0123456789abcdef0123");
        std::fs::write(&file, "short").unwrap();
        assert!(format!("{:#}", read_token(&file).unwrap_err()).contains("at least 16"));
    }
}
