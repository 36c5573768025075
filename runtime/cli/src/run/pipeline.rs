//! The elements each opening of a stream runs its frames through, set from the arguments with
//! typed properties (no text is parsed into a pipeline).

use std::path::Path;
use std::sync::Arc;

use gstreamer as gst;

use super::args::{PublishArgs, RunArgs};
use super::stream::{Filters, MakeFilters};
use crate::args::MqttArgs;

/// The filters of stream `stream` (its `emotiondetect`, and its `emotionpublish` when publishing).
pub fn filters(args: Arc<RunArgs>, stream: String) -> Arc<MakeFilters> {
    Arc::new(move |first_track| {
        let detect = emotiondetect(&args, &stream, first_track, args.model.model.as_deref())?;
        let publish = emotionpublish(&args.publish, &args.out, &stream)?;
        Ok(Filters { detect, publish })
    })
}

/// Stream `stream`'s `emotiondetect` on `model`, its track ids starting at `first_track`.
pub fn emotiondetect(
    args: &RunArgs,
    stream: &str,
    first_track: u64,
    model: Option<&Path>,
) -> anyhow::Result<gst::Element> {
    let session = args.ort.session_options();
    let mut detect = gst::ElementFactory::make("emotiondetect")
        .name(format!("detect-{stream}"))
        .property("track-id-base", first_track)
        .property("precision", args.precision)
        .property("execution-provider", session.provider)
        .property("device-id", session.device_id)
        .property("interval", args.interval)
        .property("detect-interval", args.detect_interval)
        .property("smoothing", f64::from(args.smoothing))
        .property("window", args.window)
        .property("face-source", args.face_source)
        .property("detector", args.detector.detector)
        .property("async", args.asynchronous)
        .property("reid", args.reid.reid)
        .property("reid-window", args.reid.reid_window)
        .property("reid-threshold", f64::from(args.reid.reid_threshold));
    if let Some(model) = model {
        detect = detect.property("model", model.display().to_string());
    }
    if let Some(dir) = &args.detector.detector_dir {
        detect = detect.property("detector-dir", dir.display().to_string());
    }
    if let Some(dir) = &args.reid.embedder {
        detect = detect.property("embedder-dir", dir.display().to_string());
    }
    if let Some(file) = &args.reid.gallery {
        detect = detect.property("reid-gallery", file.display().to_string());
    }
    if let Some(dir) = &session.tensorrt.engine_cache_dir {
        detect = detect.property("engine-cache-dir", dir.display().to_string());
    }
    Ok(detect.build()?)
}

/// Stream `stream`'s `emotionpublish`, spooling under `out`, if asked for.
pub fn emotionpublish(args: &PublishArgs, out: &Path, stream: &str) -> anyhow::Result<Option<gst::Element>> {
    let Some(url) = &args.publish else { return Ok(None) };
    let mut publish = gst::ElementFactory::make("emotionpublish")
        .name(format!("publish-{stream}"))
        .property("broker", url)
        .property("stream-id", stream)
        .property("spool-dir", PublishArgs::spool_dir(out, stream).display().to_string())
        .property("spool-limit", args.spool_limit)
        .property("flush-timeout", args.publish_timeout);
    if let Some(user) = &args.mqtt.mqtt_user {
        publish = publish.property("username", user);
    }
    if let Some(password) = MqttArgs::password() {
        publish = publish.property("password", password);
    }
    if let Some(ca) = &args.mqtt.mqtt_ca {
        publish = publish.property("ca-file", ca.display().to_string());
    }
    if let Some(device) = &args.device_name {
        publish = publish.property("device-id", device);
    }
    Ok(Some(publish.build()?))
}
