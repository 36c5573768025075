//! `emoedge serve`: the device service. Streams from a TOML file ([`config`]) run as `run`'s
//! streams do ([`streams`]) on one shared model ([`model`]) until SIGTERM; a local HTTP API
//! ([`api`]) adds and removes streams, swaps the model and serves Prometheus metrics
//! ([`metrics`]); SIGHUP re-reads the file and changes only what changed; systemd hears of it
//! all ([`systemd`]). The main thread turns the event loop: the streams' reports, the watchdog.

mod api;
mod config;
mod metrics;
mod model;
mod streams;
mod systemd;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use emoedge_support::FolderLock;
use emoedge_support::sync::lock;
use sd_notify::NotifyState;

use crate::run::stream::Event;
use config::{ServeConfig, StreamSpec};
use model::{LiveModel, ModelView, Swapped};
use streams::{StreamView, Streams};
use systemd::log;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The service's TOML file: `listen`, `token_file`, `max_streams`, `[[stream]]` tables
    /// (`name`, `uri` or `source`, `loop`) and any `emoedge run` option by its long name with '_'
    /// (`detect_interval = 2`, `publish = "mqtt://…"`, `reid = true`). See the README.
    #[arg(long)]
    pub config: PathBuf,
}

/// The event loop may miss its turn this long before `/healthz` says it is stuck.
const STUCK: Duration = Duration::from_secs(10);

pub struct Service {
    streams: Mutex<Streams>,
    model: Arc<LiveModel>,
    token: Mutex<Option<String>>,
    config: PathBuf,
    /// The file as last accepted, to tell what a reload changes.
    file: Mutex<FileState>,
    started: Instant,
    /// When the event loop last turned, in milliseconds since `started`.
    heartbeat: AtomicU64,
    /// SIGTERM/SIGINT received.
    interrupts: AtomicU32,
    ready: AtomicBool,
}

struct FileState {
    listen: std::net::SocketAddr,
    streams: Vec<StreamSpec>,
    options: toml::Table,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Service {
    pub fn streams(&self) -> MutexGuard<'_, Streams> {
        lock(&self.streams)
    }

    pub fn stream_views(&self) -> Vec<StreamView> {
        self.streams().views()
    }

    pub fn token(&self) -> Option<String> {
        lock(&self.token).clone()
    }

    pub fn stopping(&self) -> bool {
        self.interrupts.load(Ordering::SeqCst) > 0
    }

    /// Swaps the model of every stream (see [`LiveModel::swap`]).
    pub fn swap_model(&self, bundle: &Path) -> anyhow::Result<ModelView> {
        match self.model.swap(bundle) {
            Ok(Swapped::Changed(old, new)) => log(format!("model {old} → {new} ({})", bundle.display())),
            Ok(Swapped::Unchanged(version)) => log(format!("model {version} ({}) is already in use", bundle.display())),
            Err(e) => {
                log(format!("model {} refused: {e:#}; the model in use stays", bundle.display()));
                return Err(e);
            }
        }
        Ok(self.model.view())
    }

    fn beat(&self) {
        self.heartbeat.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Whether the event loop turns.
    pub fn health(&self) -> Result<(), String> {
        let last = Duration::from_millis(self.heartbeat.load(Ordering::Relaxed));
        let quiet = self.started.elapsed().saturating_sub(last);
        if quiet > STUCK {
            return Err(format!("the event loop has not turned for {} s", quiet.as_secs()));
        }
        Ok(())
    }

    /// Whether the service takes work: started, not stopping, and healthy.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(Ordering::SeqCst) {
            return Err("starting".into());
        }
        if self.stopping() {
            return Err("stopping".into());
        }
        self.health()
    }

    /// SIGHUP: re-reads the file and changes what changed — a model swapped, streams started,
    /// stopped or restarted with their new settings; streams added over the API stay. A file
    /// that cannot be read or checked, or whose model cannot be swapped in, changes nothing.
    fn reload(&self) {
        let path = self.config.display();
        let config = match ServeConfig::load(&self.config) {
            Ok(config) => config,
            Err(e) => return log(format!("reload: {path} refused: {e:#}; nothing changed")),
        };
        let mut file = lock(&self.file);
        if file.options.get("model") != config.options.get("model")
            && let Some(bundle) = &config.run.model.model
            && let Err(e) = self.swap_model(bundle)
        {
            return log(format!("reload: {path} refused: {e:#}; nothing changed"));
        }
        let mut later: std::collections::BTreeSet<&str> = config
            .options
            .keys()
            .chain(file.options.keys())
            .filter(|k| *k != "model" && file.options.get(*k) != config.options.get(*k))
            .map(String::as_str)
            .collect();
        later.extend((file.listen != config.listen).then_some("listen"));
        if !later.is_empty() {
            let keys: Vec<&str> = later.into_iter().collect();
            log(format!("reload: {} changed; that takes a restart (systemctl restart emoedge)", keys.join(", ")));
        }
        *lock(&self.token) = config.token.clone();
        let mut streams = self.streams();
        streams.max_streams = config.max_streams;
        for gone in file.streams.iter().filter(|old| !config.streams.iter().any(|s| s.name == old.name)) {
            let _ = streams.remove(&gone.name);
        }
        for spec in config.streams.iter().filter(|s| !file.streams.contains(s)) {
            if let Err(e) = streams.replace(spec.clone()) {
                log(format!("reload: {e}"));
            }
        }
        *file = FileState { listen: config.listen, streams: config.streams, options: config.options };
        log(format!("reload: {path} applied"));
    }
}

