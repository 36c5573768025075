//! Classification metrics: confusion matrix, WAR (accuracy), UAR (mean per-class recall) and
//! agreement with a teacher's top-1.

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
}
