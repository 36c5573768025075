//! Video input with GStreamer: any file or URI `uridecodebin` can play, or a live source
//! description (`v4l2src device=/dev/video0`, `videotestsrc is-live=true`), converted to raw
//! video, optionally through more elements (the `emotiondetect` element for `emoedge run`),
//! into an appsink. One pull loop serves every reader: it reports the pipeline's errors, tells
//! a complete file from a truncated one, and gives up on a file that stalls.

mod convert;
mod encode;

pub use convert::{FORMATS, Frame, refill, to_frame};
pub use encode::mpeg4_encoder;

use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("GStreamer is not usable: {0}; install it with scripts/setup (Debian: gstreamer1.0-plugins-base/good)")]
    Init(String),
    #[error("video file {0} does not exist; check the path")]
    Missing(String),
    #[error(
        "{0} is not a regular file (a FIFO, device or folder would block or never end); give a video file, or a live source with --source"
    )]
    NotAFile(String),
    #[error("cannot build the source `{input}`: {message}; check the element names and properties")]
    Source { input: String, message: String },
    #[error(
        "cannot decode {input}: {message}; is it a complete video file of a format GStreamer can \
         decode here (plugins-good, libav)?"
    )]
    Decode { input: String, message: String },
    #[error(
        "live source {input} failed: {message}; check that the camera or server is reachable \
         (emoedge run --reconnect-interval keeps trying)"
    )]
    Live { input: String, message: String },
    #[error(
        "{input} ends early: frames stop at {decoded_s:.2} s of its {duration_s:.2} s; the file is \
         truncated or damaged — fetch it again or re-encode it"
    )]
    Truncated { input: String, decoded_s: f64, duration_s: f64 },
    /// An error of one of the filters (its own message names the problem and the fix).
    #[error("{element}: {message}")]
    Filter { element: String, message: String },
}

/// When a file counts as stalled: no frame, error or end of stream for this long. Before the
/// first frame the pipeline may be building TensorRT engines for the shapes it meets (minutes
/// on a Jetson, once per engine cache), which `first_frame` allows for. Live sources never
/// stall: they may wait for a camera as long as they like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub first_frame: Duration,
    pub between_frames: Duration,
}

impl Stall {
    /// A damaged file (seen: a cut-off MOV whose index is missing) leaves the demuxer waiting
    /// without an error; real files yield a frame well within this.
    const BETWEEN_FRAMES: Duration = Duration::from_secs(15);

    /// Decoding only.
    pub const DECODE: Stall = Stall { first_frame: Self::BETWEEN_FRAMES, between_frames: Self::BETWEEN_FRAMES };
    /// Inference on TensorRT in the pipeline.
    pub const ENGINE_BUILD: Stall =
        Stall { first_frame: Duration::from_secs(20 * 60), between_frames: Self::BETWEEN_FRAMES };
}

/// How to build a [`VideoSource`].
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// The raw format the appsink receives.
    pub format: gst_video::VideoFormat,
    /// Elements between the conversion and the appsink, linked in order.
    pub filters: Vec<gst::Element>,
    pub stall: Stall,
    /// Release frames at their own times, as a camera would (`clocksync` after the decoder),
    /// instead of as fast as they decode.
    pub paced: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self { format: gst_video::VideoFormat::Rgb, filters: Vec::new(), stall: Stall::DECODE, paced: false }
    }
}

/// How long ago `pts` (in `segment`) entered `element`'s pipeline: the running time of its
/// clock now minus the buffer's — for a live or paced source, since its capture. `None`
/// without a clock or a timestamp, or for a buffer not due yet (a file read ahead).
pub fn age(element: &gst::Element, segment: &gst::Segment, pts: Option<gst::ClockTime>) -> Option<Duration> {
    let now = element.clock()?.time().checked_sub(element.base_time()?)?;
    let running = segment.downcast_ref::<gst::ClockTime>()?.to_running_time(pts?)?;
    now.checked_sub(running).map(|age| Duration::from_nanos(age.nseconds()))
}

