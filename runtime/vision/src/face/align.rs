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
    aligned_crop_reusing(image, face, crop, Vec::new())
}

/// [`aligned_crop`] into `buffer` (an earlier crop's pixels, of any size): a stream's crops
/// reuse their buffers instead of allocating one per face and frame.
pub fn aligned_crop_reusing(image: &RgbImage, face: &Face, crop: AlignedCrop, buffer: Vec<u8>) -> RgbImage {
    let [left_eye, right_eye] = [face.landmarks[0], face.landmarks[1]];
    let angle = (right_eye[1] - left_eye[1]).atan2(right_eye[0] - left_eye[0]);
    let side = face.bbox.width().max(face.bbox.height()) * (1.0 + crop.margin);
    warp_square(image, face.bbox.center(), angle, side, crop.size, buffer)
}

/// The square of side `side` (source pixels) centred on `center` and rotated by `angle`
/// (radians), sampled bilinearly to `size`×`size`; black outside the image. Augmentation uses
/// it too, so training-time affine jitter and inference crops share one sampler. The output's
/// pixels go into `buffer` (reused whatever its length; `Vec::new()` for a fresh one).
pub fn warp_square(
    image: &RgbImage,
    center: (f32, f32),
    angle: f32,
    side: f32,
    size: u32,
    buffer: Vec<u8>,
) -> RgbImage {
    let (cos, sin) = (angle.cos(), angle.sin());
    let scale = side / size as f32;
    let half = size as f32 / 2.0;
    // Output pixel (u, v) → offset from the crop centre in source pixels, rotated into the image.
    let (a, b, c, d) = (scale * cos, -scale * sin, scale * sin, scale * cos);
    let (cx, cy) = (center.0 - half * (a + b), center.1 - half * (c + d));
    warp_affine(image, [a, b, cx, c, d, cy], size, buffer)
}

/// The image sampled bilinearly at `x = m0·u + m1·v + m2`, `y = m3·u + m4·v + m5` for each pixel
/// centre `(u, v)` of a `size`×`size` output; black outside the image. The output's pixels go
/// into `buffer`, whatever it held: every byte is written.
///
/// Runs once per face and frame, so it is written for SIMD: each row is sampled in groups of
/// [`LANES`] pixels whose coordinates, weights and mixes are computed lane by lane over
/// fixed-size arrays (the compiler's vector code: SSE2 on x86-64's baseline target, NEON on a
/// Jetson); only the four neighbours' reads stay one pixel at a time (a gather). No libm calls
/// (`floorf`/`roundf` are calls on x86-64's baseline target). The values are those of the plain
/// formula, bit for bit (tested against it below): the same operations in the same order. A
/// 64×64 crop (`cargo run --release -p emoedge-vision --example crop_timing`, old and new build
/// in turn, a slow hour): 161–171 µs one pixel at a time, 103–160 µs in groups of 16 (8: 181 µs,
/// slower; 32: 150 µs).
pub fn warp_affine(image: &RgbImage, m: [f32; 6], size: u32, mut buffer: Vec<u8>) -> RgbImage {
    let side = size as usize;
    buffer.resize(side * side * 3, 0);
    let sampler = Sampler { pixels: image.as_raw(), w: image.width() as i64, h: image.height() as i64, m };
    for (v, row) in buffer.chunks_exact_mut(3 * side).enumerate() {
        for (group, texels) in row.chunks_mut(3 * LANES).enumerate() {
            sampler.group(v as f32 + 0.5, group * LANES, texels);
        }
    }
    // `buffer` holds exactly size²·3 bytes, so this is never the (empty) default.
    RgbImage::from_raw(size, size, buffer).unwrap_or_default()
}

/// Output pixels sampled together by [`warp_affine`]: the fastest group size measured (see there).
const LANES: usize = 16;

/// One image under one affine map.
struct Sampler<'a> {
    pixels: &'a [u8],
    w: i64,
    h: i64,
    m: [f32; 6],
}

