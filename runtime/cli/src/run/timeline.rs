//! What `emoedge run` keeps in memory of each track for its timeline PNG and text summary,
//! bounded whatever the stream's length: an endless live source must not grow the process.
//! `results.jsonl` (streamed to disk) holds every result; these are views of it. A track that
//! has ended gets its PNG at once and leaves memory but for its one-line summary. A person
//! (re-identification) gets a timeline of all their tracks, `timeline-person-<id>.png`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use anyhow::Context;
use emoedge_plot::{Series, curves};
use emoedge_publish::EmotionRecord;

/// Points a timeline keeps: more than a 900-pixel-wide plot can show.
pub const MAX_POINTS: usize = 2048;
/// Label segments the text summary keeps per track (the latest).
pub const MAX_SEGMENTS: usize = 256;
/// Ended tracks whose summary the run prints at its end (the latest).
pub const MAX_SUMMARIES: usize = 1000;

/// A track of a stream: (stream index, track id).
type TrackKey = (usize, u64);

/// Every track of a run's streams: those still going in memory, those ended as a PNG and a
/// summary.
pub struct Timelines {
    out: PathBuf,
    /// How many streams the run has: with one, names leave the stream out.
    streams: usize,
    /// Frames without a result after which a track has ended.
    ended_after: u64,
    /// Tracks still going, with the frame (of their stream) of their latest result.
    active: BTreeMap<TrackKey, (TrackTimeline, u64)>,
    /// Every person's tracks on one time axis (the latest `MAX_SUMMARIES` people).
    persons: BTreeMap<u64, TrackTimeline>,
    summaries: VecDeque<(String, String)>,
    dropped_summaries: u64,
    /// PNG files this run wrote.
    written: BTreeSet<String>,
    /// The first PNG that could not be written: reported at the end, the run goes on.
    plot_error: Option<anyhow::Error>,
}

impl Timelines {
    /// `interval`: the element's encoding interval (a track's results come that many frames
    /// apart). A track ends well after the tracker and the engine have forgotten its face
    /// (15 and 30 missed frames), so its id never comes back.
    pub fn new(out: &Path, interval: u32, streams: usize) -> Self {
        Self {
            out: out.to_path_buf(),
            streams,
            ended_after: 2 * u64::from(interval) + 300,
            active: BTreeMap::new(),
            persons: BTreeMap::new(),
            summaries: VecDeque::new(),
            dropped_summaries: 0,
            written: BTreeSet::new(),
            plot_error: None,
        }
    }

    /// A track's name in messages: `track 3`, or `stream 1 track 3` with several streams.
    fn title(&self, (stream, track): TrackKey) -> String {
        if self.streams > 1 { format!("stream {stream} track {track}") } else { format!("track {track}") }
    }

    /// A track's name with the person it shows, when known: `track 3 (person 2)`.
    fn title_with_person(&self, key: TrackKey, timeline: &TrackTimeline) -> String {
        match timeline.person {
            Some(person) => format!("{} (person {person})", self.title(key)),
            None => self.title(key),
        }
    }

    /// A track's PNG: `timeline-3.png`, or `timeline-1-3.png` (stream 1) with several streams.
    fn file_name(&self, (stream, track): TrackKey) -> String {
        if self.streams > 1 { format!("timeline-{stream}-{track}.png") } else { format!("timeline-{track}.png") }
    }

    /// Adds a fresh result of stream `stream` seen on its frame `frame`.
    pub fn record(&mut self, stream: usize, frame: u64, record: &EmotionRecord) {
        let (timeline, last_frame) = self.active.entry((stream, record.track)).or_default();
        if timeline.names.is_empty() {
            timeline.names = record.labels.clone();
        }
        let seconds = record.pts_ns.unwrap_or(0) as f64 / 1e9;
        timeline.push(seconds, &record.probabilities, &record.label, record.confidence);
        timeline.person = record.person.or(timeline.person);
        *last_frame = frame;
        if let Some(person) = record.person {
            let timeline = self.persons.entry(person).or_default();
            if timeline.names.is_empty() {
                timeline.names = record.labels.clone();
            }
            timeline.push(seconds, &record.probabilities, &record.label, record.confidence);
            if self.persons.len() > MAX_SUMMARIES {
                self.end_person();
            }
        }
    }