/// What one poll of the appsink gave.
pub enum Pulled {
    Sample(gst::Sample),
    /// The end of the stream, after checking that a file was complete.
    End,
    /// Nothing within 100 ms; poll again (callers check for Ctrl-C meanwhile).
    Idle,
}

pub struct VideoSource {
    input: String,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    next_index: u64,
    /// End time of the last frame seen, to tell a complete file from a truncated one.
    last_end_ns: Option<u64>,
    /// Files have a known length to check the decoded stream against and can stall; live
    /// sources do not.
    is_file: bool,
    stall: Stall,
    last_progress: Instant,
    filters: Vec<gst::Element>,
    /// Ended early on purpose ([`VideoSource::stop`]): a short stream is expected.
    stopped: bool,
}

/// Initialises GStreamer, with the fix named when it cannot.
pub fn init() -> Result<(), VideoError> {
    gst::init().map_err(|e| VideoError::Init(e.to_string()))
}

/// Whether `input` (a path or a URI) is a live source, which may end or drop at any time and
/// be opened again: anything that is not a file.
pub fn is_live(input: &str) -> bool {
    input.contains("://") && !input.starts_with("file://")
}

/// The URI of a file path, or `input` itself when it is already a URI; a file (by path or
/// `file://`) must be a regular file: a FIFO or a device would block the pipeline's start, where
/// nothing can interrupt it.
pub fn to_uri(input: &str) -> Result<String, VideoError> {
    if input.contains("://") {
        if input.starts_with("file://") {
            let (path, _) = gst::glib::filename_from_uri(input)
                .map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?;
            regular_file(&path, input)?;
        }
        return Ok(input.to_string());
    }
    let path = Path::new(input);
    regular_file(path, input)?;
    let absolute = path.canonicalize().map_err(|_| VideoError::Missing(input.to_string()))?;
    Ok(gst::glib::filename_to_uri(&absolute, None)
        .map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?
        .to_string())
}

/// Checks that `path` (from `input`) is a regular file, following links.
fn regular_file(path: &Path, input: &str) -> Result<(), VideoError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(VideoError::NotAFile(input.to_string())),
        Err(_) => Err(VideoError::Missing(input.to_string())),
    }
}

impl VideoSource {
    /// Opens a file path or a URI (`file:///…`, `rtsp://…`) as RGB frames.
    pub fn open(input: &str) -> Result<Self, VideoError> {
        Self::open_with(input, SourceOptions::default())
    }

    /// Opens a file path or a URI through `options`' filters. The URI is set as a property,
    /// never pasted into a pipeline description.
    pub fn open_with(input: &str, options: SourceOptions) -> Result<Self, VideoError> {
        init()?;
        let uri = to_uri(input)?;
        let source = make("uridecodebin", input)?;
        source.set_property("uri", &uri);
        let is_file = !is_live(&uri);
        Self::build(input, source, options, is_file)
    }

    /// Opens a live or synthetic source given as a gst-launch description of its source part
    /// (the user's own pipeline syntax, e.g. `v4l2src device=/dev/video0`).
    pub fn from_description(description: &str) -> Result<Self, VideoError> {
        Self::from_description_with(description, SourceOptions::default())
    }

    /// Like [`Self::from_description`], through `options`' filters.
    pub fn from_description_with(description: &str, options: SourceOptions) -> Result<Self, VideoError> {
        init()?;
        let source_error = |message: String| VideoError::Source { input: description.into(), message };
        // Only the output is ghosted, by hand: gst-parse's own ghosting of unlinked pads would
        // also take the sink pad of an element waiting for a demuxer's pad (`qtdemux ! h264parse`),
        // which then can never link.
        let bin = gst::parse::bin_from_description(description, false).map_err(|e| source_error(e.to_string()))?;
        let output = bin.find_unlinked_pad(gst::PadDirection::Src).ok_or_else(|| {
            source_error("it has no free output; end it with the element whose video emoedge should read".into())
        })?;
        let ghost = gst::GhostPad::with_target(&output).map_err(|e| source_error(e.to_string()))?;
        bin.add_pad(&ghost).map_err(|e| source_error(e.to_string()))?;
        Self::build(description, bin.upcast(), options, false)
    }

