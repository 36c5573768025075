//! The detector's image preparation without waste: SIMD resizing (`fast_image_resize`: SSE4.1/AVX2
//! here, NEON on a Jetson) into buffers that live as long as the detector, and the networks'
//! transposed, normalised input written in one pass.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

/// Bilinear convolution: the antialiased "triangle" filter, as the original MTCNN's area-like
/// downscaling needs (a pyramid level is up to 3× smaller than the frame).
const FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::Bilinear);

/// A resizer and the scratch buffers it fills, reused frame after frame.
#[derive(Default)]
pub struct Resampler {
    resizer: Resizer,
    /// A box that reaches outside the image, padded with black before resizing.
    patch: Vec<u8>,
    /// The latest resized image (a pyramid level or a crop).
    resized: Vec<u8>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler").finish_non_exhaustive()
    }
}

impl Resampler {
    /// `image` resized to `w`×`h`, written as the networks' `[W, H, 3]` input into `out`
    /// (`w·h·3` values).
    pub fn level(&mut self, image: &RgbImage, w: u32, h: u32, out: &mut [f32]) -> Result<(), String> {
        let src =
            ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
        self.resize_into(&src, None, w, h)?;
        transpose_normalised(&self.resized, w as usize, h as usize, out);
        Ok(())
    }

    /// The box `b` (inclusive pixel corners, 1-based as in the original MTCNN) with black outside
    /// the image, resized to `side`×`side` and written as network input into `out`.
    pub fn box_crop(&mut self, image: &RgbImage, b: &[f32; 4], side: u32, out: &mut [f32]) -> Result<(), String> {
        let (x0, y0) = (b[0] as i64 - 1, b[1] as i64 - 1);
        let (w, h) = ((b[2] - b[0] + 1.0) as i64, (b[3] - b[1] + 1.0) as i64);
        let (iw, ih) = (i64::from(image.width()), i64::from(image.height()));
        if w <= 0 || h <= 0 {
            return Err(format!("an empty box {b:?}"));
        }
        if x0 >= 0 && y0 >= 0 && x0 + w <= iw && y0 + h <= ih {
            // Inside the image: resize straight from the frame, no copy.
            let src = ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3)
                .map_err(|e| e.to_string())?;
            self.resize_into(&src, Some([x0, y0, w, h].map(|v| v as f64)), side, side)?;
        } else {
            // Partly outside: copy the rows' inside parts into a black patch first.
            let (pw, ph) = (w as usize, h as usize);
            self.patch.clear();
            self.patch.resize(pw * ph * 3, 0);
            let (left, right) = (x0.max(0), (x0 + w).min(iw));
            for py in 0..h {
                let sy = y0 + py;
                if sy < 0 || sy >= ih || left >= right {
                    continue;
                }
                let row = &image.as_raw()[(sy * iw) as usize * 3..][..iw as usize * 3];
                let dst = (py as usize * pw + (left - x0) as usize) * 3;
                let len = (right - left) as usize * 3;
                self.patch[dst..dst + len].copy_from_slice(&row[left as usize * 3..][..len]);
            }
            let patch = std::mem::take(&mut self.patch);
            let result = ImageRef::new(pw as u32, ph as u32, &patch, PixelType::U8x3)
                .map_err(|e| e.to_string())
                .and_then(|src| self.resize_into(&src, None, side, side));
            self.patch = patch;
            result?;
        }
        transpose_normalised(&self.resized, side as usize, side as usize, out);
        Ok(())
    }

    /// `image` scaled to fit `side`×`side` (aspect kept, centred, black around it), written as
    /// `[side, side, 3]` pixel values 0–255 into `out`. Returns how: `(scale, left, top)`, so
    /// a point `p` of the square is `(p − (left, top)) / scale` in the image.
    pub fn letterbox(&mut self, image: &RgbImage, side: u32, out: &mut [f32]) -> Result<(f32, u32, u32), String> {
        let (w, h) = (image.width(), image.height());
        let scale = side as f32 / w.max(h) as f32;
        let (sw, sh) =
            (((w as f32 * scale).round() as u32).clamp(1, side), ((h as f32 * scale).round() as u32).clamp(1, side));
        let (left, top) = ((side - sw) / 2, (side - sh) / 2);
        let src = ImageRef::new(w, h, image.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
        self.resize_into(&src, None, sw, sh)?;
        out.fill(0.0);
        let row = side as usize * 3;
        for (y, pixels) in self.resized.chunks_exact(sw as usize * 3).enumerate() {
            let start = (top as usize + y) * row + left as usize * 3;
            for (o, &p) in out[start..start + pixels.len()].iter_mut().zip(pixels) {
                *o = f32::from(p);
            }
        }
        Ok((scale, left, top))
    }

    fn resize_into(&mut self, src: &ImageRef, crop: Option<[f64; 4]>, w: u32, h: u32) -> Result<(), String> {
        let mut options = ResizeOptions::new().resize_alg(FILTER);
        if let Some([left, top, width, height]) = crop {
            options = options.crop(left, top, width, height);
        }
        let mut resized = std::mem::take(&mut self.resized);
        resized.clear();
        resized.resize(w as usize * h as usize * 3, 0);
        let result = Image::from_slice_u8(w, h, &mut resized, PixelType::U8x3)
            .map_err(|e| e.to_string())
            .and_then(|mut dst| self.resizer.resize(src, &mut dst, &options).map_err(|e| e.to_string()));
        self.resized = resized;
        result
    }
}

