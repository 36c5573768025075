//! Raw video buffers as packed RGB frames: the one conversion the element and the video source
//! both use, for every 3- and 4-byte RGB/BGR layout they negotiate.

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use image::RgbImage;

/// One decoded frame.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// 0-based position in the stream.
    pub index: u64,
    /// Presentation timestamp in nanoseconds, when the stream has one.
    pub pts_ns: Option<u64>,
    pub image: RgbImage,
}

/// The formats [`to_frame`] reads: what the element's pads accept.
pub const FORMATS: [gst_video::VideoFormat; 6] = {
    use gst_video::VideoFormat::*;
    [Rgb, Bgr, Rgba, Bgra, Rgbx, Bgrx]
};

/// Bytes per pixel and where R, G and B sit in it.
fn layout(format: gst_video::VideoFormat) -> Option<(usize, [usize; 3])> {
    use gst_video::VideoFormat::*;
    match format {
        Rgb => Some((3, [0, 1, 2])),
        Bgr => Some((3, [2, 1, 0])),
        Rgba | Rgbx => Some((4, [0, 1, 2])),
        Bgra | Bgrx => Some((4, [2, 1, 0])),
        _ => None,
    }
}

/// Frame `index` of a stream from `buffer` laid out as `info` says, as packed RGB.
pub fn to_frame(buffer: &gst::BufferRef, info: &gst_video::VideoInfo, index: u64) -> Result<Frame, String> {
    let mut frame = Frame::default();
    refill(&mut frame, buffer, info, index)?;
    Ok(frame)
}

/// Like [`to_frame`], into `frame`: its pixel buffer is reused, so a stream of one size
/// allocates nothing per frame.
pub fn refill(
    frame: &mut Frame,
    buffer: &gst::BufferRef,
    info: &gst_video::VideoInfo,
    index: u64,
) -> Result<(), String> {
    let (bytes, order) =
        layout(info.format()).ok_or_else(|| format!("unsupported video format {:?}", info.format()))?;
    let mapped = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
        .map_err(|e| format!("cannot map the frame: {e}"))?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let data = mapped.plane_data(0).map_err(|e| format!("cannot read the frame: {e}"))?;
    let stride = usize::try_from(mapped.plane_stride()[0]).map_err(|_| "a negative row stride".to_string())?;
    if stride < w * bytes || data.len() < stride * h.saturating_sub(1) + w * bytes {
        return Err(format!("a {w}×{h} frame of {} bytes with rows of {stride}", data.len()));
    }
    let mut rgb = std::mem::take(&mut frame.image).into_raw();
    rgb.resize(w * h * 3, 0);
    for (row, out) in data.chunks(stride).zip(rgb.chunks_exact_mut(w * 3)) {
        if bytes == 3 && order == [0, 1, 2] {
            out.copy_from_slice(&row[..w * 3]);
        } else {
            // Fixed-size chunks on both sides: the compiler unrolls and vectorises the shuffle.
            for (pixel, dst) in row[..w * bytes].chunks_exact(bytes).zip(out.chunks_exact_mut(3)) {
                dst[0] = pixel[order[0]];
                dst[1] = pixel[order[1]];
                dst[2] = pixel[order[2]];
            }
        }
    }
    frame.image = RgbImage::from_raw(w as u32, h as u32, rgb).ok_or("frame smaller than its caps")?;
    (frame.index, frame.pts_ns) = (index, buffer.pts().map(|t| t.nseconds()));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A 4×2 BGRx buffer whose pixel (x, y) is (x, y, seed) in RGB.
    fn bgrx(seed: u8) -> (gst::Buffer, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Bgrx, 4, 2).build().unwrap();
        let stride = info.stride()[0] as usize;
        let mut bytes = vec![0u8; info.size()];
        for y in 0..2 {
            for x in 0..4 {
                bytes[y * stride + x * 4..][..3].copy_from_slice(&[seed, y as u8, x as u8]);
            }
        }
        (gst::Buffer::from_mut_slice(bytes), info)
    }

    #[test]
    fn refill_converts_into_the_frame_it_was_given_without_a_new_buffer() {
        let (first, info) = bgrx(7);
        let mut frame = to_frame(&first, &info, 0).unwrap();
        assert_eq!(frame.image.get_pixel(3, 1).0, [3, 1, 7]);
        let pixels = frame.image.as_ptr();
        let (second, _) = bgrx(9);
        refill(&mut frame, &second, &info, 1).unwrap();
        assert_eq!((frame.index, frame.image.get_pixel(2, 0).0), (1, [2, 0, 9]));
        assert_eq!(frame.image.as_ptr(), pixels, "the same pixel buffer, refilled");
    }
}
