//! What one aligned crop costs (issue 26): the model's 64×64 crop of a face in a 640×360 frame,
//! cut 20,000 times into a recycled buffer as a stream does, three rounds.
//!
//! ```text
//! cargo run --release -p emoedge-vision --example crop_timing
//! ```
//! Compare builds by running two copies of the binary in turn: this machine's speed moves by
//! more than the change between rounds.

use std::time::Instant;

use emoedge_vision::face::warp_square;
use image::RgbImage;

fn main() {
    let frame = RgbImage::from_fn(640, 360, |x, y| image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x + y * 3) as u8]));
    let (crops, mut buffer, mut checksum) = (20_000u32, Vec::new(), 0u64);
    for round in 1..=3 {
        let start = Instant::now();
        for i in 0..crops {
            // A face of 150 px moving and turning a little, as in the sample video.
            let (centre, angle) = ((320.0 + (i % 7) as f32, 180.0), (i % 100) as f32 * 0.003);
            let crop = warp_square(&frame, centre, angle, 150.0, 64, std::mem::take(&mut buffer));
            checksum += u64::from(crop.as_raw()[i as usize % 1000]);
            buffer = crop.into_raw();
        }
        let micros = start.elapsed().as_secs_f64() / f64::from(crops) * 1e6;
        // The checksum shows two builds cut the same bytes.
        println!("round {round}: {micros:.1} µs per 64×64 crop (checksum {checksum})");
    }
}
