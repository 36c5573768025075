//! What `emoedge run` prints at its end: frames and speed, where the time went, the streams,
//! and what reached the broker — from the elements' typed statistics.

use std::path::Path;
use std::time::Duration;

use emoedge_publish::{Broker, PublishStats};
use gstemoedge::stats::DetectStats;

use super::stream::Outcome;

pub struct Summary<'a> {
    pub wall: Duration,
    pub names: &'a [String],
    pub outcomes: &'a [Outcome],
    /// The broker, as given, when publishing.
    pub published: Option<&'a str>,
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Summary<'_> {
    pub fn print(&self, out: &Path, tracks: usize) {
        let frames: u64 = self.outcomes.iter().map(|o| o.frames).sum();
        let detections: u64 = self.detect().map(|s| s.detections).sum();
        let provider = self.outcomes.iter().find_map(|o| o.provider).map_or("no provider".into(), |p| p.to_string());
        let across = if self.streams() > 1 { format!(" across {} streams", self.streams()) } else { String::new() };
        println!(
            "{frames} frames{across} in {:.2} s ({:.1} frames/s) on {provider}; {tracks} track(s) with results; face detector ran on {detections} frames",
            self.wall(),
            frames as f64 / self.wall(),
        );
        self.print_time();
        if self.streams() > 1 {
            self.print_batching();
        }
        if let Some(placement) = self.detect().map(|s| s.placement.as_str()).find(|p| !p.is_empty()) {
            println!("where the nodes ran (first call of each model): {placement}");
        }
        if self.streams() > 1 || self.outcomes.iter().any(|o| o.losses > 0) {
            self.print_streams();
        }
        println!("wrote {}/results.jsonl and a timeline PNG per track", out.display());
        if let Some(url) = self.published {
            self.print_published(url, out);
        }
    }

    fn streams(&self) -> usize {
        self.outcomes.len()
    }

    /// The wall time in seconds (never zero: it divides).
    fn wall(&self) -> f64 {
        self.wall.as_secs_f64().max(1e-9)
    }

    /// Every opening's detector statistics.
    fn detect(&self) -> impl Iterator<Item = &DetectStats> {
        self.outcomes.iter().flat_map(|o| &o.detect_stats)
    }

    /// The largest of a count of the emotion model: it is shared, so each stream's figure is
    /// the model's total so far and the largest is the run's.
    fn model(&self, count: fn(&DetectStats) -> u64) -> u64 {
        self.detect().map(count).max().unwrap_or(0)
    }

    fn print_time(&self) {
        // The detectors and re-identification are the streams' own: their times add up.
        let detector = seconds(self.detect().map(|s| s.detector_ort_ns).sum());
        let embedder = seconds(self.detect().map(|s| s.embedder_ort_ns).sum());
        let embeddings: u64 = self.detect().map(|s| s.embeddings).sum();
        let frame = seconds(self.model(|s| s.frame_model_ort_ns));
        let clip = seconds(self.model(|s| s.clip_model_ort_ns));
        // Re-identification's share, when it ran.
        let reid = if embeddings > 0 {
            format!(", face embedder {embedder:.2} s for {embeddings} faces ({:.1}%)", 100.0 * embedder / self.wall())
        } else {
            String::new()
        };
        if self.streams() > 1 {
            // The streams run side by side: their times add up to more than the wall time.
            println!(
                "time in ONNX Runtime, summed over the streams' threads: face detectors {detector:.2} s, emotion frame model {frame:.2} s, clip model {clip:.3} s{reid}"
            );
            return;
        }
        let share = |t: f64| 100.0 * t / self.wall();
        let inside = detector + frame + clip + embedder;
        println!(
            "time in ONNX Runtime: face detector {detector:.2} s ({:.0}%), emotion frame model {frame:.2} s ({:.0}%), clip model {clip:.3} s ({:.1}%){reid}; the rest {:.2} s ({:.0}%: decoding, colour conversion, detector pyramid and NMS, crops, tracking, annotation)",
            share(detector),
            share(frame),
            share(clip),
            (self.wall.as_secs_f64() - inside).max(0.0),
            100.0 - share(inside)
        );
    }

    fn print_batching(&self) {
        let calls = self.model(|s| s.frame_model_calls);
        let faces = self.model(|s| s.frame_model_faces);
        println!(
            "one emotion model for the {} streams: {calls} frame-part calls for {faces} faces (mean batch {:.2}), {} clip-part calls",
            self.streams(),
            faces as f64 / calls.max(1) as f64,
            self.model(|s| s.clip_model_calls)
        );
    }

    fn print_streams(&self) {
        for (i, (name, o)) in self.names.iter().zip(self.outcomes).enumerate() {
            let state = match (&o.error, o.losses) {
                (Some(_), _) => "failed".to_string(),
                (None, 0) => "ended".to_string(),
                (None, n) => format!("ended, lost {n} time(s) and reopened"),
            };
            println!("stream {i} ({name}): {} frames ({:.1}/s), {state}", o.frames, o.frames as f64 / self.wall());
        }
    }

    fn print_published(&self, url: &str, out: &Path) {
        // One publisher per stream for its whole life (across reopenings).
        let sum = |field: fn(&PublishStats) -> u64| {
            self.outcomes.iter().filter_map(|o| o.publish.as_ref()).map(field).sum::<u64>()
        };
        let broker = Broker::parse(url).map_or_else(|_| "the broker".to_string(), |b| b.to_string());
        let rejected = sum(|p| p.rejected);
        println!(
            "MQTT {broker}: {} results queued, {} delivered, {} waiting in {}/spool (sent by the next run on this folder), {} dropped (spool full){}",
            sum(|p| p.queued),
            sum(|p| p.delivered),
            sum(|p| p.pending),
            out.display(),
            sum(|p| p.dropped),
            if rejected > 0 { format!(", {rejected} rejected (can never be sent)") } else { String::new() }
        );
    }
}