    fn build(input: &str, source: gst::Element, options: SourceOptions, is_file: bool) -> Result<Self, VideoError> {
        let source_error = |message: String| VideoError::Source { input: input.into(), message };
        let pipeline = gst::Pipeline::new();
        let convert = make("videoconvert", input)?;
        let caps = gst_video::VideoCapsBuilder::new().format(options.format).build();
        let raw = gst::ElementFactory::make("capsfilter")
            .property("caps", &caps)
            .build()
            .map_err(|e| source_error(e.to_string()))?;
        // Decoding and colour conversion run ahead of the filters (inference) in their own
        // thread, a few frames at most: the two stages overlap instead of taking turns.
        let ahead = gst::ElementFactory::make("queue")
            .property("max-size-buffers", 4u32)
            .property("max-size-bytes", 0u32)
            .property("max-size-time", 0u64)
            .build()
            .map_err(|e| source_error(e.to_string()))?;
        let sink = gst_app::AppSink::builder().max_buffers(4).sync(false).build();
        let pace = if options.paced { Some(make("clocksync", input)?) } else { None };
        let chain: Vec<&gst::Element> =
            pace.iter().chain([&convert, &raw, &ahead]).chain(&options.filters).chain([sink.upcast_ref()]).collect();
        let first = chain[0].clone();
        pipeline.add(&source).map_err(|e| source_error(e.to_string()))?;
        pipeline.add_many(chain.iter().copied()).map_err(|e| source_error(e.to_string()))?;
        gst::Element::link_many(chain.iter().copied()).map_err(|e| source_error(e.to_string()))?;
        if source.static_pad("src").is_some() {
            source.link(&first).map_err(|e| source_error(e.to_string()))?;
        } else {
            // Decoders expose their pads once they know the stream: link the first video pad.
            let first_weak = first.downgrade();
            source.connect_pad_added(move |_, pad| {
                let Some(sink_pad) = first_weak.upgrade().and_then(|c| c.static_pad("sink")) else { return };
                let is_video = pad
                    .current_caps()
                    .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("video/")))
                    .unwrap_or(false);
                if is_video && !sink_pad.is_linked() {
                    let _ = pad.link(&sink_pad);
                }
            });
        }
        let source = Self {
            input: input.to_string(),
            pipeline,
            sink,
            next_index: 0,
            last_end_ns: None,
            is_file,
            stall: options.stall,
            last_progress: Instant::now(),
            filters: options.filters.clone(),
            stopped: false,
        };
        if source.pipeline.set_state(gst::State::Playing).is_err() {
            return Err(source.pipeline_error().unwrap_or_else(|| VideoError::Decode {
                input: input.into(),
                message: "the pipeline refused to start".into(),
            }));
        }
        Ok(source)
    }

    /// The pipeline (to send it events or query it).
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.pipeline
    }

    /// How long ago `sample` entered the pipeline (see [`age`]).
    pub fn age(&self, sample: &gst::Sample) -> Option<Duration> {
        let pts = sample.buffer().and_then(|b| b.pts());
        age(self.pipeline.upcast_ref(), sample.segment()?, pts)
    }

    /// Changes when the stream counts as stalled (e.g. once the pipeline knows it runs TensorRT).
    pub fn set_stall(&mut self, stall: Stall) {
        self.stall = stall;
    }

    /// Whether the input is a file (finite, checked for completeness).
    pub fn is_file(&self) -> bool {
        self.is_file
    }

    /// Ends the stream early and cleanly (Ctrl-C): an end-of-stream event flows through the
    /// filters, so everything before it is finished; the shortened file is not an error.
    ///
    /// The event is sent from a GStreamer worker thread, not from the caller: a source takes
    /// its stream lock to accept it, and that lock is held while the source waits for room
    /// downstream, which only the caller (pulling frames) makes. Keep pulling until the end.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.pipeline.call_async(|pipeline| {
            if pipeline.send_event(gst::event::Eos::new()) {
                return;
            }
            // A pipeline only reaches the sources it holds directly: those inside a
            // `--source` description's bin get the end-of-stream themselves.
            for element in pipeline.iterate_recurse().into_iter().flatten() {
                if element.sink_pads().is_empty() && !element.is::<gst::Bin>() {
                    element.send_event(gst::event::Eos::new());
                }
            }
        });
    }

    /// One poll of the appsink: a sample, the (checked) end, or nothing yet; the pipeline's
    /// error or a stall as an error.
    pub fn poll(&mut self) -> Result<Pulled, VideoError> {
        if let Some(error) = self.pipeline_error() {
            return Err(error);
        }
        if let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            self.last_progress = Instant::now();
            if let Some(buffer) = sample.buffer()
                && let Some(pts) = buffer.pts()
            {
                self.last_end_ns = Some(pts.nseconds() + buffer.duration().map_or(0, |d| d.nseconds()));
            }
            self.next_index += 1;
            return Ok(Pulled::Sample(sample));
        }
        if self.sink.is_eos() {
            return match self.pipeline_error() {
                Some(error) => Err(error),
                None => self.check_complete().map(|()| Pulled::End),
            };
        }
        let limit = if self.next_index == 0 { self.stall.first_frame } else { self.stall.between_frames };
        if self.is_file && self.last_progress.elapsed() > limit {
            return Err(VideoError::Decode {
                input: self.input.clone(),
                message: format!(
                    "decoding stalled: no frame, error or end of stream for {} s; the file is damaged",
                    limit.as_secs()
                ),
            });
        }
        Ok(Pulled::Idle)
    }

    /// The next sample, `Ok(None)` at the end of the stream, or the pipeline's error.
    pub fn next_sample(&mut self) -> Result<Option<gst::Sample>, VideoError> {
        loop {
            match self.poll()? {
                Pulled::Sample(sample) => return Ok(Some(sample)),
                Pulled::End => return Ok(None),
                Pulled::Idle => {}
            }
        }
    }

    /// The next frame as packed RGB, `Ok(None)` at the end of the stream, or the pipeline's error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let mut frame = Frame::default();
        Ok(self.next_frame_into(&mut frame)?.then_some(frame))
    }

    /// Like [`Self::next_frame`], into `frame`, whose pixel buffer is reused: a loop over a
    /// stream of one size allocates no image per frame. `Ok(false)` at the end of the stream.
    pub fn next_frame_into(&mut self, frame: &mut Frame) -> Result<bool, VideoError> {
        let Some(sample) = self.next_sample()? else { return Ok(false) };
        let decode = |message: String| VideoError::Decode { input: self.input.clone(), message };
        let caps = sample.caps().ok_or_else(|| decode("a frame without caps".into()))?;
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| decode(e.to_string()))?;
        let buffer = sample.buffer().ok_or_else(|| decode("a sample without a buffer".into()))?;
        refill(frame, buffer, &info, self.next_index - 1).map_err(decode)?;
        Ok(true)
    }

    /// Frames in the stream, estimated from duration and frame rate when both are known.
    pub fn estimated_frames(&self) -> Option<u64> {
        let duration = self.pipeline.query_duration::<gst::ClockTime>()?;
        let caps = self.sink.static_pad("sink")?.current_caps()?;
        let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
        let fps = info.fps();
        if fps.numer() <= 0 || fps.denom() <= 0 {
            return None;
        }
        Some(duration.nseconds() * fps.numer() as u64 / (fps.denom() as u64 * 1_000_000_000))
    }

    /// At the end of a file: its video stream must have been decoded to (nearly) its stated
    /// length. Demuxers often end a cut-off file quietly, which would pass for a short video.
    fn check_complete(&self) -> Result<(), VideoError> {
        if !self.is_file || self.stopped {
            return Ok(());
        }
        let Some(pad) = self.sink.static_pad("sink") else { return Ok(()) };
        let Some(duration) = pad.peer_query_duration::<gst::ClockTime>() else { return Ok(()) };
        let duration_ns = duration.nseconds();
        let decoded_ns = self.last_end_ns.unwrap_or(0);
        let missing_ns = duration_ns.saturating_sub(decoded_ns);
        if missing_ns > 1_000_000_000 && missing_ns * 20 > duration_ns {
            return Err(VideoError::Truncated {
                input: self.input.clone(),
                decoded_s: decoded_ns as f64 / 1e9,
                duration_s: duration_ns as f64 / 1e9,
            });
        }
        Ok(())
    }

    /// The pipeline's warnings since the last call, each as `element: message` (they would
    /// otherwise only pile up on the bus).
    pub fn warnings(&self) -> Vec<String> {
        let Some(bus) = self.pipeline.bus() else { return Vec::new() };
        std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
            .filter_map(|message| match message.view() {
                gst::MessageView::Warning(w) => Some(format!(
                    "{}: {}",
                    message.src().map_or_else(|| "pipeline".into(), |s| s.name().to_string()),
                    w.error()
                )),
                _ => None,
            })
            .collect()
    }

    fn pipeline_error(&self) -> Option<VideoError> {
        let bus = self.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error])?;
        let gst::MessageView::Error(err) = message.view() else { return None };
        let detail = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
        if let Some(filter) = self.filters.iter().find(|f| message.src() == Some(f.upcast_ref::<gst::Object>())) {
            // Our elements put the whole story in the message; others may keep it in the debug text.
            let text = err.error().to_string();
            let message =
                if detail.contains(&text) || err.debug().is_none() { text } else { format!("{text}{detail}") };
            return Some(VideoError::Filter { element: filter.name().to_string(), message });
        }
        let (input, message) = (self.input.clone(), format!("{}{detail}", err.error()));
        Some(if self.is_file { VideoError::Decode { input, message } } else { VideoError::Live { input, message } })
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn make(factory: &str, input: &str) -> Result<gst::Element, VideoError> {
    gst::ElementFactory::make(factory).build().map_err(|_| VideoError::Source {
        input: input.into(),
        message: format!("GStreamer element `{factory}` is missing; run scripts/setup to install the plugins"),
    })
}

