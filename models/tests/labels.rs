// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use emoedge_models::labels::canonical_index;
use emoedge_models::{EMOTIONS, LabelError, LabelMapping, Teacher};

#[test]
fn every_teacher_label_maps_to_exactly_one_canonical_label() {
    for teacher in Teacher::ALL {
        let mapping = teacher.mapping();
        let mut hits = [0usize; 7];
        for i in 0..teacher.labels().len() {
            hits[mapping.canonical(i)] += 1;
        }
        assert_eq!(hits, [1; 7], "{teacher:?} must be a bijection onto the canonical labels");
    }
}

#[test]
fn teacher_mappings_are_by_name_not_position() {
    let facex = Teacher::FaceX.mapping();
    assert_eq!(EMOTIONS[facex.canonical(0)], "angry"); // "anger"
    assert_eq!(EMOTIONS[facex.canonical(5)], "sad"); // "sadness"
    assert_eq!(EMOTIONS[facex.canonical(6)], "surprise"); // "surprised"
    let fer = Teacher::Fer.mapping();
    assert_eq!(EMOTIONS[fer.canonical(6)], "neutral");
    let face_api = Teacher::FaceApi.mapping();
    assert_eq!(EMOTIONS[face_api.canonical(4)], "fear"); // "fearful"
    assert_eq!(EMOTIONS[face_api.canonical(5)], "disgust"); // "disgusted"
}

#[test]
fn probabilities_are_reordered_into_canonical_order() {
    // fer order: angry, disgust, fear, happy, sad, surprise, neutral
    let probs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
    let canonical = Teacher::Fer.mapping().to_canonical_order(&probs);
    // canonical: happy, sad, neutral, angry, surprise, disgust, fear
    assert_eq!(canonical, [0.4, 0.5, 0.7, 0.1, 0.6, 0.2, 0.3]);
}

#[test]
fn bad_label_lists_are_refused() {
    assert_eq!(canonical_index("Happiness"), Ok(0));
    let unknown = LabelMapping::by_name(&["happy", "sad", "neutral", "angry", "surprise", "disgust", "contempt"]);
    assert!(matches!(unknown, Err(LabelError::Unknown(ref l)) if l == "contempt"));
    let duplicate = LabelMapping::by_name(&["happy", "joy", "neutral", "angry", "surprise", "disgust", "fear"]);
    assert!(matches!(duplicate, Err(LabelError::Duplicate { canonical: "happy", .. })));
    let missing = LabelMapping::by_name(&["happy", "sad", "neutral", "angry", "surprise", "disgust"]);
    assert_eq!(missing, Err(LabelError::Missing("fear")));
}
