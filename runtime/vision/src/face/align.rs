//! The model's input crop: square, margin-padded, rotated so the eyes are level, resized to S×S.

use image::RgbImage;

use super::Face;

/// How crops are cut; one definition for training data and inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignedCrop {
    /// Output side S.
    pub size: u32,
    /// Extra context around the face box, as a fraction of its longer side.
    pub margin: f32,
}

impl AlignedCrop {
    /// The model's crop at side `size`, with the margin the model's preprocessing defines.
    pub fn new(size: u32) -> Self {
        Self { size, margin: emoedge_models::Preprocessing::default().crop_margin }
    }
}

/// Cuts `face` out of `image`: the square of side `max(w, h)·(1 + margin)` around the box
/// centre, rotated by the eye line's angle, bilinearly sampled to `size`×`size`. Pixels outside
/// the image are black.
pub fn aligned_crop(image: &RgbImage, face: &Face, crop: AlignedCrop) -> RgbImage {
    let [left_eye, right_eye] = [face.landmarks[0], face.landmarks[1]];
    let angle = (right_eye[1] - left_eye[1]).atan2(right_eye[0] - left_eye[0]);
    let side = face.bbox.width().max(face.bbox.height()) * (1.0 + crop.margin);
    warp_square(image, face.bbox.center(), angle, side, crop.size)
}

/// The square of side `side` (source pixels) centred on `center` and rotated by `angle`
/// (radians), sampled bilinearly to `size`×`size`; black outside the image. Augmentation uses
/// it too, so training-time affine jitter and inference crops share one sampler.
pub fn warp_square(image: &RgbImage, center: (f32, f32), angle: f32, side: f32, size: u32) -> RgbImage {
    let (cos, sin) = (angle.cos(), angle.sin());
    let (cx, cy) = center;
    let scale = side / size as f32;
    let half = size as f32 / 2.0;
    let mut out = RgbImage::new(size, size);
    for v in 0..size {
        for u in 0..size {
            // Offset from the crop centre in source pixels, then rotated into the image.
            let du = (u as f32 + 0.5 - half) * scale;
            let dv = (v as f32 + 0.5 - half) * scale;
            let x = cx + du * cos - dv * sin;
            let y = cy + du * sin + dv * cos;
            out.put_pixel(u, v, image::Rgb(bilinear(image, x - 0.5, y - 0.5)));
        }
    }
    out
}

fn bilinear(image: &RgbImage, x: f32, y: f32) -> [u8; 3] {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let pixel = |px: i64, py: i64| -> [f32; 3] {
        if px < 0 || py < 0 || px >= w || py >= h {
            [0.0; 3]
        } else {
            let p = image.get_pixel(px as u32, py as u32).0;
            [p[0] as f32, p[1] as f32, p[2] as f32]
        }
    };
    let (a, b, c, d) = (pixel(x0, y0), pixel(x0 + 1, y0), pixel(x0, y0 + 1), pixel(x0 + 1, y0 + 1));
    std::array::from_fn(|i| {
        let top = a[i] + (b[i] - a[i]) * fx;
        let bottom = c[i] + (d[i] - c[i]) * fx;
        (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8
    })
}
