//! Face augmentation: horizontal flip, a small affine jitter (rotation, scale, shift) through
//! the runtime's own crop sampler, and colour jitter. Each call draws from the caller's RNG.

use emoedge_vision::face::warp_square;
use image::RgbImage;
use rand::RngExt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    pub flip: bool,
    pub max_degrees: f32,
    pub max_scale: f32,
    pub max_shift: f32,
    /// Brightness, contrast and saturation vary by ± this fraction.
    pub colour: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { flip: true, max_degrees: 10.0, max_scale: 0.1, max_shift: 0.06, colour: 0.2 }
    }
}

impl Augment {
    /// The identity: crops pass unchanged.
    pub const NONE: Augment = Augment { flip: false, max_degrees: 0.0, max_scale: 0.0, max_shift: 0.0, colour: 0.0 };

    pub fn apply(&self, crop: &RgbImage, rng: &mut impl RngExt) -> RgbImage {
        if *self == Self::NONE {
            return crop.clone();
        }
        let size = crop.width();
        let s = size as f32;
        let angle = rng.random_range(-self.max_degrees..=self.max_degrees).to_radians();
        let side = s * (1.0 + rng.random_range(-self.max_scale..=self.max_scale));
        let shift = self.max_shift * s;
        let center = (s / 2.0 + rng.random_range(-shift..=shift), s / 2.0 + rng.random_range(-shift..=shift));
        let mut out = warp_square(crop, center, angle, side, size);
        if self.flip && rng.random_bool(0.5) {
            image::imageops::flip_horizontal_in_place(&mut out);
        }
        let brightness = 1.0 + rng.random_range(-self.colour..=self.colour);
        let contrast = 1.0 + rng.random_range(-self.colour..=self.colour);
        let saturation = 1.0 + rng.random_range(-self.colour..=self.colour);
        for pixel in out.pixels_mut() {
            let [r, g, b] = pixel.0.map(|c| c as f32);
            let grey = 0.299 * r + 0.587 * g + 0.114 * b;
            pixel.0 = [r, g, b].map(|c| {
                let c = grey + (c - grey) * saturation;
                let c = 128.0 + (c - 128.0) * contrast;
                (c * brightness).round().clamp(0.0, 255.0) as u8
            });
        }
        out
    }
}