    /// Writes the oldest person's timeline and lets it go (memory stays bounded).
    fn end_person(&mut self) {
        if let Some((person, timeline)) = self.persons.pop_first() {
            let name = format!("timeline-person-{person}.png");
            self.plot(&name, &format!("person {person}"), &timeline);
            self.push_summary(format!("person {person}"), timeline.summary());
        }
    }

    /// Ends the tracks of stream `stream` without a result for a while (as of its frame `frame`).
    pub fn end_idle(&mut self, stream: usize, frame: u64) {
        let ended: Vec<TrackKey> = self
            .active
            .iter()
            .filter(|((s, _), (_, last))| *s == stream && frame.saturating_sub(*last) > self.ended_after)
            .map(|(key, _)| *key)
            .collect();
        for key in ended {
            self.end(key);
        }
    }

    /// Ends every track of stream `stream` (its source was lost).
    pub fn end_stream(&mut self, stream: usize) {
        let ended: Vec<TrackKey> = self.active.keys().filter(|(s, _)| *s == stream).copied().collect();
        for key in ended {
            self.end(key);
        }
    }

    /// The tracks going on, as the progress bar shows them.
    pub fn live(&self) -> Vec<String> {
        self.active
            .iter()
            .filter_map(|(key, (t, _))| {
                let title = self.title_with_person(*key, t);
                t.last.as_ref().map(|(label, p)| format!("{title}: {label} {:.0}%", p * 100.0))
            })
            .collect()
    }

    fn end(&mut self, key: TrackKey) {
        let Some((timeline, _)) = self.active.remove(&key) else { return };
        let (title, name) = (self.title_with_person(key, &timeline), self.file_name(key));
        self.plot(&name, &title, &timeline);
        self.push_summary(title, timeline.summary());
    }

    /// Writes `timeline`'s PNG `name` (the first failure is kept for the end).
    fn plot(&mut self, name: &str, title: &str, timeline: &TrackTimeline) {
        let path = self.out.join(name);
        let points = timeline.points();
        let series: Vec<Series> = timeline
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| Series { name, points: points.iter().map(|(t, p)| (*t, f64::from(p[i]))).collect() })
            .collect();
        match curves(&path, &format!("{title}: emotion probabilities"), "seconds", &series) {
            Ok(()) => {
                self.written.insert(name.to_string());
            }
            Err(e) => {
                self.plot_error.get_or_insert(e.context(format!("cannot write {}", path.display())));
            }
        }
    }

    fn push_summary(&mut self, title: String, summary: String) {
        if self.summaries.len() == MAX_SUMMARIES {
            self.summaries.pop_front();
            self.dropped_summaries += 1;
        }
        self.summaries.push_back((title, summary));
    }

    /// Ends every track, removes the timelines of earlier runs that this one did not rewrite
    /// (a reused folder must not mix another video's timelines with these results) and prints
    /// each track's summary; returns how many tracks had results.
    pub fn finish(mut self) -> anyhow::Result<usize> {
        let keys: Vec<TrackKey> = self.active.keys().copied().collect();
        for key in keys {
            self.end(key);
        }
        let tracks = self.summaries.len() + self.dropped_summaries as usize;
        while !self.persons.is_empty() {
            self.end_person();
        }
        if tracks == 0 {
            println!("no face was found long enough for a result");
        }
        if self.dropped_summaries > 0 {
            println!("({} earlier tracks: see their timeline PNGs and results.jsonl)", self.dropped_summaries);
        }
        for (title, summary) in &self.summaries {
            println!("{title}: {summary}");
        }
        self.remove_stale()?;
        self.plot_error.map_or(Ok(tracks), Err)
    }

    fn remove_stale(&self) -> anyhow::Result<()> {
        let entries = std::fs::read_dir(&self.out).with_context(|| format!("cannot list {}", self.out.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("timeline-") && name.ends_with(".png") && !self.written.contains(&name) {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove the stale {}", entry.path().display()))?;
            }
        }
        Ok(())
    }
}

