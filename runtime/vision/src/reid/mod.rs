//! People, not tracks (issue 24): which faces are worth embedding ([`quality`]).

pub mod quality;