#[cfg(test)]
mod tests {
    //! Fuzzing (proptest) of how a command-line input becomes a URI: any file name, however
    //! hostile (quotes, `!`, `#`, `%`, spaces, newlines: what once reached a pipeline
    //! description), names exactly that file; anything else is one clear error.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use proptest::prelude::*;

    /// File names: printable text with the characters that mean something to gst-launch,
    /// URIs and shells, never `/` (a folder) or NUL.
    fn file_name() -> impl Strategy<Value = String> {
        "[^/\u{0}]{1,40}".prop_filter("not . or ..", |n| n != "." && n != "..")
    }

    proptest! {
        #![proptest_config(emoedge_tests::fuzz::config(2000))]

        #[test]
        fn any_file_name_becomes_a_uri_of_exactly_that_file(name in file_name()) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(&name);
            std::fs::write(&path, b"x").unwrap();
            let uri = to_uri(path.to_str().unwrap()).unwrap();
            let (back, _) = gst::glib::filename_from_uri(&uri).unwrap();
            prop_assert_eq!(back, path.canonicalize().unwrap());
            prop_assert!(uri.is_ascii() && !uri.contains(['"', ' ', '\n']), "{}", uri);
        }

        #[test]
        fn input_that_is_neither_a_file_nor_a_uri_is_one_clear_error(input in "[^:]{0,60}") {
            prop_assume!(!Path::new(&input).is_file());
            match to_uri(&input) {
                Err(VideoError::Missing(shown)) => prop_assert_eq!(shown, input),
                Err(VideoError::NotAFile(shown)) if Path::new(&input).exists() => prop_assert_eq!(shown, input),
                other => prop_assert!(false, "{:?}", other.map(|_| ())),
            }
        }
    }

    #[test]
    fn a_fifo_or_a_device_is_refused_by_path_and_by_file_uri_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("camera.mp4");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let uri = gst::glib::filename_to_uri(&fifo, None).unwrap().to_string();
        for input in [fifo.to_str().unwrap(), uri.as_str(), "file:///dev/zero", "/dev/zero"] {
            match to_uri(input) {
                Err(e @ VideoError::NotAFile(_)) => assert!(e.to_string().contains("not a regular file"), "{e}"),
                other => panic!("{input}: {:?}", other.map(|_| ())),
            }
        }
    }
}
