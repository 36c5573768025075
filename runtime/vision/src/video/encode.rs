//! The MPEG-4 Part 2 encoder that annotated videos (and the benchmarks' clips) are written
//! with: `avenc_mpeg4`, the one video encoder in Debian's base/good/libav plugin sets.
//!
//! gst-libav 1.22.0 (Debian 12) stamps every `avenc_mpeg4` output buffer with the same bogus
//! time (about 2,562,047 hours): `mp4mux` then squeezes all frames into the first frame's
//! duration (a player shows one frame) or fails with "Buffer has no PTS". Without B-frames the
//! encoder emits one buffer per input frame, in order, with the input's time as both
//! presentation and decoding time, so the input times are queued on its sink pad and written
//! onto its output buffers: right on every GStreamer version.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use emoedge_support::sync::lock;
use gstreamer as gst;
use gstreamer::prelude::*;

/// An `avenc_mpeg4` at `bitrate` bits/s without B-frames whose output carries the input's
/// timestamps. Fails when gstreamer1.0-libav is not installed.
pub fn mpeg4_encoder(bitrate: i32) -> Result<gst::Element, glib::BoolError> {
    let encoder = gst::ElementFactory::make("avenc_mpeg4").property("bitrate", bitrate).build()?;
    encoder.set_property("max-bframes", 0i32);
    let queued: Arc<Mutex<VecDeque<Option<gst::ClockTime>>>> = Arc::default();
    let sink = encoder.static_pad("sink").ok_or_else(|| glib::bool_error!("avenc_mpeg4 has no sink pad"))?;
    let src = encoder.static_pad("src").ok_or_else(|| glib::bool_error!("avenc_mpeg4 has no src pad"))?;
    // Running times: the encoder's output segment need not be its input's (the video encoder
    // base class may shift it, e.g. by 1000 hours for negative decoding times).
    let inputs = Arc::clone(&queued);
    sink.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if let Some(buffer) = info.buffer() {
            let running = time_segment(pad).and_then(|s| s.to_running_time(buffer.pts()));
            lock(&inputs).push_back(running);
        }
        gst::PadProbeReturn::Ok
    });
    src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let running = lock(&queued).pop_front().flatten();
        let pts = running.and_then(|r| time_segment(pad)?.position_from_running_time(r));
        if let Some(buffer) = info.buffer_mut() {
            let buffer = buffer.make_mut();
            buffer.set_pts(pts);
            buffer.set_dts(pts);
        }
        gst::PadProbeReturn::Ok
    });
    Ok(encoder)
}

/// The time segment `pad` carries (its sticky segment event).
fn time_segment(pad: &gst::Pad) -> Option<gst::FormattedSegment<gst::ClockTime>> {
    let event = pad.sticky_event::<gst::event::Segment>(0)?;
    event.segment().downcast_ref::<gst::ClockTime>().cloned()
}
