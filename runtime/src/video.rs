//! Video input with GStreamer: any file or URI `uridecodebin` can play, or a live source
//! description (`v4l2src device=/dev/video0`, `videotestsrc is-live=true`), decoded to RGB
//! frames with their timestamps. End of stream and pipeline errors come back as results.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use image::RgbImage;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("GStreamer is not usable: {0}; install it with scripts/setup (Debian: gstreamer1.0-plugins-base/good)")]
    Init(String),
    #[error("video file {0} does not exist; check the path")]
    Missing(String),
    #[error("cannot build the source `{input}`: {message}; check the element names and properties")]
    Source { input: String, message: String },
    #[error(
        "cannot decode {input}: {message}; is it a complete video file of a format GStreamer can \
         decode here (plugins-good, libav)?"
    )]
    Decode { input: String, message: String },
    #[error(
        "{input} ends early: frames stop at {decoded_s:.2} s of its {duration_s:.2} s; the file is \
         truncated or damaged — fetch it again or re-encode it"
    )]
    Truncated { input: String, decoded_s: f64, duration_s: f64 },
}

/// One decoded frame.
pub struct Frame {
    /// 0-based position in the stream.
    pub index: u64,
    /// Presentation timestamp in nanoseconds, when the stream has one.
    pub pts_ns: Option<u64>,
    pub image: RgbImage,
}

pub struct VideoSource {
    input: String,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    next_index: u64,
    /// End time of the last frame seen, to tell a complete file from a truncated one.
    last_end_ns: Option<u64>,
    /// Files have a known length to check the decoded stream against; live sources do not.
    is_file: bool,
}

/// A file that yields no frame, error or end for this long is damaged in a way the demuxer
/// does not report (seen with a cut-off MOV whose index is missing).
const FILE_STALL: std::time::Duration = std::time::Duration::from_secs(10);

fn init() -> Result<(), VideoError> {
    gst::init().map_err(|e| VideoError::Init(e.to_string()))
}

impl VideoSource {
    /// Opens a file path or a URI (`file:///…`, `rtsp://…`, `v4l2:///dev/video0`).
    pub fn open(input: &str) -> Result<Self, VideoError> {
        init()?;
        let uri = if input.contains("://") {
            input.to_string()
        } else {
            let path = Path::new(input);
            if !path.is_file() {
                return Err(VideoError::Missing(input.to_string()));
            }
            let absolute = path.canonicalize().map_err(|_| VideoError::Missing(input.to_string()))?;
            gst::glib::filename_to_uri(&absolute, None)
                .map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?
                .to_string()
        };
        let source = make("uridecodebin", input)?;
        source.set_property("uri", &uri);
        let mut video = Self::build(input, source)?;
        video.is_file = uri.starts_with("file://");
        Ok(video)
    }

    /// Opens a live or synthetic source given as a gst-launch description of its source part.
    pub fn from_description(description: &str) -> Result<Self, VideoError> {
        init()?;
        let bin = gst::parse::bin_from_description(description, true)
            .map_err(|e| VideoError::Source { input: description.into(), message: e.to_string() })?;
        Self::build(description, bin.upcast())
    }

    fn build(input: &str, source: gst::Element) -> Result<Self, VideoError> {
        let pipeline = gst::Pipeline::new();
        let convert = make("videoconvert", input)?;
        let caps = gst_video::VideoCapsBuilder::new().format(gst_video::VideoFormat::Rgb).build();
        let sink = gst_app::AppSink::builder().caps(&caps).max_buffers(4).sync(false).build();
        pipeline
            .add_many([&source, &convert, sink.upcast_ref()])
            .map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?;
        convert.link(&sink).map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?;
        if source.static_pad("src").is_some() {
            source.link(&convert).map_err(|e| VideoError::Source { input: input.into(), message: e.to_string() })?;
        } else {
            // Decoders expose their pads once they know the stream: link the first video pad.
            let convert_weak = convert.downgrade();
            source.connect_pad_added(move |_, pad| {
                let Some(convert) = convert_weak.upgrade() else { return };
                let is_video = pad
                    .current_caps()
                    .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("video/")))
                    .unwrap_or(false);
                let sink_pad = convert.static_pad("sink").expect("videoconvert has a sink pad");
                if is_video && !sink_pad.is_linked() {
                    let _ = pad.link(&sink_pad);
                }
            });
        }
        let source =
            Self { input: input.to_string(), pipeline, sink, next_index: 0, last_end_ns: None, is_file: false };
        if source.pipeline.set_state(gst::State::Playing).is_err() {
            return Err(source.pipeline_error().unwrap_or_else(|| VideoError::Decode {
                input: input.into(),
                message: "the pipeline refused to start".into(),
            }));
        }
        Ok(source)
    }

    /// The next frame, `Ok(None)` at the end of the stream, or the pipeline's error.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let waiting_since = std::time::Instant::now();
        loop {
            if let Some(error) = self.pipeline_error() {
                return Err(error);
            }
            if let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                let frame = self.to_frame(&sample)?;
                return Ok(Some(frame));
            }
            if self.sink.is_eos() {
                return match self.pipeline_error() {
                    Some(error) => Err(error),
                    None => self.check_complete().map(|()| None),
                };
            }
            if self.is_file && waiting_since.elapsed() > FILE_STALL {
                return Err(VideoError::Decode {
                    input: self.input.clone(),
                    message: format!(
                        "decoding stalled: no frame, error or end of stream for {} s; the file is damaged",
                        FILE_STALL.as_secs()
                    ),
                });
            }
        }
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
        if !self.is_file {
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

    fn to_frame(&mut self, sample: &gst::Sample) -> Result<Frame, VideoError> {
        let decode = |message: String| VideoError::Decode { input: self.input.clone(), message };
        let caps = sample.caps().ok_or_else(|| decode("a frame without caps".into()))?;
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| decode(e.to_string()))?;
        let buffer = sample.buffer().ok_or_else(|| decode("a sample without a buffer".into()))?;
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(|e| decode(e.to_string()))?;
        let (width, height) = (info.width() as usize, info.height() as usize);
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).map_err(|e| decode(e.to_string()))?;
        let mut packed = Vec::with_capacity(width * height * 3);
        for row in data.chunks(stride).take(height) {
            packed.extend_from_slice(&row[..width * 3]);
        }
        let image = RgbImage::from_raw(width as u32, height as u32, packed)
            .ok_or_else(|| decode("frame size does not match its caps".into()))?;
        let index = self.next_index;
        self.next_index += 1;
        if let Some(pts) = buffer.pts() {
            self.last_end_ns = Some(pts.nseconds() + buffer.duration().map_or(0, |d| d.nseconds()));
        }
        Ok(Frame { index, pts_ns: buffer.pts().map(|t| t.nseconds()), image })
    }

    fn pipeline_error(&self) -> Option<VideoError> {
        let bus = self.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error])?;
        let gst::MessageView::Error(err) = message.view() else { return None };
        let detail = err.debug().map(|d| format!(" ({d})")).unwrap_or_default();
        Some(VideoError::Decode { input: self.input.clone(), message: format!("{}{detail}", err.error()) })
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
