//! One session for the streams of a process, their calls batched: what the face detector's
//! networks (O-Net, R-Net, BlazeFace) use so that N streams hold one copy of each and a busy
//! device runs one call for several streams' crops (issue 26). Calls that arrive while another
//! runs wait in a [`GroupCommit`]; the caller that runs next concatenates every waiting input of
//! the same item shape along the batch axis, in calls of at most `max_batch` items.
//!
//! That batching is for GPUs, where one larger call costs little more than a small one. On the
//! CPU a call runs on one thread (`intra_threads = 1`) and costs in proportion to its items:
//! there streams queueing behind one copy only idle (the face detector keeps a copy per stream
//! on the CPU; see `FaceDetector::load`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use emoedge_support::GroupCommit;
use emoedge_support::sync::lock;
use ort::value::TensorRef;

use super::{ModelSession, OnnxError};

/// One caller's input: `shape` is `[items, …]`, `input` its values in that layout.
struct Request {
    shape: Vec<usize>,
    input: Vec<f32>,
}

/// A caller's outputs (each output's rows for its items, flattened), its share of the batch's
/// time in ONNX Runtime and its input buffer back (for the next call); or the error of the call
/// that carried it.
type Answer = Result<(Vec<Vec<f32>>, Duration, Vec<f32>), String>;

/// Requests of one item shape (the input's shape after the batch axis), by id.
type Group = (Vec<usize>, Vec<(u64, Request)>);

pub struct SharedSession {
    session: Mutex<ModelSession>,
    calls: GroupCommit<Request, Answer>,
    /// The outputs every call returns, in this order.
    outputs: Vec<String>,
    max_batch: usize,
    /// The session's name, for errors raised without it.
    name: String,
}

impl SharedSession {
    /// Shares `session`; each call returns `outputs` (by name), batches hold at most
    /// `max_batch` items.
    pub fn new(session: ModelSession, outputs: &[&str], max_batch: usize) -> Self {
        let name = session.name.clone();
        Self {
            session: Mutex::new(session),
            calls: GroupCommit::new(),
            outputs: outputs.iter().map(|o| o.to_string()).collect(),
            max_batch: max_batch.max(1),
            name,
        }
    }

    /// Reads the session (waits while a batch runs).
    pub fn with<R>(&self, read: impl FnOnce(&ModelSession) -> R) -> R {
        read(&lock(&self.session))
    }

    /// Runs the network on `input` of `shape` (items first), perhaps in one call with other
    /// streams' inputs of the same item shape. Returns each output's rows for these items,
    /// flattened, and this call's share of the batch's time in ONNX Runtime (by items). The
    /// buffer `input` travels with the call and comes back (empty after a failed call): a lone
    /// stream's call copies nothing.
    pub fn run(&self, shape: &[usize], input: &mut Vec<f32>) -> Result<(Vec<Vec<f32>>, Duration), OnnxError> {
        // A caller's input of another length than its shape would shift every other caller's
        // rows in a shared batch: refused here, before it is queued.
        if input.len() != shape.iter().product::<usize>() || shape.len() < 2 {
            let message = format!("an input of {} values for the shape {shape:?}", input.len());
            return Err(OnnxError::Run { model: self.name.clone(), message });
        }
        let request = Request { shape: shape.to_vec(), input: std::mem::take(input) };
        let answer = self.calls.submit(request, |batch| self.run_batch(batch));
        let answer = answer.unwrap_or_else(|| Err("the batch carrying this call failed on another stream".into()));
        let (outputs, busy, buffer) = answer.map_err(|message| OnnxError::Run { model: self.name.clone(), message })?;
        *input = buffer;
        Ok((outputs, busy))
    }

    /// Runs every waiting request, grouped by item shape; answers each by id.
    fn run_batch(&self, batch: Vec<(u64, Request)>) -> Vec<(u64, Answer)> {
        let mut groups: Vec<Group> = Vec::new();
        for (id, request) in batch {
            let item = request.shape.get(1..).unwrap_or_default().to_vec();
            match groups.iter_mut().find(|(shape, _)| *shape == item) {
                Some((_, members)) => members.push((id, request)),
                None => groups.push((item, vec![(id, request)])),
            }
        }
        let mut session = lock(&self.session);
        groups.into_iter().flat_map(|(item, members)| self.run_group(&mut session, &item, members)).collect()
    }

    /// One item shape's requests: concatenated, run in calls of at most `max_batch` items, the
    /// outputs handed back in request order.
    fn run_group(
        &self,
        session: &mut ModelSession,
        item: &[usize],
        members: Vec<(u64, Request)>,
    ) -> Vec<(u64, Answer)> {
        let counts: Vec<usize> = members.iter().map(|(_, r)| r.shape.first().copied().unwrap_or(0)).collect();
        let total: usize = counts.iter().sum();
        let item_len: usize = item.iter().product();
        let joined: Vec<f32>;
        let all = match members.as_slice() {
            [(_, alone)] => alone.input.as_slice(),
            _ => {
                joined = members.iter().flat_map(|(_, r)| r.input.iter().copied()).collect();
                joined.as_slice()
            }
        };
        let started = Instant::now();
        let mut outputs = vec![Vec::new(); self.outputs.len()];
        let mut failed = None;
        for chunk in all.chunks(self.max_batch * item_len.max(1)) {
            let n = chunk.len() / item_len.max(1);
            let shape: Vec<usize> = std::iter::once(n).chain(item.iter().copied()).collect();
            if let Err(e) = self.call(session, shape, chunk, &mut outputs) {
                failed = Some(e.to_string());
                break;
            }
        }
        let elapsed = started.elapsed();
        if failed.is_none() && members.len() == 1 {
            // A lone caller takes the outputs whole.
            let lone = members.into_iter().next();
            return lone.map(|(id, request)| (id, Ok((outputs, elapsed, request.input)))).into_iter().collect();
        }
        let mut offsets = vec![0; outputs.len()];
        let rows: Vec<usize> = outputs.iter().map(|o| o.len() / total.max(1)).collect();
        members
            .into_iter()
            .zip(counts)
            .map(|((id, request), n)| {
                let answer = match &failed {
                    Some(e) => Err(e.clone()),
                    None => {
                        let mine = outputs
                            .iter()
                            .zip(&rows)
                            .zip(offsets.iter_mut())
                            .map(|((values, row), offset)| {
                                let part = values[*offset..*offset + n * row].to_vec();
                                *offset += n * row;
                                part
                            })
                            .collect();
                        Ok((mine, elapsed.mul_f64(n as f64 / total.max(1) as f64), request.input))
                    }
                };
                (id, answer)
            })
            .collect()
    }

