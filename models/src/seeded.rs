//! Deterministic inputs for parity checks and tests.

/// `len` values in [-1, 1) from a xorshift generator seeded with `seed` — the range of a
/// preprocessed crop — without touching any framework's global random generator, so that
/// checks on parallel threads stay reproducible.
pub fn seeded_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
        })
        .collect()
}