/// One track's emotion over time.
#[derive(Debug, Default)]
pub struct TrackTimeline {
    /// The model's labels, in probability order.
    pub names: Vec<String>,
    points: Vec<(f64, Vec<f32>)>,
    /// Results averaged into one point; doubles each time `points` fills up.
    stride: u32,
    /// The sum of the results not yet averaged into a point, and their count.
    pending: Option<(f64, Vec<f32>, u32)>,
    segments: VecDeque<Segment>,
    dropped_segments: u64,
    /// The latest label and its confidence.
    pub last: Option<(String, f32)>,
    /// The person the track shows, once known.
    pub person: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    start: f64,
    end: f64,
    label: String,
}

impl TrackTimeline {
    /// Adds one result: its time, the probabilities (in `names` order) and the label.
    pub fn push(&mut self, seconds: f64, probabilities: &[f32], label: &str, confidence: f32) {
        self.add_point(seconds, probabilities);
        match self.segments.back_mut() {
            Some(segment) if segment.label == label => segment.end = seconds,
            _ => {
                if self.segments.len() == MAX_SEGMENTS {
                    self.segments.pop_front();
                    self.dropped_segments += 1;
                }
                self.segments.push_back(Segment { start: seconds, end: seconds, label: label.to_string() });
            }
        }
        self.last = Some((label.to_string(), confidence));
    }

    /// Keeps the whole time range at a resolution that halves whenever the points fill up:
    /// each point is the mean of `stride` consecutive results.
    fn add_point(&mut self, seconds: f64, probabilities: &[f32]) {
        self.stride = self.stride.max(1);
        let (t, sum, n) = self.pending.get_or_insert_with(|| (0.0, vec![0.0; probabilities.len()], 0));
        *t += seconds;
        for (s, p) in sum.iter_mut().zip(probabilities) {
            *s += p;
        }
        *n += 1;
        if *n < self.stride {
            return;
        }
        if let Some(point) = self.pending.take().map(mean) {
            self.points.push(point);
        }
        if self.points.len() == MAX_POINTS {
            self.points = self.points.chunks(2).map(|pair| mean(sum_of(pair))).collect();
            self.stride *= 2;
        }
    }

    /// The timeline's points: time and probabilities, at most `MAX_POINTS + 1`.
    pub fn points(&self) -> Vec<(f64, Vec<f32>)> {
        let mut points = self.points.clone();
        points.extend(self.pending.clone().map(mean));
        points
    }

    /// The text summary: segments of the same label, e.g. `0.4–8.0 s sad, 8.0–8.6 s fear`.
    pub fn summary(&self) -> String {
        let text: Vec<String> =
            self.segments.iter().map(|s| format!("{:.1}–{:.1} s {}", s.start, s.end, s.label)).collect();
        match self.dropped_segments {
            0 => text.join(", "),
            dropped => format!("({dropped} earlier segments in results.jsonl) {}", text.join(", ")),
        }
    }
}

fn sum_of(points: &[(f64, Vec<f32>)]) -> (f64, Vec<f32>, u32) {
    let mut sum = (0.0, vec![0.0; points.first().map_or(0, |p| p.1.len())], 0);
    for (t, p) in points {
        sum.0 += t;
        for (s, v) in sum.1.iter_mut().zip(p) {
            *s += v;
        }
        sum.2 += 1;
    }
    sum
}