    /// One call of the session; appends each output's values to `outputs`.
    fn call(
        &self,
        session: &mut ModelSession,
        shape: Vec<usize>,
        input: &[f32],
        outputs: &mut [Vec<f32>],
    ) -> Result<(), OnnxError> {
        let name = session.name.clone();
        let error = |e: &dyn std::fmt::Display| OnnxError::Run { model: name.clone(), message: e.to_string() };
        let tensor = TensorRef::from_array_view((shape, input)).map_err(|e| error(&e))?;
        session.run(ort::inputs![tensor], |values| {
            for (output, collected) in self.outputs.iter().zip(outputs.iter_mut()) {
                let value = values.get(output).ok_or_else(|| error(&format!("no output `{output}`")))?;
                let (_, data) = value.try_extract_tensor::<f32>().map_err(|e| error(&e))?;
                collected.extend_from_slice(data);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::onnx::{Provider, SessionOptions, environment, open_session};

    fn onet() -> SharedSession {
        let options = SessionOptions { provider: Provider::Cpu, ..Default::default() };
        let session =
            open_session(environment(None).unwrap(), &emoedge_tests::assets().join("mtcnn/onet.onnx"), &options);
        SharedSession::new(session.unwrap(), &["dense_5", "dense_6", "softmax_2"], 2)
    }

    /// `n` O-Net inputs of a pattern that differs per `seed`.
    fn crops(n: usize, seed: f32) -> Vec<f32> {
        (0..n * 48 * 48 * 3).map(|i| (i as f32 * 0.37 + seed).sin() * 0.9).collect()
    }

    #[test]
    fn a_batch_of_several_callers_answers_each_with_its_own_rows() {
        let net = onet();
        let inputs = [crops(2, 0.0), crops(1, 1.0), crops(0, 2.0), crops(3, 3.0)];
        let alone: Vec<Vec<Vec<f32>>> = inputs
            .iter()
            .map(|input| net.run(&[input.len() / (48 * 48 * 3), 48, 48, 3], &mut input.clone()).unwrap().0)
            .collect();
        let runs = net.with(|s| s.runs);
        let batch = inputs
            .iter()
            .enumerate()
            .map(|(id, input)| {
                let shape = vec![input.len() / (48 * 48 * 3), 48, 48, 3];
                (id as u64, Request { shape, input: input.clone() })
            })
            .collect();
        let answers = net.run_batch(batch);
        // Six crops in calls of at most two: three calls for the four callers.
        assert_eq!(net.with(|s| s.runs) - runs, 3);
        for (id, answer) in answers {
            let (outputs, _, buffer) = answer.unwrap();
            assert_eq!(buffer, inputs[id as usize], "the caller's buffer comes back");
            assert_eq!(
                outputs.iter().map(Vec::len).collect::<Vec<_>>(),
                alone[id as usize].iter().map(Vec::len).collect::<Vec<_>>()
            );
            for (together, apart) in outputs.iter().flatten().zip(alone[id as usize].iter().flatten()) {
                assert!((together - apart).abs() < 1e-5, "caller {id}: {together} batched, {apart} alone");
            }
        }
    }

    #[test]
    fn an_input_that_does_not_fill_its_shape_is_refused_before_it_is_queued() {
        let net = onet();
        let runs = net.with(|s| s.runs);
        let error = net.run(&[2, 48, 48, 3], &mut crops(1, 0.0)).unwrap_err().to_string();
        assert!(error.contains("an input of 6912 values for the shape [2, 48, 48, 3]"), "{error}");
        assert_eq!(net.with(|s| s.runs), runs, "nothing ran");
    }

    #[test]
    fn inputs_of_another_item_shape_run_in_a_call_of_their_own() {
        let net = onet();
        let runs = net.with(|s| s.runs);
        let batch = vec![
            (0, Request { shape: vec![1, 48, 48, 3], input: crops(1, 0.0) }),
            (1, Request { shape: vec![1, 24, 24, 3], input: vec![0.0; 24 * 24 * 3] }),
        ];
        let answers: std::collections::HashMap<u64, Answer> = net.run_batch(batch).into_iter().collect();
        assert!(answers[&0].is_ok());
        let error = answers[&1].as_ref().unwrap_err();
        assert!(error.contains("invalid dimensions") && error.contains("Got: 24 Expected: 48"), "{error}");
        assert_eq!(net.with(|s| s.runs) - runs, 1, "the 24-pixel input failed alone, the other ran");
    }
}