impl Sampler<'_> {
    /// Where output pixel centre `(uc, vc)` samples the image (pixel centres at integers).
    fn source(&self, uc: f32, vc: f32) -> (f32, f32) {
        let m = &self.m;
        (m[0] * uc + m[1] * vc + m[2] - 0.5, m[3] * uc + m[4] * vc + m[5] - 0.5)
    }

    /// The pixels `u0..` of the row at centre `vc` (`texels`: up to [`LANES`] RGB pixels).
    fn group(&self, vc: f32, u0: usize, texels: &mut [u8]) {
        let (mut x, mut y) = ([0f32; LANES], [0f32; LANES]);
        for lane in 0..LANES {
            (x[lane], y[lane]) = self.source((u0 + lane) as f32 + 0.5, vc);
        }
        // All four neighbours inside ⟺ 0 ≤ x < w − 1 and 0 ≤ y < h − 1 (then trunc = floor).
        let (last_x, last_y) = ((self.w - 1) as f32, (self.h - 1) as f32);
        let inside: [bool; LANES] =
            std::array::from_fn(|l| x[l] >= 0.0 && y[l] >= 0.0 && x[l] < last_x && y[l] < last_y);
        let n = texels.len() / 3;
        if inside[..n].iter().all(|&i| i) {
            let (x0, y0) = (x.map(|x| x as i32), y.map(|y| y as i32));
            let fx: [f32; LANES] = std::array::from_fn(|l| x[l] - x0[l] as f32);
            let fy: [f32; LANES] = std::array::from_fn(|l| y[l] - y0[l] as f32);
            // The 2×2 neighbours' 12 bytes per lane: [above left, above right, below left, below right] × RGB.
            let mut corners = [[0f32; LANES]; 12];
            for lane in 0..n {
                let top = 3 * (y0[lane] as usize * self.w as usize + x0[lane] as usize);
                let bottom = top + 3 * self.w as usize;
                for k in 0..6 {
                    corners[k][lane] = f32::from(self.pixels[top + k]);
                    corners[6 + k][lane] = f32::from(self.pixels[bottom + k]);
                }
            }
            for c in 0..3 {
                let [a, b, d, e] = [corners[c], corners[3 + c], corners[6 + c], corners[9 + c]];
                let mixed: [u8; LANES] = std::array::from_fn(|l| mix([a[l], b[l], d[l], e[l]], fx[l], fy[l]));
                for (texel, value) in texels.chunks_exact_mut(3).zip(mixed) {
                    texel[c] = value;
                }
            }
        } else {
            for (lane, texel) in texels.chunks_exact_mut(3).enumerate() {
                texel.copy_from_slice(&self.edge_pixel(x[lane], y[lane]));
            }
        }
    }

    /// The sample at `(x, y)` near or beyond the image's edge: neighbours outside are black.
    fn edge_pixel(&self, x: f32, y: f32) -> [u8; 3] {
        let (x0, y0) = (floor(x), floor(y));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let at = |px: i64, py: i64| {
            (px >= 0 && py >= 0 && px < self.w && py < self.h).then(|| 3 * (py * self.w + px) as usize)
        };
        let corners = [at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1)];
        std::array::from_fn(|c| mix(corners.map(|i| i.map_or(0.0, |i| f32::from(self.pixels[i + c]))), fx, fy))
    }
}

/// Bilinear mix of the corners `[top left, top right, bottom left, bottom right]`, rounded.
fn mix([a, b, c, d]: [f32; 4], fx: f32, fy: f32) -> u8 {
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    round_to_u8(top + (bottom - top) * fy)
}

/// `x.floor()` as an integer, without a libm call.
fn floor(x: f32) -> i64 {
    let t = x as i64;
    if (t as f32) > x { t - 1 } else { t }
}

/// `x.round().clamp(0.0, 255.0) as u8` for `x > −0.5` (a bilinear mix of bytes), without a
/// libm call: the fraction `x − trunc(x)` of a float is exact.
fn round_to_u8(x: f32) -> u8 {
    let t = x as i32;
    let rounded = if x - t as f32 >= 0.5 { t + 1 } else { t };
    rounded.clamp(0, 255) as u8
}