pub fn execute(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServeConfig::load(&args.config)?;
    config.run.ort.load_library()?;
    emoedge_vision::video::init()?;
    gstemoedge::plugin_register_static()?;
    // Held to the end: a second service (or run) on this folder would share its spools.
    let _lock = FolderLock::acquire(&config.run.out)
        .with_context(|| format!("cannot use {} as the output folder", config.run.out.display()))?;
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {} (listen in {})", config.listen, args.config.display()))?;
    listener.set_nonblocking(true)?;
    let model = Arc::new(LiveModel::open(&config.run)?);
    let (tx, rx) = std::sync::mpsc::sync_channel(256);
    let latency = metrics::latency_family();
    let run = Arc::new(config.run);
    let grace = Duration::from_secs(u64::from(run.publish.publish_timeout) + 10);
    let service = Arc::new(Service {
        streams: Mutex::new(Streams::new(
            Arc::clone(&run),
            Arc::clone(&model),
            config.max_streams,
            tx,
            latency.clone(),
        )),
        model,
        token: Mutex::new(config.token),
        config: args.config.clone(),
        file: Mutex::new(FileState { listen: config.listen, streams: config.streams.clone(), options: config.options }),
        started: Instant::now(),
        heartbeat: AtomicU64::new(0),
        interrupts: AtomicU32::new(0),
        ready: AtomicBool::new(false),
    });
    for spec in config.streams {
        service.streams().add(spec)?;
    }
    let app =
        Arc::new(api::App { service: Arc::clone(&service), metrics: metrics::registry(Arc::clone(&service), latency) });
    serve_http(listener, app)?;
    if run.publish.publish.is_none() {
        log("no `publish` broker: results are counted in the metrics, not kept");
    }
    log(format!(
        "listening on http://{}, {} streams, model {}",
        config.listen,
        service.streams().active(),
        service.model.view().version
    ));
    service.ready.store(true, Ordering::SeqCst);
    systemd::notify(NotifyState::Ready);
    let mut watchdog = systemd::Watchdog::from_env();
    while !service.stopping() {
        turn(&service, &rx, &mut watchdog);
    }
    shut_down(&service, &rx, &mut watchdog, grace)
}

/// One turn of the event loop: a stream's report, or 100 ms without one.
fn turn(service: &Service, rx: &Receiver<(usize, Event)>, watchdog: &mut systemd::Watchdog) {
    service.beat();
    watchdog.tick();
    let event = rx.recv_timeout(Duration::from_millis(100));
    let mut streams = service.streams();
    if let Ok((id, event)) = event {
        streams.on_event(id, event);
    }
    // Publishers closing in the background free their streams' names when done.
    streams.reap();
}

/// SIGTERM: every stream ends as `run`'s do (end-of-stream through its elements), then each
/// publisher gets its flush timeout for the broker to acknowledge what is queued.
fn shut_down(
    service: &Service,
    rx: &Receiver<(usize, Event)>,
    watchdog: &mut systemd::Watchdog,
    grace: Duration,
) -> anyhow::Result<()> {
    systemd::notify(NotifyState::Stopping);
    log("stopping: ending the streams and flushing their results (again to quit at once)");
    service.streams().stop_all();
    let since = Instant::now();
    while service.streams().active() > 0 && since.elapsed() < grace {
        turn(service, rx, watchdog);
    }
    let left = service.streams().active();
    anyhow::ensure!(left == 0, "{left} streams did not stop within {} s of SIGTERM", grace.as_secs());
    log("stopped");
    Ok(())
}

/// Serves the API and waits for signals on a thread of its own (a current-thread tokio
/// runtime): SIGTERM/SIGINT stop the service (a second quits at once), SIGHUP reloads its file.
fn serve_http(listener: std::net::TcpListener, app: Arc<api::App>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Signals are caught from here on, before systemd hears READY.
    let (mut term, mut int, mut hup) = {
        let _inside = runtime.enter();
        (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?, signal(SignalKind::hangup())?)
    };
    let listener = {
        let _inside = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    std::thread::Builder::new().name("api".into()).spawn(move || {
        runtime.block_on(async move {
            let service = Arc::clone(&app.service);
            let router = api::router(app);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    log(format!("the HTTP API stopped: {e}"));
                }
            });
            loop {
                tokio::select! {
                    _ = term.recv() => interrupt(&service),
                    _ = int.recv() => interrupt(&service),
                    _ = hup.recv() => {
                        let service = Arc::clone(&service);
                        if !service.stopping() {
                            let _ = tokio::task::spawn_blocking(move || service.reload()).await;
                        }
                    }
                }
            }
        })
    })?;
    Ok(())
}

fn interrupt(service: &Service) {
    if service.interrupts.fetch_add(1, Ordering::SeqCst) >= 1 {
        log("second interrupt: quitting at once");
        std::process::exit(130);
    }
}
