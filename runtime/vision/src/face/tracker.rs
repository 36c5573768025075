//! A simple IoU tracker: each detection joins the live track whose last box overlaps it most
//! (greedy, best overlap first), or starts a new track.

use super::{BBox, Face};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerOptions {
    /// Frames a track survives without a detection.
    pub max_missed: u32,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        Self { max_missed: 15 }
    }
}

#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub bbox: BBox,
    pub missed: u32,
}

#[derive(Debug)]
pub struct IouTracker {
    options: TrackerOptions,
    min_iou: f32,
    tracks: Vec<Track>,
    next_id: u64,
}

impl IouTracker {
    pub fn new(options: TrackerOptions) -> Self {
        Self { options, min_iou: 0.3, tracks: Vec::new(), next_id: 1 }
    }

    /// Assigns a track id to each face of one frame (same order as `faces`).
    pub fn update(&mut self, faces: &[Face]) -> Vec<u64> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (f, face) in faces.iter().enumerate() {
            for (t, track) in self.tracks.iter().enumerate() {
                let iou = track.bbox.iou(&face.bbox);
                if iou >= self.min_iou {
                    pairs.push((iou, f, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut ids = vec![0u64; faces.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, f, t) in pairs {
            if ids[f] == 0 && !track_taken[t] {
                ids[f] = self.tracks[t].id;
                track_taken[t] = true;
                self.tracks[t].bbox = faces[f].bbox;
                self.tracks[t].missed = 0;
            }
        }
        for (t, taken) in track_taken.iter().enumerate() {
            if !taken {
                self.tracks[t].missed += 1;
            }
        }
        let max_missed = self.options.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
        for (f, id) in ids.iter_mut().enumerate() {
            if *id == 0 {
                *id = self.next_id;
                self.next_id += 1;
                self.tracks.push(Track { id: *id, bbox: faces[f].bbox, missed: 0 });
            }
        }
        ids
    }

    /// The tracks alive now.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32) -> Face {
        Face { bbox: BBox { x1: x, y1: 0.0, x2: x + 10.0, y2: 10.0 }, score: 1.0, landmarks: [[0.0; 2]; 5] }
    }

    #[test]
    fn overlapping_faces_keep_their_ids_and_new_ones_get_new_ids() {
        let mut tracker = IouTracker::new(TrackerOptions { max_missed: 1 });
        assert_eq!(tracker.update(&[face(0.0), face(100.0)]), vec![1, 2]);
        assert_eq!(tracker.update(&[face(101.0), face(1.0)]), vec![2, 1]);
        // Track 1 missed twice (> max_missed) is dropped; a face there later is a new track.
        assert_eq!(tracker.update(&[face(102.0)]), vec![2]);
        assert_eq!(tracker.update(&[face(102.0)]), vec![2]);
        assert_eq!(tracker.update(&[face(1.0), face(102.0)]), vec![3, 2]);
    }
}
