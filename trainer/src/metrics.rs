//! Classification metrics: confusion matrix, WAR (accuracy), UAR (mean per-class recall),
//! agreement with a teacher's top-1, and a bootstrap interval on accuracy.

use rand::{RngExt, SeedableRng};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    /// `counts[truth][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(classes: usize) -> Self {
        Self { counts: vec![vec![0; classes]; classes] }
    }

    pub fn add(&mut self, truth: usize, predicted: usize) {
        self.counts[truth][predicted] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Weighted average recall = accuracy.
    pub fn war(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Unweighted average recall over the classes that occur.
    pub fn uar(&self) -> f64 {
        let recalls: Vec<f64> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, row)| row.iter().sum::<u64>() > 0)
            .map(|(i, row)| row[i] as f64 / row.iter().sum::<u64>() as f64)
            .collect();
        if recalls.is_empty() { 0.0 } else { recalls.iter().sum::<f64>() / recalls.len() as f64 }
    }
}

/// How many resamples [`bootstrap_accuracy`] draws; with a fixed seed the interval is the same
/// on every run, so a published interval reproduces.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// A 95% percentile-bootstrap interval on accuracy over `groups` of (correct, total) answers.
///
/// Whole groups are resampled, not single answers: the windows of one video second, or the
/// photos of one person, are not independent evidence, and resampling them one by one would
/// claim a confidence the data do not have. `None` with fewer than two groups: one person's
/// photos, resampled, would show a spread of zero that says nothing of other people.
pub fn bootstrap_accuracy(groups: &[(u64, u64)], seed: u64) -> Option<[f64; 2]> {
    if groups.iter().filter(|&&(_, total)| total > 0).count() < 2 {
        return None;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut accuracies: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let (mut correct, mut total) = (0u64, 0u64);
            for _ in 0..groups.len() {
                let (c, t) = groups[rng.random_range(0..groups.len())];
                correct += c;
                total += t;
            }
            correct as f64 / total.max(1) as f64
        })
        .collect();
    accuracies.sort_by(f64::total_cmp);
    let at = |q: f64| accuracies[((q * (accuracies.len() - 1) as f64).round() as usize).min(accuracies.len() - 1)];
    Some([at(0.025), at(0.975)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn war_weights_samples_uar_weights_classes() {
        let mut c = Confusion::new(3);
        for _ in 0..8 {
            c.add(0, 0);
        }
        c.add(1, 1);
        c.add(1, 0);
        // class 2 never occurs: UAR ignores it.
        assert!((c.war() - 0.9).abs() < 1e-12);
        assert!((c.uar() - 0.75).abs() < 1e-12);
        assert_eq!(c.total(), 10);
    }

    #[test]
    fn the_bootstrap_interval_is_as_wide_as_the_evidence() {
        // Four faces, two right: the interval must span most of [0, 1].
        let four = bootstrap_accuracy(&[(1, 1), (1, 1), (0, 1), (0, 1)], 0).unwrap();
        assert!(four[0] <= 0.25 && four[1] >= 0.75, "{four:?}");
        // 400 faces of 400 people, 200 right: a tight interval around one half.
        let many: Vec<(u64, u64)> = (0..400).map(|i| ((i % 2) as u64, 1)).collect();
        let tight = bootstrap_accuracy(&many, 0).unwrap();
        assert!(tight[0] > 0.4 && tight[1] < 0.6 && tight[0] < 0.5 && tight[1] > 0.5, "{tight:?}");
        // The same answers grouped in two clusters say only what two clusters can say.
        let clustered = bootstrap_accuracy(&[(200, 200), (0, 200)], 0).unwrap();
        assert_eq!(clustered, [0.0, 1.0]);
        assert_eq!(bootstrap_accuracy(&[], 0), None);
        assert_eq!(bootstrap_accuracy(&many, 7), bootstrap_accuracy(&many, 7), "seeded: reproducible");
    }
}
