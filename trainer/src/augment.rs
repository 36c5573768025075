//! Face augmentation: horizontal flip, a small affine jitter (rotation, scale, shift) through
//! the runtime's own crop sampler, and colour jitter. [`Augment::draw`] draws one [`Jitter`] from
//! the caller's RNG; the batcher applies it to every frame of a clip.

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

    /// Draws one jitter; applying it to every frame of a clip moves the clip as one, so the
    /// clip part sees the face's own motion, not noise that differs frame to frame.
    pub fn draw(&self, rng: &mut impl RngExt) -> Jitter {
        if *self == Self::NONE {
            return Jitter::IDENTITY;
        }
        let shift = self.max_shift;
        Jitter {
            angle: rng.random_range(-self.max_degrees..=self.max_degrees).to_radians(),
            scale: 1.0 + rng.random_range(-self.max_scale..=self.max_scale),
            shift: [rng.random_range(-shift..=shift), rng.random_range(-shift..=shift)],
            flip: self.flip && rng.random_bool(0.5),
            brightness: 1.0 + rng.random_range(-self.colour..=self.colour),
            contrast: 1.0 + rng.random_range(-self.colour..=self.colour),
            saturation: 1.0 + rng.random_range(-self.colour..=self.colour),
        }
    }
}

/// One drawn augmentation: the geometry as fractions of the crop's side, the colour as factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jitter {
    pub angle: f32,
    pub scale: f32,
    pub shift: [f32; 2],
    pub flip: bool,
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
}

impl Jitter {
    pub const IDENTITY: Jitter = Jitter {
        angle: 0.0,
        scale: 1.0,
        shift: [0.0; 2],
        flip: false,
        brightness: 1.0,
        contrast: 1.0,
        saturation: 1.0,
    };

    pub fn apply(&self, crop: &RgbImage) -> RgbImage {
        if *self == Self::IDENTITY {
            return crop.clone();
        }
        let size = crop.width();
        let s = size as f32;
        let center = (s * (0.5 + self.shift[0]), s * (0.5 + self.shift[1]));
        let mut out = warp_square(crop, center, self.angle, s * self.scale, size, Vec::new());
        if self.flip {
            image::imageops::flip_horizontal_in_place(&mut out);
        }
        for pixel in out.pixels_mut() {
            let [r, g, b] = pixel.0.map(|c| c as f32);
            let grey = 0.299 * r + 0.587 * g + 0.114 * b;
            pixel.0 = [r, g, b].map(|c| {
                let c = grey + (c - grey) * self.saturation;
                let c = 128.0 + (c - 128.0) * self.contrast;
                (c * self.brightness).round().clamp(0.0, 255.0) as u8
            });
        }
        out
    }
}
