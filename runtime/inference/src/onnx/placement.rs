//! Where a session's nodes actually run. A provider that registers may still leave nodes it
//! cannot take to the next provider in line (TensorRT → CUDA → CPU): the session then reports
//! "tensorrt" while part of the model runs elsewhere. ONNX Runtime's own profile of the first
//! call names the provider of every node; [`Placement`] counts them. On the CPU provider alone
//! there is nowhere else to go, and nothing needs counting.

use std::collections::BTreeMap;
use std::fmt;

use super::ActiveProvider;

/// Where a session's nodes ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Nodes per execution provider (ONNX Runtime's names), counted in the first call's profile.
    Counted(BTreeMap<String, usize>),
    /// Every node on this provider, the only one the session registered (the CPU's).
    Only(ActiveProvider),
}

impl ActiveProvider {
    /// ONNX Runtime's name of the provider, as its profiles and logs write it.
    pub fn ort_name(self) -> &'static str {
        match self {
            ActiveProvider::TensorRt => "TensorrtExecutionProvider",
            ActiveProvider::Cuda => "CUDAExecutionProvider",
            ActiveProvider::Cpu => "CPUExecutionProvider",
        }
    }
}

impl Placement {
    /// Counts the kernels of an ONNX Runtime profile (its JSON trace events): each node that ran
    /// has one `…_kernel_time` event of category `Node` naming its provider.
    pub fn from_profile(json: &str) -> Result<Self, String> {
        let events: Vec<serde_json::Value> =
            serde_json::from_str(json).map_err(|e| format!("unreadable ONNX Runtime profile: {e}"))?;
        let mut nodes = BTreeMap::new();
        for event in &events {
            let is_kernel =
                event["cat"] == "Node" && event["name"].as_str().is_some_and(|name| name.ends_with("_kernel_time"));
            if let (true, Some(provider)) = (is_kernel, event["args"]["provider"].as_str()) {
                *nodes.entry(provider.to_string()).or_insert(0) += 1;
            }
        }
        if nodes.is_empty() {
            return Err("the ONNX Runtime profile lists no nodes".into());
        }
        Ok(Self::Counted(nodes))
    }

    /// Whether any node ran on another provider than `provider`.
    pub fn is_elsewhere(&self, provider: ActiveProvider) -> bool {
        match self {
            Self::Counted(nodes) => nodes.keys().any(|name| name.as_str() != provider.ort_name()),
            Self::Only(only) => *only != provider,
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Counted(nodes) => {
                let parts: Vec<String> = nodes.iter().map(|(provider, n)| format!("{n} on {provider}")).collect();
                f.write_str(&parts.join(", "))
            }
            Self::Only(provider) => write!(f, "all on {} (the only provider registered)", provider.ort_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_kernels_per_provider_and_ignores_other_events() {
        let json = r#"[
            {"cat": "Session", "name": "model_run", "args": {}},
            {"cat": "Node", "name": "conv_fence_before", "args": {"provider": "CPUExecutionProvider"}},
            {"cat": "Node", "name": "conv_kernel_time", "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"}},
            {"cat": "Node", "name": "TRTKernel_graph_0_kernel_time", "args": {"provider": "TensorrtExecutionProvider"}},
            {"cat": "Node", "name": "shape_kernel_time", "args": {"op_name": "Shape", "provider": "CPUExecutionProvider"}}
        ]"#;
        let placement = Placement::from_profile(json).unwrap();
        assert_eq!(placement.to_string(), "2 on CPUExecutionProvider, 1 on TensorrtExecutionProvider");
        assert!(placement.is_elsewhere(ActiveProvider::TensorRt));
        assert!(placement.is_elsewhere(ActiveProvider::Cpu));
        let only = Placement::Only(ActiveProvider::Cpu);
        assert!(!only.is_elsewhere(ActiveProvider::Cpu));
        assert_eq!(only.to_string(), "all on CPUExecutionProvider (the only provider registered)");
    }

    #[test]
    fn a_profile_without_nodes_is_an_error() {
        assert!(Placement::from_profile("[]").is_err());
        assert!(Placement::from_profile("not json").is_err());
    }
}
