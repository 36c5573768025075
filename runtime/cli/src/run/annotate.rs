//! `emoedge run --annotate`: the frames with each face's box, track and emotion drawn in,
//! encoded to MP4 through a second pipeline (appsrc → MPEG-4 → mp4mux), written to a temp file
//! and renamed when complete.

use std::path::Path;

use anyhow::Context;
use emoedge_publish::EmotionRecord;
use emoedge_support::AtomicFile;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use plotters::backend::BGRXPixel;
use plotters::prelude::*;

use gstemoedge::meta::FACE;

pub struct Annotator {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    info: gst_video::VideoInfo,
    file: AtomicFile,
    /// Pixelate every face (`--blur-faces`).
    blur: bool,
}

impl Annotator {
    pub fn start(path: &Path, caps: &gst::CapsRef, blur: bool) -> anyhow::Result<Self> {
        emoedge_plot::ensure_font()?;
        let info = gst_video::VideoInfo::from_caps(caps).context("annotation needs raw video caps")?;
        anyhow::ensure!(info.format() == gst_video::VideoFormat::Bgrx, "annotation draws on BGRx frames");
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = AtomicFile::create(path).with_context(|| format!("cannot write beside {}", path.display()))?;
        let make = |factory: &str| {
            gst::ElementFactory::make(factory).build().with_context(|| {
                format!(
                    "GStreamer element `{factory}` is missing (annotation needs gstreamer1.0-libav); run scripts/setup"
                )
            })
        };
        let src = gst_app::AppSrc::builder().caps(&caps.to_owned()).format(gst::Format::Time).build();
        let encoder = emoedge_vision::video::mpeg4_encoder(4_000_000).map_err(|e| {
            anyhow::anyhow!(
                "GStreamer's MPEG-4 encoder is unusable ({e}; annotation needs gstreamer1.0-libav); run scripts/setup"
            )
        })?;
        let sink = make("filesink")?;
        sink.set_property("location", file.temp_path());
        let chain = [src.upcast_ref(), &make("videoconvert")?, &encoder, &make("mp4mux")?, &sink];
        let pipeline = gst::Pipeline::new();
        pipeline.add_many(chain)?;
        gst::Element::link_many(chain)?;
        pipeline.set_state(gst::State::Playing).context("cannot start the annotation pipeline")?;
        Ok(Self { pipeline, src, info, file, blur })
    }

    /// Draws `records` onto a copy of `buffer` and encodes it.
    pub fn push(&mut self, buffer: &gst::BufferRef, records: &[EmotionRecord]) -> anyhow::Result<()> {
        let (w, h) = (self.info.width(), self.info.height());
        let stride = self.info.stride()[0] as usize;
        let map = buffer.map_readable()?;
        // plotters draws on packed rows; copy the frame without row padding, draw, copy back.
        let mut packed: Vec<u8> =
            map.chunks(stride).take(h as usize).flat_map(|row| row[..w as usize * 4].iter().copied()).collect();
        if self.blur {
            // Every face the element found, with a result yet or not.
            for meta in buffer.iter_meta::<gst_video::VideoRegionOfInterestMeta>().filter(|m| m.roi_type() == FACE) {
                pixelate(&mut packed, (w, h), meta.rect());
            }
        }
        {
            let root = BitMapBackend::<BGRXPixel>::with_buffer_and_format(&mut packed, (w, h))?.into_drawing_area();
            for r in records {
                let [x, y, bw, bh] = r.bbox.map(|v| v.max(0.0) as i32);
                let colour = Palette99::pick(r.track as usize);
                root.draw(&Rectangle::new([(x, y), (x + bw, y + bh)], colour.stroke_width(3)))?;
                let text = format!("#{} {} {:.0}%", r.track, r.label, r.confidence * 100.0);
                root.draw(&Text::new(text, (x, (y - 22).max(0)), ("sans-serif", 20).into_font().color(&colour)))?;
            }
            root.present()?;
        }
        let mut out = gst::Buffer::with_size(map.size())?;
        {
            let out_mut = out.get_mut().context("new buffer is writable")?;
            out_mut.set_pts(buffer.pts());
            out_mut.set_duration(buffer.duration());
            let mut data = out_mut.map_writable()?;
            for (row, src) in data.chunks_mut(stride).zip(packed.chunks(w as usize * 4)) {
                row[..src.len()].copy_from_slice(src);
            }
        }
        self.src.push_buffer(out).map_err(|e| anyhow::anyhow!("annotation encoder stopped: {e:?}"))?;
        Ok(())
    }

    /// Ends the stream, waits for the MP4 to be finished and moves it into place.
    pub fn finish(self) -> anyhow::Result<()> {
        self.src.end_of_stream().map_err(|e| anyhow::anyhow!("annotation encoder stopped: {e:?}"))?;
        let bus = self.pipeline.bus().context("pipeline without a bus")?;
        let message =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &[gst::MessageType::Eos, gst::MessageType::Error]);
        let _ = self.pipeline.set_state(gst::State::Null);
        match message.as_ref().map(|m| m.view()) {
            // Unfinished, the temp file is removed when `self.file` drops.
            Some(gst::MessageView::Eos(_)) => Ok(self.file.commit().context("cannot write the annotated video")?),
            Some(gst::MessageView::Error(e)) => anyhow::bail!("annotation encoding failed: {}", e.error()),
            _ => anyhow::bail!("annotation encoding did not finish within 60 s"),
        }
    }
}

/// Replaces the face box `(x, y, w, h)` of a packed BGRx frame of `size` (and a sixth of its
/// side around it, for hair and ears) by blocks of their mean colour, an eighth of the face
/// wide: nothing of the face can be recognised, its place and size stay visible.
fn pixelate(frame: &mut [u8], (width, height): (u32, u32), (x, y, w, h): (u32, u32, u32, u32)) {
    let grow = w.max(h) / 6;
    let (x0, y0) = (x.saturating_sub(grow), y.saturating_sub(grow));
    let (x1, y1) = ((x + w + grow).min(width), (y + h + grow).min(height));
    let block = (w.max(h) / 8).max(4);
    for by in (y0..y1).step_by(block as usize) {
        for bx in (x0..x1).step_by(block as usize) {
            let (ex, ey) = ((bx + block).min(x1), (by + block).min(y1));
            let pixels = || (by..ey).flat_map(move |py| (bx..ex).map(move |px| ((py * width + px) * 4) as usize));
            let mut sum = [0u64; 3];
            for i in pixels() {
                (0..3).for_each(|c| sum[c] += u64::from(frame[i + c]));
            }
            let n = u64::from((ex - bx) * (ey - by)).max(1);
            for i in pixels() {
                (0..3).for_each(|c| frame[i + c] = (sum[c] / n) as u8);
            }
        }
    }
}