fn mean((t, sum, n): (f64, Vec<f32>, u32)) -> (f64, Vec<f32>) {
    let n = n.max(1);
    (t / f64::from(n), sum.into_iter().map(|s| s / n as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_of_results_keeps_bounded_points_over_the_whole_range() {
        let mut timeline = TrackTimeline::default();
        // A day at 30 results/s would be 2.6 M; 200 k shows the bound as well.
        let results = 200_000;
        for i in 0..results {
            let p = if i < results / 2 { [1.0, 0.0] } else { [0.0, 1.0] };
            let label = if i < results / 2 { "a" } else { "b" };
            timeline.push(i as f64 / 30.0, &p, label, 1.0);
        }
        let points = timeline.points();
        assert!(points.len() <= MAX_POINTS + 1 && points.len() > MAX_POINTS / 2, "{}", points.len());
        // The whole range, in order, and means that stay probabilities.
        assert!(points.first().unwrap().0 < 60.0);
        assert!(points.last().unwrap().0 > (results as f64 - 200.0) / 30.0);
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(points.iter().all(|(_, p)| (p.iter().sum::<f32>() - 1.0).abs() < 1e-4));
        assert_eq!(
            timeline.summary(),
            format!("0.0–{:.1} s a, {:.1}–{:.1} s b", 99_999.0 / 30.0, 100_000.0 / 30.0, 199_999.0 / 30.0)
        );
    }

    #[test]
    fn a_short_track_keeps_every_result() {
        let mut timeline = TrackTimeline::default();
        for i in 0..10 {
            timeline.push(f64::from(i), &[0.25, 0.75], "b", 0.75);
        }
        assert_eq!(timeline.points(), (0..10).map(|i| (f64::from(i), vec![0.25, 0.75])).collect::<Vec<_>>());
        assert_eq!(timeline.last, Some(("b".to_string(), 0.75)));
    }

    #[test]
    fn a_flickering_track_keeps_its_latest_segments_and_says_how_many_went() {
        let mut timeline = TrackTimeline::default();
        for i in 0..(MAX_SEGMENTS + 10) {
            timeline.push(i as f64, &[1.0], if i % 2 == 0 { "a" } else { "b" }, 1.0);
        }
        let summary = timeline.summary();
        assert!(summary.starts_with("(10 earlier segments in results.jsonl) 10.0–10.0 s a, "), "{summary}");
        assert_eq!(summary.matches(" s ").count(), MAX_SEGMENTS);
    }

    fn record(track: u64, frame: u64, label: &str) -> EmotionRecord {
        let probabilities = if label == "a" { vec![0.9, 0.1] } else { vec![0.1, 0.9] };
        EmotionRecord {
            pts_ns: Some(frame * 33_000_000),
            track,
            person: Some(7),
            bbox: [0.0, 0.0, 10.0, 10.0],
            label: label.into(),
            confidence: 0.9,
            probabilities,
            labels: vec!["a".into(), "b".into()],
            gate: [0.5, 0.5],
            clips: 1,
            model: None,
        }
    }

    #[test]
    fn an_ended_track_gets_its_png_during_the_run_and_leaves_memory() {
        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("timeline-9.png"), "an earlier run's").unwrap();
        let mut timelines = Timelines::new(out.path(), 1, 1);
        for frame in 0..10 {
            timelines.record(0, frame, &record(1, frame, "a"));
        }
        timelines.end_idle(0, 100);
        assert!(!out.path().join("timeline-1.png").exists(), "a short gap does not end a track");
        timelines.record(0, 400, &record(2, 400, "b"));
        timelines.end_idle(0, 400);
        assert!(out.path().join("timeline-1.png").is_file(), "track 1 ended: its PNG is written");
        assert_eq!(timelines.live(), ["track 2 (person 7): b 90%"]);
        assert_eq!(timelines.finish().unwrap(), 2);
        assert!(out.path().join("timeline-2.png").is_file());
        assert!(out.path().join("timeline-person-7.png").is_file(), "both tracks show person 7: one timeline");
        assert!(!out.path().join("timeline-9.png").exists(), "the earlier run's timeline is gone");
    }
}