/// Packed RGB rows of a `w`×`h` image as `[W, H, 3]` (x before y: the networks were converted
/// from Caffe weights that read images transposed), normalised as `(p − 127.5) / 128`.
fn transpose_normalised(rgb: &[u8], w: usize, h: usize, out: &mut [f32]) {
    for (y, row) in rgb.chunks_exact(w * 3).take(h).enumerate() {
        for (x, pixel) in row.chunks_exact(3).enumerate() {
            let at = (x * h + y) * 3;
            for (o, &p) in out[at..at + 3].iter_mut().zip(pixel) {
                *o = (f32::from(p) - 127.5) * 0.0078125;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_outside_the_image_is_black_there_and_the_image_inside() {
        let image = RgbImage::from_pixel(4, 4, image::Rgb([255, 255, 255]));
        let mut resampler = Resampler::default();
        let mut out = vec![0.0; 4 * 4 * 3];
        // Corners 1-based inclusive: x from -1 to 2 → the left two columns lie outside.
        resampler.box_crop(&image, &[-1.0, 1.0, 2.0, 4.0], 4, &mut out).unwrap();
        let white = (255.0 - 127.5) * 0.0078125;
        let black = -127.5 * 0.0078125;
        // [W, H, 3]: x = 0 is the first H·3 values.
        assert!((out[0] - black).abs() < 1e-6, "outside → black, got {}", out[0]);
        assert!((out[3 * 4 * 3] - white).abs() < 1e-6, "inside → white, got {}", out[3 * 4 * 3]);
    }

    #[test]
    fn a_letterbox_keeps_the_aspect_and_centres_the_image_on_black() {
        let image = RgbImage::from_pixel(8, 4, image::Rgb([200, 100, 50]));
        let mut out = vec![1.0; 4 * 4 * 3];
        let (scale, left, top) = Resampler::default().letterbox(&image, 4, &mut out).unwrap();
        assert_eq!((scale, left, top), (0.5, 0, 1));
        let pixel = |x: usize, y: usize| &out[(y * 4 + x) * 3..][..3];
        assert_eq!(pixel(0, 0), [0.0; 3], "the band above is black");
        assert_eq!(pixel(3, 2), [200.0, 100.0, 50.0], "the image keeps its values 0–255");
        assert_eq!(pixel(3, 3), [0.0; 3], "and the band below");
    }

    #[test]
    fn the_input_is_transposed_x_before_y() {
        // 2 wide, 1 high: red then green.
        let rgb = [255, 0, 0, 0, 255, 0];
        let mut out = [0.0; 6];
        transpose_normalised(&rgb, 2, 1, &mut out);
        assert!(out[0] > 0.9 && out[4] > 0.9, "{out:?}");
    }
}