/// The `side`×`side` face-recognition crop of `face`: the similarity transform (rotation,
/// uniform scale, shift) that best carries its landmarks onto `template` (where the embedder
/// was trained to see the eyes, nose and mouth corners, as fractions of the side; least
/// squares), applied by sampling.
pub fn identity_crop(image: &RgbImage, face: &Face, template: &[[f32; 2]; 5], side: u32) -> RgbImage {
    let k = side as f32;
    let dst: Vec<[f32; 2]> = template.iter().map(|p| [p[0] * k, p[1] * k]).collect();
    let mean = |pts: &[[f32; 2]]| {
        let n = pts.len() as f32;
        pts.iter().fold([0.0, 0.0], |m, p| [m[0] + p[0] / n, m[1] + p[1] / n])
    };
    let (ms, md) = (mean(&face.landmarks), mean(&dst));
    // Output → source: source = s·R·(out − md) + ms, fitted on centred points.
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in face.landmarks.iter().zip(&dst) {
        let (px, py, qx, qy) = (p[0] - ms[0], p[1] - ms[1], q[0] - md[0], q[1] - md[1]);
        dot += qx * px + qy * py;
        cross += qx * py - qy * px;
        norm += qx * qx + qy * qy;
    }
    let (a, c) = (dot / norm.max(f32::EPSILON), cross / norm.max(f32::EPSILON));
    let m = [a, -c, ms[0] - a * md[0] + c * md[1], c, a, ms[1] - c * md[0] - a * md[1]];
    warp_affine(image, m, side, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The sampler as first written (`image`'s `get_pixel`, `floor`, `round`): the definition
    /// the fast one must match.
    fn plain_warp(image: &RgbImage, m: [f32; 6], size: u32) -> RgbImage {
        let (w, h) = (image.width() as i64, image.height() as i64);
        RgbImage::from_fn(size, size, |u, v| {
            let (uc, vc) = (u as f32 + 0.5, v as f32 + 0.5);
            let (x, y) = (m[0] * uc + m[1] * vc + m[2] - 0.5, m[3] * uc + m[4] * vc + m[5] - 0.5);
            let (x0, y0) = (x.floor() as i64, y.floor() as i64);
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let pixel = |px: i64, py: i64| -> [f32; 3] {
                if px < 0 || py < 0 || px >= w || py >= h {
                    [0.0; 3]
                } else {
                    image.get_pixel(px as u32, py as u32).0.map(f32::from)
                }
            };
            let (a, b, c, d) = (pixel(x0, y0), pixel(x0 + 1, y0), pixel(x0, y0 + 1), pixel(x0 + 1, y0 + 1));
            image::Rgb(std::array::from_fn(|i| {
                let top = a[i] + (b[i] - a[i]) * fx;
                let bottom = c[i] + (d[i] - c[i]) * fx;
                (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8
            }))
        })
    }

    proptest! {
        #[test]
        fn the_sampler_gives_the_plain_formulas_bytes_inside_across_and_outside_the_image_into_any_buffer(
            seed in any::<u64>(), angle in -3.2f32..3.2, scale in 0.05f32..4.0,
            cx in -40.0f32..80.0, cy in -40.0f32..70.0, size in 1u32..40, stale in 0usize..6000,
        ) {
            let image = RgbImage::from_fn(37, 29, |x, y| {
                let k = seed ^ (u64::from(x) * 0x9E37_79B9 + u64::from(y) * 0x85EB_CA6B);
                image::Rgb([k as u8, (k >> 8) as u8, (k >> 16) as u8])
            });
            let (cos, sin) = (angle.cos() * scale, angle.sin() * scale);
            let m = [cos, -sin, cx, sin, cos, cy];
            // Into an earlier crop's buffer of another length, full of bytes that must not show.
            let reused = vec![0xA5; stale];
            prop_assert_eq!(warp_affine(&image, m, size, reused), plain_warp(&image, m, size));
        }
    }
}
