//! scikit-image's `lfw_subset()`: 100 real faces (then 100 non-faces) from Labeled Faces in the
//! Wild, 25×25 grey, stored as a NumPy `.npy` array of f64 in [0, 1] with shape (200, 25, 25).

use std::path::Path;

use image::GrayImage;

use super::{DataError, io_error};

/// The face images of `lfw_subset.npy` (the first half of the array).
pub fn read_lfw_faces(path: &Path) -> Result<Vec<GrayImage>, DataError> {
    let shown = path.display().to_string();
    let layout = |problem: &str| DataError::Layout { path: shown.clone(), problem: problem.to_string() };
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(layout("not a NumPy .npy file"));
    }
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).map_err(|_| layout("unreadable .npy header"))?;
    if !header.contains("'descr': '<f8'")
        || !header.contains("'shape': (200, 25, 25)")
        || header.contains("'fortran_order': True")
    {
        return Err(layout("expected a C-ordered float64 array of shape (200, 25, 25)"));
    }
    let data = &bytes[10 + header_len..];
    if data.len() != 200 * 25 * 25 * 8 {
        return Err(layout("the array data is truncated"));
    }
    Ok((0..100)
        .map(|n| {
            GrayImage::from_fn(25, 25, |x, y| {
                let at = (n * 625 + (y * 25 + x) as usize) * 8;
                let v = f64::from_le_bytes(std::array::from_fn(|k| data[at + k]));
                image::Luma([(v.clamp(0.0, 1.0) * 255.0).round() as u8])
            })
        })
        .collect())
}
